"""The modules moved into learnit_tf/core/ (issue 25) keep their old import paths.

Each old path is the very module object of the new one (so module state, e.g. the
kind registry, is shared and monkeypatching either name patches both).
"""

import importlib

import pytest

MOVED = {
    "learnit_tf.kinds.registry": "learnit_tf.core.registry",
    "learnit_tf.kinds.fit_input": "learnit_tf.core.fit_input",
    "learnit_tf.tasks.base": "learnit_tf.core.task",
    "learnit_tf.atomic": "learnit_tf.core.atomic",
    "learnit_tf.locks": "learnit_tf.core.locks",
    "learnit_tf.output_dir": "learnit_tf.core.output_dir",
    "learnit_tf.version": "learnit_tf.core.version",
    "learnit_tf._startup": "learnit_tf.core._startup",
}


@pytest.mark.parametrize("old,new", sorted(MOVED.items()))
def test_old_path_is_the_new_module(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)


def test_package_level_names_still_work():
    import learnit_tf  # pylint: disable=import-outside-toplevel
    from learnit_tf import cli, kinds, tasks  # pylint: disable=import-outside-toplevel
    from learnit_tf.core import registry, task  # pylint: disable=import-outside-toplevel
    from learnit_tf.commands import init_args  # pylint: disable=import-outside-toplevel
    assert learnit_tf.__version__ == importlib.import_module("learnit_tf.core.version").__version__
    assert tasks.Task is task.Task and tasks.mse_to_psnr is task.mse_to_psnr
    assert kinds.get_kind is registry.get_kind and kinds.ReaderOption is registry.ReaderOption
    assert cli.resolve_init is init_args.resolve_init
    assert cli.StepProgress is importlib.import_module("learnit_tf.core.cli").StepProgress
    # The root package installs the --init resolver core.cli uses (NeRF render needs it).
    core_cli = importlib.import_module("learnit_tf.core.cli")
    with pytest.raises(ValueError, match="--init='./no_such_folder' is not a directory"):
        core_cli.resolve_init_directory("./no_such_folder")
