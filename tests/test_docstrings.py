"""Every docstring example ('>>>') in learnit_tf runs and prints what it shows.

One test per module (imported through `pkgutil.walk_packages`). Examples that need
the network or data the user must supply are marked `# doctest: +SKIP` in place.
"""

import doctest
import importlib
import io
import os
import pkgutil

import pytest

import learnit_tf


def _module_names():
    names = [learnit_tf.__name__]
    for info in pkgutil.walk_packages(learnit_tf.__path__, prefix=learnit_tf.__name__ + "."):
        names.append(info.name)
    return sorted(names)


MODULES = _module_names()


def test_every_module_is_collected():
    # walk_packages recurses into subpackages: the kinds' modules are there too.
    assert "learnit_tf.kinds.registry" in MODULES
    assert "learnit_tf.kinds.image.task" in MODULES
    assert "learnit_tf.meta.trainer" in MODULES


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name, tmp_path, monkeypatch):
    # Examples that write files write them into a fresh directory.
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [t for t in finder.find(module, module_name, globs=dict(vars(module)))
             if t.examples]
    if not tests:
        return  # Nothing to run: the import above was the check.
    output = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test, out=output.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in " \
                               f"{module_name}:\n{output.getvalue()}"
