"""Every docstring example ('>>>') in learnit_tf runs and prints what it shows, and so
does the README's Python example.

One test per module (imported through `pkgutil.walk_packages`). Examples that need
the network or data the user must supply are marked `# doctest: +SKIP` in place.
"""

import ast
import doctest
import importlib
import importlib.util
import io
import pathlib
import pkgutil
import re

import numpy as np
import pytest
from PIL import Image

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
    assert _has_examples("learnit_tf.meta.trainer")  # a class docstring's example
    assert _has_examples("learnit_tf.kinds.image.sdf_2d")  # the module docstring's
    assert not _has_examples("learnit_tf.kinds.registrants")


def _has_examples(module_name):
    """Whether any docstring of the module's source holds a '>>>' example.

    Read from the source, not by importing: the absl programs in learnit_tf.commands
    define their flags at import, and two of them in one process clash (each runs as
    its own process in tests/test_commands.py).
    """
    spec = importlib.util.find_spec(module_name)
    tree = ast.parse(pathlib.Path(spec.origin).read_text(), filename=spec.origin)
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(
        n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return any(">>>" in (ast.get_docstring(n, clean=False) or "") for n in nodes)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name, tmp_path, monkeypatch):
    if not _has_examples(module_name):
        return  # Nothing to run (the source parsed, which _has_examples checked).
    # Examples that write files write them into a fresh directory.
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [t for t in finder.find(module, module_name, globs=dict(vars(module)))
             if t.examples]
    assert tests, f"{module_name}'s source has '>>>' examples but doctest found none"
    output = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test, out=output.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in " \
                               f"{module_name}:\n{output.getvalue()}"


README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _readme_python_blocks():
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)


def _write_photo(path):
    """The examples' input: a small non-square photo (load_image centre-crops and resizes)."""
    rng = np.random.default_rng(0)
    coarse = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
    Image.fromarray(coarse).resize((96, 72), Image.BILINEAR).save(path)


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = _readme_python_blocks()
    assert len(blocks) == 2, f"expected the README's two Python examples, found {len(blocks)}"
    code = blocks[0]
    assert 'load_image("photo.png"' in code, "the example's input file changed: update this test"
    monkeypatch.chdir(tmp_path)
    _write_photo("photo.png")
    namespace = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)  # pylint: disable=exec-used
    printed = capsys.readouterr().out
    result = namespace["result"]
    assert result.psnr.shape == (3,), printed  # "PSNR after 0, 1, 2 steps"
    assert np.all(np.isfinite(result.psnr))
    assert np.array2string(result.psnr) in printed
    # The second fit ran with the optimizer it was given, not the init's recipe.
    assert namespace["adam"].psnr.shape == (3,) and namespace["adam"].psnr[2] != result.psnr[2]
    # The README says the model's own variables are left unchanged by fit.
    from learnit_tf import zoo
    fresh = zoo.load("text_siren")
    for a, b in zip(namespace["model"].trainable_variables, fresh.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_readme_keras_example_runs(tmp_path, monkeypatch):
    """The Keras-native example: from_preset, model.fit with PsnrCallback and TensorBoard."""
    code = _readme_python_blocks()[1]
    assert "Siren.from_preset" in code and "PsnrCallback" in code, "update this test"
    monkeypatch.chdir(tmp_path)
    _write_photo("photo.png")
    code = code.replace('"/tmp/tb"', repr(str(tmp_path / "tb")))
    namespace = {"__name__": "readme_keras_example"}
    exec(compile(code, str(README), "exec"), namespace)  # pylint: disable=exec-used
    history = namespace["history"].history
    assert len(history["psnr"]) == 100
    assert history["psnr"][-1] > history["psnr"][0] + 5.0, history["psnr"][::20]
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def _readme_layout_block():
    section = (README.parent / "docs" / "layout.md").read_text().split("## Layout\n", 1)[1]
    return re.search(r"^```\n(.*?)^```", section, re.S | re.M).group(1)


def test_readme_layout_matches_the_tree():
    root = README.parent
    layout = _readme_layout_block()
    # Every path the layout names exists ("<kind>" stands for each kind).
    named = re.findall(r"(?<![\w./<>])((?:learnit_tf|gin|scripts|benchmarks|docs|tests|zoo)"
                       r"(?:/[\w.<>]+)*/?|[\w]+\.py)(?=\s|$)", layout)
    kinds_dir = root / "learnit_tf" / "kinds"
    kind_names = sorted(p.name for p in kinds_dir.iterdir()
                        if (p / "__init__.py").exists())
    assert kind_names, "no kind packages found"
    missing = []
    for name in named:
        for concrete in ([name.replace("<kind>", k) for k in kind_names]
                         if "<kind>" in name else [name]):
            # Bare module names may sit in learnit_tf/, kinds/ or every kind's package.
            candidates = [root / concrete, root / "learnit_tf" / concrete, kinds_dir / concrete]
            candidates += [kinds_dir / k / concrete for k in kind_names] if "/" not in concrete \
                else []
            if not any(c.exists() for c in candidates):
                missing.append(concrete)
    assert not missing, f"README Layout names paths that do not exist: {missing}"
    # Every kind package is listed.
    unlisted = [k for k in kind_names if not re.search(rf"^\s+{k}/", layout, re.M)]
    assert not unlisted, f"README Layout does not list the kinds {unlisted}"
