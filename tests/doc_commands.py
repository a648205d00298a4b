"""The shell commands README.md and docs/**/*.md show, and which test runs each one.

`documented_commands()` reads every ```sh block (continuation lines joined, `&&` chains
and `( ... )` subshells split into single commands, comments dropped).
`program_and_flags(command)` names what a command runs (`scripts/evaluate.py`, the
console command `learnit-evaluate` counting as its script, `scripts/zoo.py list`,
`pytest`, `pip install`) and the flags it passes.

COVERAGE maps each program, and each of its flags the docs use, to the test that runs
the program with that flag (a pytest node id). `tests/test_doc_commands.py` fails when a
documented command's program or one of its flags has no entry, or when an entry names
a test that does not exist or whose source never mentions the program and the flag.
EXTERNAL lists the other tools the docs show (cloud set-up, shell), with why no test
runs them here.
"""
import glob
import os
import re
import shlex

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC_FILES = ("README.md", "docs/**/*.md")

# Not this project's programs: shown for set-up on machines the tests do not have.
EXTERNAL = {
    "gcloud": "Cloud TPU set-up (needs a Google Cloud project)",
    "git": "cloning this repository on a TPU VM",
    "export": "shell variables for the Cloud TPU / multi-worker examples",
    "tensorboard": "TensorBoard's own viewer",
    "pip show": "inspecting the TPU VM's TensorFlow",
    "apt-get": ("Debian's package manager: the emoji test data (libjs-emojify) and the "
                "browser of the site test (chromium), which .ci/run installs"),
}

_T = "tests/"
_EVAL_FOLDER = _T + "kinds/image/test_image_evaluation.py::EvaluateScriptTest::test_image_init_on_a_folder"
_EVAL_SELECT = (_T + "test_whole_curve.py::ProtocolTest::"
                "test_selection_reads_only_validation_and_the_headline_matches_the_curves")
_EVAL_MOMENTUM = (_T + "test_whole_curve.py::ProtocolTest::"
                  "test_momentum_candidates_are_ranked_and_the_chosen_one_is_what_is_evaluated")
_EVAL_NERF = _T + "kinds/nerf/test_nerf_evaluation.py::NerfProtocolTest::test_evaluate_script_on_a_nerf_init"
_EVAL_CT = _T + "kinds/ct/test_ct_evaluation.py::EvaluateCtScriptTest::test_shipped_ct_init_by_zoo_name"
_FIT = _T + "test_fit_script.py::FitImageTest::test_fits_an_image"
_FIT_CT = _T + "test_fit_script.py::FitCtTest::test_both_conventions"
_TRAIN = _T + "test_folder_training.py::test_meta_train_on_a_folder"
_STRATEGIES = _T + "test_distribute.py::StrategyFactoryTest::"
_RENDER = _T + "kinds/nerf/test_nerf_outputs.py::ScriptsTest::test_render_script"
_FEATURES = _T + "test_documented_features.py::"
_CROSS = (_T + "test_cross_class_script.py::CrossClassScriptTest::"
          "test_two_inits_give_a_two_by_two_table_and_heatmap")
# program -> {flag: test node id}; "" is the program run at all. A flag's test runs the
# program with it (the strategy flags: the strategy factory the flags feed, since no
# TPU or second GPU is here).
COVERAGE = {
    "pip install": {
        "": _T + "test_wheel_install.py::WheelInstallTest::test_installed_package_loads_and_fits_every_shipped_entry",
        "e": _T + "test_doc_commands.py::test_ci_runs_the_readme_commands",
    },
    "pytest": {"n": _T + "test_doc_commands.py::test_ci_runs_the_readme_commands"},
    "python -c": {"": _T + "test_doc_commands.py::test_python_snippet_of_distributed_md_runs"},
    "scripts/meta_train.py": {
        "": _TRAIN, "gin_file": _TRAIN, "gin_bindings": _TRAIN, "model_dir": _TRAIN,
        "strategy": _T + "test_preemption.py::test_killed_and_terminated_runs_resume_with_the_same_losses",
        "all_reduce_alg": _STRATEGIES + "test_builds_local_strategies",
        "tpu": _STRATEGIES + "test_unreachable_tpu_fails_fast",
        "collective_timeout": (_T + "test_multi_worker.py::"
                               "test_maml_workers_survive_a_killed_and_a_preempted_worker"),
    },
    "scripts/evaluate.py": {
        "": _EVAL_FOLDER, "init": _EVAL_FOLDER, "output_dir": _EVAL_FOLDER,
        "directory": _EVAL_FOLDER, "write_metadata": _EVAL_FOLDER,
        "num_examples": _EVAL_FOLDER,
        "meta_steps": _T + "test_wheel_install.py::WheelInstallTest::test_console_commands",
        "standard_steps": _T + "test_wheel_install.py::WheelInstallTest::test_console_commands",
        "baselines": _T + "kinds/image/test_image_evaluation.py::ImageProtocolTest::test_report_with_reconstructions_and_baselines",
        "select_fit_recipe": _EVAL_SELECT, "recipe_learning_rates": _EVAL_SELECT,
        "recipe_steps": _EVAL_SELECT, "recipe_examples": _EVAL_SELECT, "split": _EVAL_SELECT,
        "recipe_views": _T + "kinds/ct/test_ct_evaluation.py::CtProtocolTest::test_select_fit_recipe_on_validation_phantoms",
        "config": _EVAL_CT, "steps": _EVAL_CT, "views": _EVAL_CT,
        "dataset": _EVAL_NERF, "num_held_out_views": _EVAL_NERF,
        "recipe_ahead": _EVAL_SELECT, "recipe_switch_steps": _EVAL_SELECT,
        "recipe_momenta": _EVAL_MOMENTUM, "recipe_warmup_steps": _EVAL_MOMENTUM,
        "recipe_candidates": (_T + "test_whole_curve.py::ProtocolTest::"
                              "test_recipes_from_a_candidates_file_are_ranked_with_the_others"),
        "resolution": (_T + "kinds/image/test_image_resolution.py::ProtocolResolutionTest::"
                       "test_evaluate_command_resolution_flag"),
        "fit_cache_dir": _T + "test_fit_cache.py::FitCacheTest::test_evaluate_command_resumes_from_its_cache",
    },
    # The scripts docs/image/resolution.md runs to make the 128²/256² inits (emoji_siren@4–@6,
    # text_siren@5): the scaled warm start and the warm-start chain in the metadata.
    "docs/image/resolution/scale_first_layer.py": {
        flag: _T + "kinds/image/test_resolution_doc_scripts.py::ResolutionDocScriptsTest::"
        "test_scale_first_layer" for flag in ("", "init", "scale", "output_dir")},
    "docs/image/resolution/warm_start_chain.py": {
        flag: _T + "kinds/image/test_resolution_doc_scripts.py::ResolutionDocScriptsTest::"
        "test_warm_start_chain" for flag in ("", "init", "parent", "scale_command")},
    "scripts/resolution_table.py": {
        flag: (_T + "kinds/image/test_image_resolution.py::ResolutionTableScriptTest::"
               "test_write_metadata_records_what_zoo_load_reads")
        for flag in ("", "inits", "resolutions", "num_examples", "standard_steps",
                     "output_dir", "write_metadata")},
    "scripts/fit.py": {
        "": _FIT, "init": _FIT, "input": _FIT, "steps": _FIT, "output_dir": _FIT,
        "num_angles": _FIT_CT, "convention": _FIT_CT, "angles": _FIT_CT,
        "ground_truth": _FIT_CT,
        "num_support_views": _T + "test_fit_script.py::FitViewsTest::test_posed_views_directory",
    },
    "scripts/cross_class.py": {"": _CROSS, "inits": _CROSS, "output_dir": _CROSS,
                               "num_examples": _CROSS},
    "scripts/render.py": {flag: _RENDER for flag in ("", "init", "dataset", "config",
                                                      "fit_steps", "scale", "output_dir")},
    "scripts/publish.py": {
        **{flag: _FEATURES + "test_publish_destination_on_a_non_local_file_system"
           for flag in ("", "init", "name", "version", "description", "destination")},
        "evaluation_dir": _T + "test_cards.py::test_publish_command_writes_the_card",
        **{flag: _T + "test_publish_latest.py::test_command_flag"
           for flag in ("make_latest", "nomake_latest")}},
    "scripts/zoo.py list": {flag: _FEATURES + "test_zoo_list_json_and_markdown_formats"
                            for flag in ("", "format")},
    "scripts/zoo.py cards": {"": _T + "test_cards.py::test_zoo_cards_command_rewrites_the_cards"},
    "scripts/zoo.py site": {
        flag: _T + "test_site.py::test_site_command_refuses_a_folder_with_files_and_keeps_them"
        for flag in ("", "output_dir")},
    "scripts/convert_learnit_checkpoint.py": {
        flag: _FEATURES + "test_convert_command_succeeds_with_its_flags"
        for flag in ("", "input", "output_dir")},
    "scripts/launch_workers.py": {
        "": _T + "test_multi_worker.py::test_launched_reptile_workers_match_one_process",
        "num_workers": _T + "test_multi_worker.py::test_launched_reptile_workers_match_one_process",
        "print_tf_config": _FEATURES + "test_launch_workers_prints_tf_config_for_real_hosts",
        "hosts": _FEATURES + "test_launch_workers_prints_tf_config_for_real_hosts",
    },
}


def _doc_paths():
    paths = []
    for pattern in DOC_FILES:
        paths += sorted(glob.glob(os.path.join(REPO, pattern), recursive=True))
    return paths


def documented_commands(paths=None):
    """[(doc path relative to the repository, command)] of every ```sh block."""
    out = []
    for path in paths or _doc_paths():
        with open(path) as f:
            text = f.read()
        for block in re.findall(r"```(?:sh|bash|shell)\n(.*?)```", text, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = re.sub(r"\s+#.*$", "", line.strip())
                if not line or line.startswith("#"):
                    continue
                for command in re.split(r"\s*&&\s*", line):
                    command = command.strip().strip("()").strip()
                    if command and not command.startswith("cd "):
                        out.append((os.path.relpath(path, REPO), command))
    return out


def program_and_flags(command):
    """(program, sorted flag names) of a documented command."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if words[:1] == ["nice"]:  # `nice -n N COMMAND`: the command's own coverage
        words = words[3:] if words[1:2] == ["-n"] else words[1:]
    if words[:2] == ["python", "-c"]:
        return "python -c", []
    if words[:3] == ["python", "-m", "pytest"]:
        program, rest = "pytest", words[3:]
    elif words[0] == "pip" and len(words) > 1:
        program, rest = f"pip {words[1]}", words[2:]
    elif words[0] == "python" and len(words) > 1 and words[1].endswith(".py"):
        program, rest = words[1], words[2:]
    elif words[0].startswith("learnit-"):
        program, rest = "scripts/" + words[0][len("learnit-"):].replace("-", "_") + ".py", \
            words[1:]
    else:
        program, rest = words[0], words[1:]
    if "--" in rest:  # launch_workers.py -- FLAGS: the flags of the meta_train it starts
        rest = rest[:rest.index("--")]
    positional = [w for w in rest if not w.startswith("-")]
    if program == "scripts/zoo.py" and positional:
        program += " " + positional[0]
    flags = sorted({re.match(r"--?([A-Za-z][\w-]*)", w).group(1) for w in rest
                    if re.match(r"--?[A-Za-z]", w)})
    return program, flags


def uncovered(commands=None):
    """[(doc, command, what is missing)] for every documented command a test does not
    run: its program, or one of its flags, has no COVERAGE entry."""
    missing = []
    for doc, command in commands if commands is not None else documented_commands():
        program, flags = program_and_flags(command)
        if program in EXTERNAL or program.split(" ")[0] in EXTERNAL:
            continue
        entry = COVERAGE.get(program)
        if entry is None:
            missing.append((doc, command, f"program {program!r}"))
            continue
        for flag in flags or [""]:
            if flag not in entry and not (flag == "" and entry):
                missing.append((doc, command, f"{program} --{flag}"))
    return missing
