"""Old import paths of issue 25 still work, warn, and the library itself uses none of them."""

import subprocess
import sys

OLD_TO_NEW = {
    "learnit_tf.metadata": "learnit_tf.core.metadata",
    "learnit_tf.init_io": "learnit_tf.meta.init_io",
    "learnit_tf.shipped": "learnit_tf.core.shipped",
    "learnit_tf.atomic": "learnit_tf.core.atomic",
    "learnit_tf.locks": "learnit_tf.core.locks",
    "learnit_tf.output_dir": "learnit_tf.core.output_dir",
    "learnit_tf.kinds.registry": "learnit_tf.core.registry",
    "learnit_tf.kinds.fit_input": "learnit_tf.core.fit_input",
    "learnit_tf.tasks.base": "learnit_tf.core.task",
    "learnit_tf.whole_curve": "learnit_tf.evaluation.whole_curve",
    "learnit_tf.baselines": "learnit_tf.evaluation.baselines",
    "learnit_tf.plots": "learnit_tf.evaluation.plots",
    "learnit_tf.distribute": "learnit_tf.training.distribute",
    "learnit_tf.gin_config": "learnit_tf.training.gin_config",
    "learnit_tf.zoo_transport": "learnit_tf.zoo.transport",
    "learnit_tf.zoo_names": "learnit_tf.zoo.names",
    "learnit_tf.zoo.metadata": "learnit_tf.core.metadata",
    "learnit_tf.zoo.init_io": "learnit_tf.meta.init_io",
}
WARNING_ONLY = ("learnit_tf.train", "learnit_tf.cli", "learnit_tf.headline",
                "learnit_tf.models.nerf")

_PROBE = r"""
import importlib, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    for name in sys.argv[1:]:
        importlib.import_module(name)
print("\n".join(str(w.message) for w in caught
                if issubclass(w.category, DeprecationWarning) and "issue 25" in str(w.message)))
"""


def _deprecations(*modules):
    out = subprocess.run([sys.executable, "-c", _PROBE, *modules], capture_output=True,
                         text=True, check=True, timeout=600).stdout
    return [line for line in out.splitlines() if line]


def test_library_imports_no_deprecated_path():
    # What a user's run imports: the package, every layer, every kind and a command (the
    # commands define their absl flags at import, so one process holds one of them).
    import learnit_tf.core.registry as registry  # pylint: disable=import-outside-toplevel
    kinds = [f"learnit_tf.kinds.{k.name}.kind" for k in registry.all_kinds()]
    modules = ["learnit_tf", "learnit_tf.zoo", "learnit_tf.zoo.card", "learnit_tf.zoo.site",
               "learnit_tf.training", "learnit_tf.evaluation", "learnit_tf.meta",
               "learnit_tf.commands.fit", "learnit_tf.commands.init_args",
               "learnit_tf.kinds.registrants", *kinds]
    assert _deprecations(*modules) == []


def test_every_old_path_warns_once_and_names_the_new_one():
    olds = sorted(OLD_TO_NEW) + list(WARNING_ONLY)
    messages = _deprecations(*olds)  # One process: each old module warns on first import.
    for old in olds:
        mine = [m for m in messages if m.startswith(f"{old} is deprecated")]
        assert len(mine) == 1, (old, messages)
        assert OLD_TO_NEW.get(old, "learnit_tf.") in mine[0].split("; import ")[1], mine
    assert len(messages) == len(olds), messages


def test_old_path_is_the_new_module():
    import importlib  # pylint: disable=import-outside-toplevel
    for old, new in OLD_TO_NEW.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
