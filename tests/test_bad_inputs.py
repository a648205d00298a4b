"""The bad-input probe list of issue 15 as one table: every case names the input, the
error (or the correct value) it must give, and checks that nothing was left half written.

Each row is a `Case`: `setup` prepares the probe inside a fresh directory holding a
tiny zoo (`ctx.zoo`, one Siren init "tiny@1" that the process's zoo index points to) and
a cache (`ctx.cache`); `action` calls the Python API or a command's `main` in-process;
`raises` + `match` (a regex, or a function of ctx) is the expected error, or `check`
inspects the returned value (or the error). After the action, every file that appeared
under the directory must match one of `may_write`, and no temporary or partial file
(`*.part`, `*.tmp*`, `.tmp-*`, `*_temp*`) may be left anywhere. Add a row to grow the list.

The ids start with the issue's item number (1-8).
"""

import dataclasses
import fnmatch
import hashlib
import json
import os
import shutil
import signal
import stat
import struct
import zlib
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver
from PIL import Image

from learnit_tf import cli, train, zoo
from learnit_tf.meta import init_io
from learnit_tf.data import files
from learnit_tf.kinds.image import ImageTask
from learnit_tf.core.metadata import MetadataError
from learnit_tf.models import Siren
from tiny_runs import IMAGES, never_build, tiny_kwargs

FLAGS = flags.FLAGS
LEFTOVER_PATTERNS = ("*.part", "*.tmp", "*.tmp-*", "*.tmp.*", ".tmp-*", "*_temp", "*_temp/*")
METADATA = {"signal_class": "text", "kind": "image", "algorithm": "maml",
            "task": {"class_name": "ImageTask", "config": {"resolution": 8}},
            "dataset": {"name": "text_images", "config": "cpu64", "split": "train"},
            "hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 1e-2}}


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def pristine_zoo(tmp_path_factory):
    """A zoo holding tiny@1 (Siren 8x2, an 8x8 image init), copied for every case."""
    root = tmp_path_factory.mktemp("pristine")
    init = init_io.save_init(Siren(width=8, depth=2, seed=1), str(root / "init"), METADATA)
    zoo.publish(init, "tiny", "1", str(root / "zoo"), description="tiny probe init")
    return root / "zoo"


class Ctx:
    """What a case works in: tmp (its directory), zoo, cache, png, capsys, monkeypatch."""

    def __init__(self, tmp, pristine, capsys, monkeypatch):
        self.tmp, self.capsys, self.monkeypatch = str(tmp), capsys, monkeypatch
        self.zoo = shutil.copytree(pristine, os.path.join(self.tmp, "zoo"))
        self.index = os.path.join(self.zoo, "index.json")
        self.cache = os.path.join(self.tmp, "cache")
        self.entry = os.path.join(self.zoo, "tiny", "1")
        self.weights = os.path.join(self.entry, init_io.WEIGHTS_FILE)
        self.out = os.path.join(self.tmp, "out")
        self.model_dir = os.path.join(self.tmp, "run")
        self.png = os.path.join(self.tmp, "photo.png")
        Image.fromarray((IMAGES[0] * 255).astype(np.uint8)).save(self.png)
        monkeypatch.setenv(zoo.ENV_INDEX, self.index)
        monkeypatch.setenv(zoo.ENV_CACHE, self.cache)
        self.notes = []
        self.cleanups = []

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def run_main(self, main, argv, **flag_values):
        """(exit code, stdout, stderr) of a command's absl `main(argv)` run in-process with
        `flag_values` (other flags at their defaults; every command's flags share FLAGS, so
        they are set rather than parsed, which would apply the other commands' rules)."""
        was_parsed = FLAGS.is_parsed()
        self.capsys.readouterr()
        with flagsaver.flagsaver():
            FLAGS.unparse_flags()
            FLAGS.mark_as_parsed()
            for name, value in flag_values.items():
                setattr(FLAGS, name, value)
            try:
                code = main(argv)
            except SystemExit as e:
                code = e.code
        if not was_parsed:
            FLAGS.unparse_flags()
        out, err = self.capsys.readouterr()
        return code or 0, out, err

    def fit(self, init="tiny", **flag_values):
        """scripts/fit.py --init=INIT --input=ctx.png --output_dir=ctx.out --resolution=8."""
        from learnit_tf.commands import fit  # pylint: disable=import-outside-toplevel
        flag_values = dict(init=init, input=self.png, output_dir=self.out, resolution=8,
                           **flag_values)
        return self.run_main(fit.main, ["fit.py"], **flag_values)

    def zoo_command(self, *args):
        """scripts/zoo.py ARGS (the index and cache: $LEARNIT_TF_ZOO_INDEX, $LEARNIT_TF_CACHE)."""
        # pylint: disable-next=import-outside-toplevel
        from learnit_tf.commands import zoo as zoo_command
        return self.run_main(zoo_command.main, ["zoo.py", *args])


@dataclasses.dataclass
class Case:
    id: str
    action: Callable[[Ctx], Any]
    raises: Optional[type] = None
    match: Any = None  # regex (str or callable(ctx) -> str) on the error message
    check: Optional[Callable[[Ctx, Any], None]] = None  # on the result (or the error)
    setup: Optional[Callable[[Ctx], None]] = None
    may_write: Sequence[str] = ()  # globs (relative to ctx.tmp) of files the action may add

    def __str__(self):
        return self.id


# ------------------------------------------------------------------------- setups


def _meta_train(ctx, **overrides):
    return train.meta_train(ctx.model_dir, **tiny_kwargs(**overrides))


def _set_index_record(index, filename, path):
    with open(index) as f:
        data = json.load(f)
    data["entries"]["tiny"]["versions"]["1"]["files"][filename] = {
        "size": os.path.getsize(path), "sha256": _sha256(path)}
    init_io.write_json_atomic(index, data)


def _nan_weights(ctx):
    """tiny@1's weights become NaN/inf, listed with their correct hash (a bad publish)."""
    model = init_io.load_init(ctx.entry)
    model.weights[0].assign(np.full(model.weights[0].shape, np.nan, np.float32))
    model.weights[1].assign(np.full(model.weights[1].shape, np.inf, np.float32))
    os.remove(ctx.weights)
    model.save_weights(ctx.weights)
    _set_index_record(ctx.index, init_io.WEIGHTS_FILE, ctx.weights)


def _tamper(ctx):
    data = bytearray(open(ctx.weights, "rb").read())
    data[len(data) // 2] ^= 0xFF
    with open(ctx.weights, "wb") as f:
        f.write(data)


def _remote_copy(ctx):
    """tiny@1 served from ctx.served (a base_url directory): it is downloaded to the cache."""
    ctx.served = shutil.copytree(ctx.zoo, ctx.path("served"))
    with open(ctx.index) as f:
        data = json.load(f)
    data["base_url"] = ctx.served
    ctx.remote_index = ctx.path("remote", "index.json")
    init_io.write_json_atomic(ctx.remote_index, data)
    ctx.monkeypatch.setenv(zoo.ENV_INDEX, ctx.remote_index)


def _republished_with_new_hash(ctx):
    _remote_copy(ctx)
    ctx.cached_weights = os.path.join(zoo.download("tiny"), init_io.WEIGHTS_FILE)
    ctx.good_sha = _sha256(ctx.cached_weights)
    served = os.path.join(ctx.served, "tiny", "1", init_io.WEIGHTS_FILE)
    os.remove(served)
    Siren(width=8, depth=2, seed=99).save_weights(served)
    _set_index_record(ctx.remote_index, init_io.WEIGHTS_FILE, served)
    ctx.new_sha = _sha256(served)


def _check_pinned_copy_kept(ctx, error):
    del error
    assert _sha256(ctx.cached_weights) == ctx.good_sha


def _stale_part(ctx):
    _remote_copy(ctx)
    source = zoo._source_key(ctx.served)  # pylint: disable=protected-access
    root = os.path.join(ctx.cache, "zoo", source, "tiny", "1")
    os.makedirs(root)
    ctx.stale = os.path.join(root, ".model.weights.h5.k1lled.part")
    with open(ctx.stale, "wb") as f:
        f.write(b"\xff" * os.path.getsize(ctx.weights))
    old = os.path.getmtime(ctx.stale) - 3600
    os.utime(ctx.stale, (old, old))


def _check_download_ignored_the_part(ctx, directory):
    assert not os.path.exists(ctx.stale)
    assert _sha256(os.path.join(directory, init_io.WEIGHTS_FILE)) == _sha256(ctx.weights)


def _local_init(ctx, name="mine", seed=9):
    return init_io.save_init(Siren(width=8, depth=2, seed=seed), ctx.path(name), METADATA)


def _folder_named_like_the_zoo_entry(ctx):
    ctx.monkeypatch.chdir(ctx.tmp)
    _local_init(ctx, "tiny")


def _check_zoo_won(ctx, resolved):
    model, metadata, directory = resolved
    assert directory is None  # The zoo entry, not the folder.
    expected = init_io.load_init(ctx.entry).get_weights()
    for actual, wanted in zip(model.get_weights(), expected):
        np.testing.assert_array_equal(actual, wanted)
    assert metadata["signal_class"] == "text"
    assert len(ctx.notes) == 1 and "pass --init=./tiny" in ctx.notes[0]


def _sixteen_bit_png(ctx):
    ctx.png16 = ctx.path("gray16.png")
    Image.fromarray(np.full((16, 16), 32767, np.uint16)).save(ctx.png16)


def _check_sixteen_bit(ctx, image):
    del ctx
    assert image.shape == (16, 16, 3)
    np.testing.assert_allclose(image, 32767 / 65535, atol=1e-6)  # Not 1.0 (it was clipped).


def _huge_png_header(ctx):
    """A PNG whose header claims 14000×14000 pixels (the data is never decoded)."""
    small = ctx.path("small.png")
    Image.new("L", (1, 1)).save(small)
    data = bytearray(open(small, "rb").read())
    data[16:24] = struct.pack(">II", 14000, 14000)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR CRC
    with open(ctx.png, "wb") as f:
        f.write(data)


def _frozen_config(ctx):
    ctx.frozen = _local_init(ctx, "frozen")
    path = os.path.join(ctx.frozen, init_io.CONFIG_FILE)
    with open(path) as f:
        config = json.load(f)
    config["config"]["trainable"] = False
    init_io.write_json_atomic(path, config)


def _misspelt_config(ctx):
    ctx.misspelt = _local_init(ctx, "misspelt")
    path = os.path.join(ctx.misspelt, init_io.CONFIG_FILE)
    with open(path) as f:
        config = json.load(f)
    config["config"]["widht"] = config["config"].pop("width")
    init_io.write_json_atomic(path, config)


def _check_init_metadata_refused_too(ctx, error):
    with pytest.raises(MetadataError, match="outside the init directory"):
        init_io.read_init_metadata(ctx.linked)
    assert str(error).startswith(repr(os.path.join(ctx.linked, init_io.METADATA_FILE)))


def _weights_symlinked_outside(ctx):
    ctx.linked = _local_init(ctx, "linked")
    outside = shutil.copy(os.path.join(ctx.linked, init_io.WEIGHTS_FILE), ctx.path("w.h5"))
    os.remove(os.path.join(ctx.linked, init_io.WEIGHTS_FILE))
    os.symlink(outside, os.path.join(ctx.linked, init_io.WEIGHTS_FILE))


def _metadata_symlinked(ctx, inside):
    ctx.linked = _local_init(ctx, "linked")
    target = os.path.join(ctx.linked, "notes.txt") if inside else ctx.path("notes.txt")
    with open(target, "w") as f:
        f.write("these are notes, not JSON\n")
    os.remove(os.path.join(ctx.linked, init_io.METADATA_FILE))
    os.symlink(target, os.path.join(ctx.linked, init_io.METADATA_FILE))


def _shrunk_metadata(ctx):
    path = os.path.join(ctx.entry, init_io.METADATA_FILE)
    ctx.expected_size = os.path.getsize(path)
    init_io.write_json_atomic(path, {"signal_class": "text"})  # Valid JSON, fewer bytes.
    ctx.shrunk_size = os.path.getsize(path)


def _check_not_called_truncated(ctx, error):
    del ctx
    assert "truncated" not in str(error)


def _shared_umask(ctx):
    previous = os.umask(0o022)  # The usual umask, whatever the test runner's is.
    ctx.cleanups.append(lambda: os.umask(previous))


def _check_fit_outputs(ctx, result):
    code, _, err = result
    assert code == 0, err[-2000:]
    with open(os.path.join(ctx.out, "curve.csv")) as f:
        assert f.readline().strip() == "step,loss,psnr"  # Was step,loss,loss,psnr.
    mode = stat.S_IMODE(os.stat(os.path.join(ctx.out, "fitted")).st_mode)
    assert mode == 0o755, oct(mode)  # Was 0700 (mkdtemp).


def _check_init_mode(ctx, directory):
    del ctx
    mode = stat.S_IMODE(os.stat(directory).st_mode)
    # Needs `share_directory(tmp)` in init_io.save_init (issue 15 item 8; see atomic.py).
    assert mode == 0o755, f"exported init/ has mode {oct(mode)}, expected 0o755"


def _ctrl_c_then_resume(ctx):
    """meta_train gets SIGINT after step 2, then the same command is run again."""
    log_step = train.MetaTrainRunner.log_step

    def log_step_then_ctrl_c(runner, metrics):
        log_step(runner, metrics)
        if runner.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    ctx.monkeypatch.setattr(train.MetaTrainRunner, "log_step", log_step_then_ctrl_c)
    first = _meta_train(ctx, num_steps=1000, checkpoint_every=1000)
    ctx.monkeypatch.setattr(train.MetaTrainRunner, "log_step", log_step)
    first_out = ctx.capsys.readouterr().out
    second = _meta_train(ctx, num_steps=1000, checkpoint_every=1000, stop_after_steps=1)
    return first, first_out, second, ctx.capsys.readouterr().out


def _check_resumed(ctx, result):
    first, first_out, second, second_out = result
    assert first["step"] == 2 and "Stopped at step 2; checkpoint saved." in first_out
    assert f"Resumed from {ctx.model_dir}/checkpoints/ckpt-2 at step 2." in second_out
    assert second["step"] == 3


def _disk_full_at_checkpoint_4(ctx):
    save = tf.train.CheckpointManager.save
    checkpoints = os.path.join(ctx.model_dir, "checkpoints")

    def save_until_full(manager, checkpoint_number=None, **kwargs):
        if checkpoint_number == 4:
            os.makedirs(os.path.join(checkpoints, "ckpt-4_temp"))  # What TensorFlow leaves.
            raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
        return save(manager, checkpoint_number=checkpoint_number, **kwargs)

    ctx.monkeypatch.setattr(tf.train.CheckpointManager, "save", save_until_full)


def _hold_model_dir_lock(ctx):
    ctx.lock = train.ModelDirLock(ctx.model_dir)
    os.makedirs(ctx.model_dir)
    ctx.lock.acquire()
    ctx.cleanups.append(ctx.lock.release)


def _exits(code, pattern, stream="err"):
    """A check of a command's (exit code, stdout, stderr): status, message, no traceback."""
    def check(ctx, result):
        del ctx
        status, out, err = result
        text = err if stream == "err" else out
        assert status == code, (status, out[-1500:], err[-1500:])
        assert _search(pattern, text), (pattern, text[-1500:])
        assert "Traceback" not in out + err
    return check


def _search(pattern, text):
    import re  # pylint: disable=import-outside-toplevel
    return re.search(pattern, text, re.S) is not None


# --------------------------------------------------------------------------- table

CASES = [
    # 1. A local folder never shadows a zoo init; folders are given as paths.
    Case("1-bare-name-is-the-zoo-not-the-folder", setup=_folder_named_like_the_zoo_entry,
         action=lambda ctx: cli.resolve_init("tiny", log=ctx.notes.append),
         check=_check_zoo_won),
    Case("1-unknown-bare-name-with-a-folder", setup=lambda ctx: (ctx.monkeypatch.chdir(ctx.tmp),
                                                                _local_init(ctx)),
         action=lambda ctx: cli.resolve_init("mine"), raises=ValueError,
         match=r"'mine' is not a zoo init .*pass --init=\./mine"),
    # 2. 16-bit grayscale PNGs at full precision (they loaded almost all white).
    Case("2-16-bit-grayscale-png", setup=_sixteen_bit_png,
         action=lambda ctx: files.load_image(ctx.png16), check=_check_sixteen_bit),
    # 3. A published version never changes under you.
    Case("3-pinned-version-republished-with-a-new-hash", setup=_republished_with_new_hash,
         action=lambda ctx: zoo.load("tiny"), raises=zoo.PinnedVersionChangedError,
         match=lambda ctx: (rf"'tiny' version '1' .*model.weights.h5 with sha256 {ctx.new_sha}.*"
                            rf"pinned in the cache has sha256 {ctx.good_sha}"),
         check=_check_pinned_copy_kept),
    # 4. One meta_train run per model_dir.
    Case("4-second-run-on-a-locked-model-dir", setup=_hold_model_dir_lock,
         action=lambda ctx: _meta_train(ctx, model_fn=never_build),
         raises=train.ModelDirLockedError,
         match=lambda ctx: rf"in use by another meta_train run \(pid {os.getpid()} "),
    # 5. No exit 0 with a useless result.
    Case("5-num-steps-negative", action=lambda ctx: _meta_train(ctx, num_steps=-5,
                                                                model_fn=never_build),
         raises=train.MetaTrainConfigError, match=r"num_steps must be an integer >= 1, got -5"),
    Case("5-fit-learning-rate-1e30-diverges", action=lambda ctx: ctx.fit(
        steps=3, learning_rate=1e30), check=_exits(1, r"The fit diverged")),
    Case("5-nan-init-fails-verify", setup=_nan_weights, action=lambda ctx: zoo.verify("tiny"),
         raises=zoo.NonFiniteWeightsError,
         match=r"'tiny' version '1' .*: 2 of 4 weight tensors hold NaN or infinite values"),
    Case("5-nan-init-fails-zoo-verify-command", setup=_nan_weights,
         action=lambda ctx: ctx.zoo_command("verify", "tiny"),
         check=_exits(1, r"FAILED tiny@1: .*hold NaN or infinite values", stream="out")),
    Case("5-nan-init-fit-writes-nothing", setup=_nan_weights,
         action=lambda ctx: ctx.fit(steps=0), check=_exits(1, r"NaN/infinite after 0 steps")),
    Case("5-config-trainable-false", setup=_frozen_config,
         action=lambda ctx: init_io.load_init(ctx.frozen), raises=ValueError,
         match=r"frozen/config.json: field 'config.trainable' is False: it would freeze"),
    Case("5-config-field-the-class-does-not-take", setup=_misspelt_config,
         action=lambda ctx: init_io.load_init(ctx.misspelt), raises=ValueError,
         match=r"misspelt/config.json: field\(s\) config.widht are not Siren options"),
    Case("5-config-trainable-false-in-fit", setup=_frozen_config,
         action=lambda ctx: ctx.fit(init=ctx.frozen, steps=1),
         check=_exits(2, r"frozen/config.json: field 'config.trainable' is False")),
    Case("5-fit-learning-rate-zero", action=lambda ctx: ctx.fit(learning_rate=0.0),
         check=_exits(2, r"--learning_rate must be > 0, got 0")),
    # 6. Ctrl-C checkpoints, and the rerun resumes (and says so).
    Case("6-ctrl-c-checkpoints-then-resumes", action=_ctrl_c_then_resume, check=_check_resumed,
         may_write=("run", "run/*")),
    # 7. Errors naming the input instead of raw tracebacks.
    Case("7-num-steps-not-a-number", action=lambda ctx: _meta_train(ctx, num_steps="abc",
                                                                    model_fn=never_build),
         raises=train.MetaTrainConfigError, match=r"num_steps must be an integer >= 1, got 'abc'"),
    Case("7-checkpoint-every-zero", action=lambda ctx: _meta_train(ctx, checkpoint_every=0,
                                                                   model_fn=never_build),
         raises=train.MetaTrainConfigError, match=r"checkpoint_every must be an integer >= 1"),
    Case("7-output-dir-is-a-file", setup=lambda ctx: open(ctx.out, "w").close(),
         action=lambda ctx: ctx.fit(), check=_exits(2, r"out' exists and is not a directory")),
    Case("7-fit-steps-negative", action=lambda ctx: ctx.fit(steps=-1),
         check=_exits(2, r"--steps must be >= 0, got -1")),
    Case("7-tampered-zoo-entry-in-fit", setup=_tamper, action=lambda ctx: ctx.fit(),
         check=_exits(2, r"--init='tiny': the zoo entry could not be loaded and verified: "
                         r"Refusing zoo entry 'tiny' version '1': .*sha256")),
    Case("7-missing-zoo-index-in-fit",
         setup=lambda ctx: ctx.monkeypatch.setenv(zoo.ENV_INDEX, ctx.path("none", "index.json")),
         action=lambda ctx: ctx.fit(), check=_exits(2, r"Zoo index .*none/index.json' not found")),
    Case("7-14000-squared-png", setup=_huge_png_header, action=lambda ctx: ctx.fit(),
         check=_exits(2, r"photo.png' is too large to load .*Downscale it first")),
    Case("7-disk-full-while-checkpointing", setup=_disk_full_at_checkpoint_4,
         action=lambda ctx: _meta_train(ctx), raises=train.CheckpointWriteError,
         match=r"Could not write checkpoint 4 .*No space left on device.*ckpt-2\) is intact",
         may_write=("run", "run/*")),
    Case("7-dataset-resolution-differs-from-the-task",
         action=lambda ctx: _meta_train(ctx, task=ImageTask(16), model_fn=never_build),
         raises=train.MetaTrainConfigError, match=r"images are 8×8, the task expects 16×16"),
    # 8. Smaller ones.
    Case("8-file-symlink-out-of-an-init", setup=_weights_symlinked_outside,
         action=lambda ctx: init_io.load_init(ctx.linked), raises=ValueError,
         match=r"model.weights.h5' is a symlink to .*w.h5', outside the init directory"),
    Case("8-metadata-symlinked-to-a-non-json-file", setup=lambda ctx: _metadata_symlinked(
        ctx, inside=True), action=lambda ctx: init_io.read_metadata(ctx.linked),
         raises=MetadataError, match=r"metadata.json: not a valid JSON metadata file"),
    Case("8-metadata-symlinked-out-of-the-init", setup=lambda ctx: _metadata_symlinked(
        ctx, inside=False), action=lambda ctx: init_io.read_metadata(ctx.linked),
         raises=MetadataError, match=r"metadata.json' is a symlink to .*notes.txt', outside",
         check=_check_init_metadata_refused_too),
    Case("8-stale-part-file-in-the-cache", setup=_stale_part,
         action=lambda ctx: zoo.download("tiny"), check=_check_download_ignored_the_part,
         may_write=("cache/*",)),
    Case("8-zoo-verify-names-the-version", setup=_tamper,
         action=lambda ctx: ctx.zoo_command("verify", "tiny"),
         check=_exits(1, r"FAILED tiny@1: Refusing zoo entry", stream="out")),
    Case("8-shrunk-metadata-is-a-size-mismatch", setup=_shrunk_metadata,
         action=lambda ctx: zoo.describe("tiny"), raises=zoo.IntegrityError,
         match=lambda ctx: (rf"size mismatch: expected {ctx.expected_size} bytes as the index "
                            rf"records, got {ctx.shrunk_size} bytes"),
         check=_check_not_called_truncated),
    Case("8-fit-curve-header-and-fitted-mode", setup=_shared_umask,
         action=lambda ctx: ctx.fit(steps=2), check=_check_fit_outputs, may_write=("out", "out/*")),
    Case("8-exported-init-mode", setup=_shared_umask,
         action=lambda ctx: init_io.save_init(Siren(width=8, depth=2, seed=0), ctx.path("init")),
         check=_check_init_mode, may_write=("init", "init/*")),
]


def _all_files(root):
    return {os.path.relpath(os.path.join(d, name), root)
            for d, dirs, names in os.walk(root) for name in names + dirs}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input(case, pristine_zoo, tmp_path, capsys, monkeypatch):
    ctx = Ctx(tmp_path, pristine_zoo, capsys, monkeypatch)
    try:
        _run_case(case, ctx)
    finally:
        for cleanup in reversed(ctx.cleanups):
            cleanup()


def _run_case(case, ctx):
    if case.setup:
        case.setup(ctx)
    before = _all_files(ctx.tmp)
    if case.raises:
        with pytest.raises(case.raises) as caught:
            case.action(ctx)
        match = case.match(ctx) if callable(case.match) else case.match
        assert _search(match, str(caught.value)), (match, str(caught.value))
        outcome = caught.value
    else:
        outcome = case.action(ctx)
    if case.check:
        case.check(ctx, outcome)
    # Nothing half written: only the declared outputs appeared, and no temporary is left.
    new = sorted(p for p in _all_files(ctx.tmp) - before
                 if not any(fnmatch.fnmatch(p, glob) for glob in case.may_write))
    assert new == [], f"{case.id} wrote {new}"
    leftovers = sorted(p for p in _all_files(ctx.tmp)
                       if any(fnmatch.fnmatch(os.path.basename(p), glob) or fnmatch.fnmatch(p, glob)
                              for glob in LEFTOVER_PATTERNS))
    assert leftovers == [], f"{case.id} left {leftovers}"


def test_every_item_of_the_issue_has_a_case():
    assert sorted({case.id.split("-")[0] for case in CASES}) == [str(i) for i in range(1, 9)]
    assert len({case.id for case in CASES}) == len(CASES)
