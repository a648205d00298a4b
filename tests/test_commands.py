"""Every console command of setup.py runs end to end in a test that checks its result.

`END_TO_END` names, for each console script, the test that runs it end to end with tiny
settings and asserts a result a wrong implementation would miss; the scripts/ shells those
tests run are checked to call exactly the console entry point. Commands without such a
test elsewhere run here (meta-training through its console entry point; the zoo listing).
Also: quiet start-up and --verbose.
"""

import ast
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
NOISE = ("cudart_stub", "cpu_feature_guard", "cuInit", "absl::InitializeLog",
         "Downloading and preparing")

#: Console script -> (its scripts/ shell, the tests that run it end to end and what they
#: assert). A console script added to setup.py without an entry here fails
#: `test_every_console_script_has_an_end_to_end_test`.
END_TO_END = {
    "learnit-meta-train": ("meta_train.py", [
        # A meta-trained init fits its class better than the init it started from.
        "tests/test_commands.py::test_meta_train_console_entry_learns_its_class",
        # Launched workers' inits equal one process's run of the same meta-batches.
        "tests/test_multi_worker.py::test_launched_reptile_workers_match_one_process"]),
    "learnit-evaluate": ("evaluate.py", [
        # The shipped CT init beats a standard init by > 1 dB; the report's rows.
        "tests/kinds/ct/test_ct_evaluation.py::test_shipped_ct_init_by_zoo_name"]),
    "learnit-fit": ("fit.py", [
        # PSNR rises by > 0.5 dB; the fitted weights reproduce the curve's last PSNR.
        "tests/test_fit_script.py::test_fits_an_image"]),
    "learnit-render": ("render.py", [
        # A turntable GIF with the asked frames and scaled size.
        "tests/kinds/nerf/test_nerf_outputs.py::test_render_script"]),
    "learnit-cross-class": ("cross_class.py", [
        # Every cell equals a direct fit; each init wins on its own class by > 1 dB.
        "tests/test_cross_class_script.py::test_two_inits_give_a_two_by_two_table_and_heatmap"]),
    "learnit-zoo": ("zoo.py", [
        # `list --format=json` equals zoo.list(); markdown equals the formatted table.
        "tests/test_documented_features.py::test_zoo_list_json_and_markdown_formats",
        "tests/test_commands.py::test_commands_hide_tensorflow_start_up_lines"]),
    "learnit-publish": ("publish.py", [
        # Published to a non-local file system and loaded back: the same weights.
        "tests/test_documented_features.py::test_publish_destination_on_a_non_local_file_system",
        "tests/test_cards.py::test_publish_command_writes_the_card"]),
    "learnit-convert": ("convert_learnit_checkpoint.py", [
        # The converted init reproduces the authors' outputs to 1e-5.
        "tests/test_documented_features.py::test_convert_command_succeeds_with_its_flags"]),
    "learnit-launch-workers": ("launch_workers.py", [
        "tests/test_multi_worker.py::test_launched_reptile_workers_match_one_process",
        "tests/test_documented_features.py::test_launch_workers_prints_tf_config_for_real_hosts"]),
}


def console_scripts():
    """{name: "module:function"} from setup.py's CONSOLE_SCRIPTS (read, not executed)."""
    with open(os.path.join(REPO, "setup.py")) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "CONSOLE_SCRIPTS" for t in node.targets):
            return dict(entry.split("=", 1) for entry in ast.literal_eval(node.value))
    raise AssertionError("setup.py defines no CONSOLE_SCRIPTS list")


def _test_names(path):
    """Names of the test functions and methods defined in a test file."""
    with open(os.path.join(REPO, path)) as f:
        tree = ast.parse(f.read())
    return {n.name for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.name.startswith("test")}


def _run(*args, timeout=300):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=timeout)


def _run_console(name, *args, timeout=300):
    """Runs console script `name` as pip's wrapper does: its setup.py target, argv[0] = name."""
    module, function = console_scripts()[name].split(":")
    code = (f"import sys; sys.argv[0] = {name!r}; from {module} import {function}; "
            f"sys.exit({function}())")
    return _run("-c", code, *args, timeout=timeout)


class CoverageTest(unittest.TestCase):

    def test_every_console_script_has_an_end_to_end_test(self):
        scripts = console_scripts()
        self.assertEqual(sorted(scripts), sorted(END_TO_END))
        for name, (_, references) in END_TO_END.items():
            for reference in references:
                path, test = reference.split("::")
                self.assertIn(test, _test_names(path), f"{name}: {reference} does not exist")

    def test_script_shells_call_the_console_entry_point(self):
        # The tests above run scripts/<shell>; that is the console command only if the
        # shell loads the entry point's module and calls the same function.
        for name, target in console_scripts().items():
            module, function = target.split(":")
            shell = os.path.join(REPO, "scripts", END_TO_END[name][0])
            with open(shell) as f:
                tree = ast.parse(f.read())
            aliases = _loaded_module_names(tree, module)
            self.assertTrue(aliases, f"{shell} does not load {module}")
            calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                     and isinstance(node.func, ast.Attribute) and node.func.attr == function
                     and getattr(node.func.value, "id", None) in aliases]
            self.assertEqual(len(calls), 1, f"{shell} does not call {module}.{function}()")


def _loaded_module_names(tree, module):
    """Names a script binds to `module`: `from pkg import mod as name`, or (a launcher
    that skips the package import) `name = module_from_spec(...)` of a spec whose path is
    joined from the module's parts ("learnit_tf", "commands", "mod.py")."""
    names = {alias.asname or alias.name for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) for alias in node.names
             if f"{node.module}.{alias.name}" == module}
    parts = module.split(".")
    parts[-1] += ".py"
    joins = [[a.value for a in node.args if isinstance(a, ast.Constant)]
             for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "attr", None) == "join"]
    if parts in joins:
        names |= {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                  and isinstance(node.value, ast.Call)
                  and getattr(node.value.func, "attr", None) == "module_from_spec"
                  for t in node.targets if isinstance(t, ast.Name)}
    return names


class QuietStartupTest(unittest.TestCase):

    def test_commands_hide_tensorflow_start_up_lines(self):
        # `learnit-zoo list --format=json` (its setup.py target): quiet, and one row per
        # version of the shipped index.
        import json  # pylint: disable=import-outside-toplevel
        result = _run_console("learnit-zoo", "list", "--format=json")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        for pattern in NOISE:
            self.assertNotIn(pattern, result.stderr)
        with open(os.path.join(REPO, "zoo", "index.json")) as f:
            entries = json.load(f)["entries"]
        shipped = {(name, str(version)) for name, entry in entries.items()
                   for version in entry["versions"]}
        listed = {(row["name"], str(row["version"])) for row in json.loads(result.stdout)}
        self.assertEqual(listed, shipped)

    def test_verbose_is_accepted_by_every_command(self):
        result = _run(os.path.join("scripts", "zoo.py"), "list", "--verbose")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertIn("text_siren", result.stdout)


def _repeated_image_folder(directory, n=8):
    """Six copies of one coloured 8×8 picture: a class with one member, so a meta-learned
    init must fit it better than the random init meta-training started from."""
    from PIL import Image  # pylint: disable=import-outside-toplevel
    yy, xx = np.mgrid[0:n, 0:n] / (n - 1)
    picture = np.stack([xx, yy, (xx + yy) / 2], -1)
    picture[2:6, 3:5] = (1.0, 0.2, 0.1)
    array = (picture * 255).round().astype(np.uint8)
    for i in range(6):
        Image.fromarray(array).save(os.path.join(directory, f"img{i}.png"))
    return array.astype(np.float32) / 255


def test_meta_train_console_entry_learns_its_class():
    """`learnit-meta-train` (its setup.py target) with the documented folder gin file, tiny:
    after 12 Reptile steps on one repeated picture, 2 SGD steps from the exported init fit
    it > 2 dB better than 2 steps from the seed init the run started at."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import init_io# pylint: disable=import-outside-toplevel
    # pylint: disable-next=import-outside-toplevel
    from learnit_tf.evaluation.baselines import standard_init
    from learnit_tf.kinds.image import ImageTask  # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import Fitter, InnerOptimizer  # pylint: disable=import-outside-toplevel
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        picture = _repeated_image_folder(data)
        bindings = [f"image_folder_examples.directory = '{data}'", "RESOLUTION = 8",
                    "Siren.width = 16", "Siren.depth = 2", "Siren.w0 = 30.",
                    "meta_train.algorithm = 'reptile'", "meta_train.inner_steps = 2",
                    "meta_train.meta_batch_size = 2", "meta_train.outer_learning_rate = 1e-2",
                    "meta_train.num_steps = 12", "meta_train.checkpoint_every = 12",
                    "meta_train.eval_every = 0", "meta_train.show_progress = False",
                    "meta_train.jit_compile = False"]
        run = os.path.join(tmp, "run")
        result = _run_console(
            "learnit-meta-train",
            f"--gin_file={os.path.join(REPO, 'gin', 'image', 'folder_maml_cpu.gin')}",
            f"--model_dir={run}", *[f"--gin_bindings={b}" for b in bindings])
        assert result.returncode == 0, result.stderr[-3000:]
        init = init_io.load_init(os.path.join(run, "init"))
        assert init_io.read_metadata(os.path.join(run, "init"))["steps"] == 12
    task = ImageTask(8)
    example = {"image": tf.constant(picture)}
    psnrs = {}
    for name, model in (("meta", init), ("seed", standard_init(init, 0))):
        fitter = Fitter(model, task, InnerOptimizer("sgd", 1e-2), jit_compile=False)
        psnrs[name] = float(fitter.fit(example, 2).psnr[-1])
    assert psnrs["meta"] > psnrs["seed"] + 2.0, psnrs  # measured 13.7 vs 9.6 dB


if __name__ == "__main__":
    unittest.main()
