"""Issue 26's probes of shared files, output folders, downloads and raw tracebacks, in the
probe table of tests/test_bad_inputs.py (the same `Case`/`Ctx` machinery: the clear error,
and nothing half written or lost); in their own module, beside tests/test_bad_inputs_26.py
(the input-decoding probes), so that no two sessions edit one table at once.

The ids start with the issue's item number: 1 (data loss: output folders, publish),
3 (downloads: deadline, size cap), 4 (raw tracebacks).
"""

import functools
import os
import subprocess
import sys
import wave

import numpy as np
import pytest

from learnit_tf import train, zoo
from learnit_tf.meta import init_io
from learnit_tf.zoo import transport as zoo_transport
from learnit_tf.kinds.audio import AudioTask
from learnit_tf.kinds.audio import folder as audio_folder
from learnit_tf.kinds.ct import files as ct_files
from learnit_tf.kinds.ct.task import CtTask
from learnit_tf.models import Siren
from learnit_tf.core.output_dir import LOCK_FILE
from test_bad_inputs import Case, Ctx, _exits, _local_init, _run_case, pristine_zoo  # noqa: F401
from test_zoo_transport import _Server
from tiny_runs import never_build, tiny_kwargs

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
OUT_LOCK = os.path.join("out", LOCK_FILE)


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _read(path):
    with open(path) as f:
        return f.read()


# ------------------------------------------------------------------ output folders


def _users_files_in_out(ctx):
    """out/ already holds the user's notes.txt, fitted/notes.txt and an old curve.csv."""
    _write(os.path.join(ctx.out, "notes.txt"), "mine")
    _write(os.path.join(ctx.out, "fitted", "notes.txt"), "mine too")
    _write(os.path.join(ctx.out, "curve.csv"), "an old curve")


def _check_users_files(replaced):
    def check(ctx, result):
        assert _read(os.path.join(ctx.out, "notes.txt")) == "mine"
        assert _read(os.path.join(ctx.out, "fitted", "notes.txt")) == "mine too"
        curve = _read(os.path.join(ctx.out, "curve.csv"))
        if replaced:
            assert result[0] == 0, result[2][-2000:]
            assert curve.startswith("step,loss,psnr\n0,")
            assert init_io.read_metadata(os.path.join(ctx.out, "fitted"))["fitted"]["steps"] == 1
        else:
            assert curve == "an old curve"
            assert sorted(os.listdir(os.path.join(ctx.out, "fitted"))) == ["notes.txt"]
    return check


def _both(*checks):
    def check(ctx, result):
        for one in checks:
            one(ctx, result)
    return check


def _unwritable_out(ctx):
    """ctx.out becomes a folder this process cannot create (skips if there is none)."""
    locked = ctx.path("read_only")
    os.mkdir(locked, 0o555)
    ctx.cleanups.append(lambda: os.chmod(locked, 0o755))
    try:
        open(os.path.join(locked, "probe"), "w").close()
    except OSError:
        ctx.out = os.path.join(locked, "out")
        return
    os.remove(os.path.join(locked, "probe"))
    try:  # Root ignores permissions, but not a read-only file system.
        os.mkdir("/sys/learnit_probe")
        os.rmdir("/sys/learnit_probe")
    except OSError:
        ctx.out = "/sys/learnit_out"
        return
    pytest.skip("no unwritable folder on this machine")


def _out_locked_by_another_process(ctx):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom learnit_tf.output_dir import OutputDir\n"
         "out = OutputDir(sys.argv[1]).open(); print('held', flush=True); time.sleep(120)",
         ctx.out], stdout=subprocess.PIPE, text=True, cwd=REPO)
    ctx.cleanups.append(lambda: (holder.kill(), holder.wait()))
    assert holder.stdout.readline().strip() == "held"


def _script(ctx, name, *args):
    """(exit code, stdout, stderr) of scripts/NAME.py ARGS as its own process (commands with
    the same flag names cannot be imported into one process)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", f"{name}.py"), *args],
                            capture_output=True, text=True, cwd=ctx.tmp, env=env, timeout=600)
    return result.returncode, result.stdout, result.stderr


def _old_report(ctx):
    _write(os.path.join(ctx.out, "report.csv"), "an earlier report")


def _check_old_report_kept(ctx, result):
    del result
    assert _read(os.path.join(ctx.out, "report.csv")) == "an earlier report"


# ------------------------------------------------------------------------ publish


def _zoo_file(ctx):
    ctx.zoo_file = ctx.path("zoo.json")
    _write(ctx.zoo_file, "{}")
    ctx.init = _local_init(ctx)


def _check_zoo_file_kept(ctx, error):
    del error
    assert _read(ctx.zoo_file) == "{}"


# ---------------------------------------------------------------------- downloads


def _served(ctx, behaviour):
    """tiny@1 served over http from 127.0.0.1 with `behaviour` (see test_zoo_transport),
    through a remote index; the download deadline is 1.5 s."""
    files = {}
    for directory, _, names in os.walk(ctx.zoo):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                files["/" + os.path.relpath(path, ctx.zoo)] = f.read()
    server = _Server(files, {f"/tiny/1/{k}": v for k, v in behaviour.items()})
    ctx.cleanups.append(server.close)
    ctx.monkeypatch.setenv(zoo.ENV_INDEX, server.url + "index.json")
    ctx.monkeypatch.setenv(zoo_transport.ENV_DEADLINE, "1.5")


def _check_not_cached(filename):
    """Neither the file nor a partial download of it is in the cache (the verified files
    downloaded before it may be)."""
    def check(ctx, error):
        del error
        kept = [n for d, _, names in os.walk(ctx.cache) for n in names if "pins" not in d]
        assert not [n for n in kept if filename in n], kept
    return check


# ------------------------------------------------------------------ meta_train data


def _ct_folder_of_one_slice(ctx):
    ctx.slices = ctx.path("slices")
    os.makedirs(ctx.slices)
    np.save(os.path.join(ctx.slices, "only.npy"),
            np.random.default_rng(0).random((8, 8)).astype(np.float32))


def _meta_train_ct_folder(ctx):
    dataset_fn = functools.partial(ct_files.ct_folder_examples, ctx.slices, resolution=8)
    return train.meta_train(ctx.model_dir, **tiny_kwargs(
        task=CtTask(8, num_angles=4), dataset_fn=dataset_fn, eval_every=1, num_eval_examples=1,
        model_fn=never_build))


def _wav(path, ints, rate=8000):
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.asarray(ints, "<i2").tobytes())


def _audio_folder_with_a_broken_test_file(ctx):
    ctx.wavs = ctx.path("wavs")
    for split in ("train", "test"):
        os.makedirs(os.path.join(ctx.wavs, split))
    tone = (np.sin(np.arange(64) * 0.3) * 20000).astype(np.int16)
    _wav(os.path.join(ctx.wavs, "train", "a.wav"), tone)
    _wav(os.path.join(ctx.wavs, "test", "b.wav"), tone)
    ctx.broken = os.path.join(ctx.wavs, "test", "c.wav")
    _write(ctx.broken, "RIFF, but not a WAVE file at all")


def _meta_train_audio_folder(ctx):
    dataset_fn = functools.partial(audio_folder.audio_folder_examples, ctx.wavs, num_samples=64)
    return train.meta_train(ctx.model_dir, **tiny_kwargs(
        task=AudioTask(64), dataset_fn=dataset_fn, eval_every=1, num_eval_examples=2,
        model_fn=never_build))


def _dtype_init(dtype):
    def setup(ctx):
        ctx.init = _local_init(ctx, "typed")
        path = os.path.join(ctx.init, init_io.CONFIG_FILE)
        import json  # pylint: disable=import-outside-toplevel
        with open(path) as f:
            config = json.load(f)
        config["config"]["dtype"] = dtype
        init_io.write_json_atomic(path, config)
    return setup


# --------------------------------------------------------------------------- table

CASES = [
    # 1. Nothing a user owns is lost; output folders are checked first and locked.
    Case("1-fit-into-a-folder-holding-files", setup=_users_files_in_out,
         action=lambda ctx: ctx.fit(steps=1),
         check=_both(_exits(2, r"--output_dir='.*out' already holds curve.csv, fitted, "
                               r"notes.txt; pass --overwrite to replace the files this command "
                               r"writes \(other files are kept\)"),
                     _check_users_files(replaced=False)),
         may_write=(OUT_LOCK,)),
    Case("1-fit-overwrite-keeps-the-users-files", setup=_users_files_in_out,
         action=lambda ctx: ctx.fit(steps=1, overwrite=True),
         check=_check_users_files(replaced=True), may_write=("out/*",)),
    Case("1-fit-output-dir-unwritable", setup=_unwritable_out,
         action=lambda ctx: ctx.fit(steps=1),
         check=_exits(2, r"--output_dir='.*out' cannot be created \(.*\); choose a folder you "
                         r"can write. Nothing was run.")),
    Case("1-fit-output-dir-in-use-by-another-process", setup=_out_locked_by_another_process,
         action=lambda ctx: ctx.fit(steps=1),
         check=_exits(2, r"--output_dir='.*out' is being written by another learnit command "
                         r"right now"), may_write=()),
    Case("1-evaluate-into-a-folder-holding-a-report", setup=_old_report,
         action=lambda ctx: _script(ctx, "evaluate", "--init=tiny", f"--output_dir={ctx.out}"),
         check=_both(_exits(2, r"already holds report.csv; pass --overwrite"),
                     _check_old_report_kept), may_write=(OUT_LOCK,)),
    Case("1-cross-class-into-a-folder-holding-files", setup=_old_report,
         action=lambda ctx: _script(ctx, "cross_class", "--inits=tiny",
                                    f"--output_dir={ctx.out}"),
         check=_both(_exits(2, r"already holds report.csv; pass --overwrite"),
                     _check_old_report_kept), may_write=(OUT_LOCK,)),
    Case("1-render-into-a-folder-holding-files", setup=_old_report,
         action=lambda ctx: _script(ctx, "render", "--init=tiny", f"--output_dir={ctx.out}"),
         check=_both(_exits(2, r"already holds report.csv; pass --overwrite"),
                     _check_old_report_kept), may_write=(OUT_LOCK,)),
    Case("1-convert-into-a-folder-holding-files", setup=_old_report,
         action=lambda ctx: _script(ctx, "convert_learnit_checkpoint",
                                    f"--input={ctx.path('none.pkl')}", f"--output_dir={ctx.out}"),
         check=_both(_exits(1, r"already holds report.csv; pass --overwrite"),
                     _check_old_report_kept), may_write=(OUT_LOCK,)),
    # 3. Downloads: a total deadline, and the size the index records as a cap.
    Case("3-trickling-server-cut-at-the-deadline",
         setup=lambda ctx: _served(ctx, {"config.json": "trickle"}),
         action=lambda ctx: zoo.download("tiny"), raises=zoo.DownloadTimeoutError,
         match=r"tiny/1/config.json: it did not finish within 1.5 s \(the total deadline",
         check=_check_not_cached("config.json"), may_write=("cache", "cache/*")),
    Case("3-silent-server-cut-at-the-deadline",
         setup=lambda ctx: _served(ctx, {"model.weights.h5": "silent"}),
         action=lambda ctx: zoo.download("tiny"), raises=zoo.DownloadTimeoutError,
         match=r"model.weights.h5: it did not finish within 1.5 s",
         check=_check_not_cached("model.weights.h5"), may_write=("cache", "cache/*")),
    Case("3-more-bytes-than-the-index-records",
         setup=lambda ctx: _served(ctx, {"metadata.json": "endless"}),
         action=lambda ctx: zoo.download("tiny"), raises=zoo.IntegrityError,
         match=r"metadata.json: the server sends more than the \d+ bytes the index records "
               r"\(cut off there", check=_check_not_cached("metadata.json"),
         may_write=("cache", "cache/*")),
    Case("3-trickling-server-in-fit",
         setup=lambda ctx: _served(ctx, {"config.json": "trickle"}),
         action=lambda ctx: ctx.fit(steps=1),
         check=_exits(2, r"--init='tiny': the zoo entry could not be loaded and verified: "
                         r"Could not download .*config.json: it did not finish within 1.5 s"),
         may_write=("cache", "cache/*")),
    # 4. Errors naming the input instead of raw tracebacks.
    Case("4-meta-train-eval-split-of-a-one-file-ct-folder", setup=_ct_folder_of_one_slice,
         action=_meta_train_ct_folder, raises=train.MetaTrainConfigError,
         match=r"meta_train.eval_split='validation' of ct_folder_examples \(the 1 held-out "
               r"examples evaluated every 1 steps\): Split 'validation' of folder .*slices' is "
               r"empty .*set meta_train.eval_every=0"),
    Case("4-meta-train-eval-split-with-an-unreadable-wav",
         setup=_audio_folder_with_a_broken_test_file, action=_meta_train_audio_folder,
         raises=train.MetaTrainConfigError,
         match=r"meta_train.eval_split='validation' of audio_folder_examples .*test/c.wav"),
    Case("4-config-dtype-float16", setup=_dtype_init("float16"),
         action=lambda ctx: init_io.load_init(ctx.init), raises=ValueError,
         match=r"typed/config.json: field 'config.dtype' is 'float16'; supported: 'float32' "
               r".*mixed_precision=True"),
    Case("4-config-dtype-mixed-bfloat16-in-fit", setup=_dtype_init("mixed_bfloat16"),
         action=lambda ctx: ctx.fit(init=ctx.init, steps=1),
         check=_exits(2, r"field 'config.dtype' is 'mixed_bfloat16'; supported: 'float32'")),
    Case("4-model-fn-dtype-float16-in-meta-train",
         action=lambda ctx: train.meta_train(ctx.model_dir, **tiny_kwargs(
             model_fn=lambda seed: Siren(out_features=3, width=8, depth=2, seed=seed,
                                         dtype="float16"))),
         raises=train.MetaTrainConfigError,
         match=r"meta_train.model_fn builds a Siren with dtype 'float16' .* but the data is "
               r"float32; supported: 'float32'"),
    Case("4-publish-destination-is-a-file", setup=_zoo_file,
         action=lambda ctx: zoo.publish(ctx.init, "mine", "1", ctx.zoo_file), raises=ValueError,
         match=r"Cannot publish to --destination='.*zoo.json': it is a file, not a zoo "
               r"directory", check=_check_zoo_file_kept),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input(case, pristine_zoo, tmp_path, capsys, monkeypatch):  # noqa: F811
    ctx = Ctx(tmp_path, pristine_zoo, capsys, monkeypatch)
    try:
        _run_case(case, ctx)
    finally:
        for cleanup in reversed(ctx.cleanups):
            cleanup()


def test_ids_are_unique_and_numbered_by_item():
    assert {case.id.split("-")[0] for case in CASES} == {"1", "3", "4"}
    assert len({case.id for case in CASES}) == len(CASES)
