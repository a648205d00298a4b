"""Issue 26's input-decoding and validation probes, in the probe table of
tests/test_bad_inputs.py (the same `Case`/`Ctx` machinery and checks: the error or the
exact values, and nothing half written); kept in their own module so that the table of
earlier issues is not edited by two sessions at once.

The ids start with the issue's item number: 2 (silent wrong input), 3 (resources),
5 (unclear errors). Values are compared against the files' own integers or an
independent computation.
"""

import json
import os
import struct
import subprocess
import sys
import wave

import numpy as np
import pytest
import tensorflow as tf
import tifffile
from PIL import Image

from learnit_tf import train, zoo
from learnit_tf.meta import init_io
from learnit_tf.data import files
from learnit_tf.kinds.audio import folder as audio_folder
from learnit_tf.kinds.ct import files as ct_files
from learnit_tf.kinds.ct.task import CtTask, evenly_spaced_angles
from learnit_tf.kinds.nerf import files as nerf_files
from learnit_tf.kinds.nerf import procedural
from learnit_tf.core.metadata import MetadataError
from test_bad_inputs import (Case, Ctx, _exits, _local_init, _run_case,  # noqa: F401
                             pristine_zoo)
from tiny_runs import never_build, tiny_kwargs

# --------------------------------------------------------------------- images


def _portrait_jpeg(ctx):
    """A 16×24 (H×W) upright picture stored rotated, with EXIF orientation 6 (90° CW)."""
    blocks = np.array([[[250, 10, 10], [10, 250, 10], [10, 10, 250]],
                       [[250, 250, 10], [10, 250, 250], [130, 130, 130]]], np.uint8)
    ctx.upright = np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)
    exif = Image.Exif()
    exif[0x0112] = 6
    ctx.jpeg = ctx.path("portrait.jpg")
    Image.fromarray(ctx.upright).transpose(Image.Transpose.ROTATE_90).save(
        ctx.jpeg, quality=100, subsampling=0, exif=exif.tobytes())


def _check_upright(ctx, image):
    assert image.shape == (16, 24, 3), image.shape  # Stored 24×16: it was fitted sideways.
    assert np.abs(image * 255.0 - ctx.upright).max() < 6.0


def _check_upright_gray(ctx, image):
    assert image.shape == (16, 24, 1), image.shape
    luma = ctx.upright @ np.array([0.299, 0.587, 0.114])  # ITU-R 601, as the CT reader.
    assert np.abs(image[..., 0] * 255.0 - luma).max() < 6.0


def _uint32_tiff(ctx):
    ctx.values = np.array([[0, 1, 65535, 65536], [2**31, 2**32 - 2, 2**32 - 1, 123456789]],
                          np.uint32)
    ctx.tiff = ctx.path("deep.tif")
    tifffile.imwrite(ctx.tiff, ctx.values)


def _check_uint32(ctx, image):
    expected = ctx.values.astype(np.float64) / (2**32 - 1)  # Was divided by 65535.
    np.testing.assert_array_equal(image[..., 0], expected.astype(np.float32))


def _png16(ctx, channels):
    rng = np.random.RandomState(channels)
    ctx.values = rng.randint(0, 65536, size=(6, 7, channels)).astype(np.uint16)
    ctx.png16 = ctx.path(f"deep{channels}.png")
    with open(ctx.png16, "wb") as f:
        f.write(tf.io.encode_png(tf.constant(ctx.values)).numpy())


def _check_png16(ctx, image):
    assert np.any(ctx.values % 257 != 0)  # Not representable in 8 bits.
    np.testing.assert_array_equal(image, (ctx.values / 65535.0).astype(np.float32))


# ----------------------------------------------------------------------- NeRF


def _posed_object(ctx, change):
    """One procedural object in the NeRF-synthetic layout, frame 1's matrix changed."""
    objects = {"obj": procedural.generate_object(0, 0, 0, 8, 3)}
    procedural.write_shapenet_format(ctx.tmp, "", objects, {"train": ["obj"]})
    ctx.views = ctx.path("obj")
    ctx.transforms = os.path.join(ctx.views, "transforms.json")
    with open(ctx.transforms) as f:
        meta = json.load(f)
    matrix = np.array(meta["frames"][1]["transform_matrix"])
    meta["frames"][1]["transform_matrix"] = change(matrix).tolist()
    with open(ctx.transforms, "w") as f:
        json.dump(meta, f)


def _far_away(m):
    m = m.copy()
    m[:3, 3] *= 10.0
    return m


def _pose_case(name, change, pattern):
    return Case(f"2-nerf-pose-{name}", setup=lambda ctx: _posed_object(ctx, change),
                action=lambda ctx: nerf_files.read_object(ctx.views), raises=ValueError,
                match=lambda ctx: rf"{ctx.transforms}: frame 1 'transform_matrix' .*{pattern}")


# ------------------------------------------------------------------------- CT


def _sinogram(ctx, array, name="sinogram.npy"):
    ctx.sinogram = ctx.path(name)
    np.save(ctx.sinogram, array)


def _png_sinogram(ctx):
    ctx.sinogram = ctx.path("sinogram.png")
    Image.new("L", (16, 4)).save(ctx.sinogram)


def _grid_angles(ctx):
    _sinogram(ctx, np.zeros((4, 16)))
    ctx.angles = ctx.path("angles.npy")
    np.save(ctx.angles, evenly_spaced_angles(4).reshape(2, 2))


# ------------------------------------------------------- init files: zoo, metadata, config


def _edit_json(path, edit):
    with open(path) as f:
        data = json.load(f)
    edit(data)
    with open(path, "w") as f:
        json.dump(data, f)  # NaN / Infinity are written as the literals json.load accepts.


def _init_with(ctx, config=None, metadata=None):
    ctx.init = _local_init(ctx, "edited")
    if config:
        _edit_json(os.path.join(ctx.init, init_io.CONFIG_FILE),
                   lambda data: data["config"].update(config))
    if metadata:
        _edit_json(os.path.join(ctx.init, init_io.METADATA_FILE), metadata)


def _nan_psnr(data):
    data["final_train_metrics"] = {"psnr": float("nan"), "loss": float("inf")}


def _check_not_the_learning_rate(ctx, result):
    del ctx
    assert "learning_rate" not in result[2], result[2][-1500:]


# ---------------------------------------------------------------------- audio


def _write_wav(path, ints, rate=8000):
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.asarray(ints, "<i2").tobytes())
    return path


def _audio_folder_with_junk(ctx):
    ctx.audio = ctx.path("clips")
    os.makedirs(os.path.join(ctx.audio, "sub.wav"))
    for name in ("a.wav", "b.wav", ".hidden.wav", os.path.join("sub.wav", "c.wav")):
        _write_wav(os.path.join(ctx.audio, name), np.arange(300) * 50)
    with open(os.path.join(ctx.audio, "._a.wav"), "wb") as f:
        f.write(b"\x00\x05\x16\x07" + b"\x00" * 300)  # A macOS AppleDouble resource fork.
    os.symlink(ctx.path("gone.wav"), os.path.join(ctx.audio, "dangling.wav"))


def _only_junk(ctx):
    _audio_folder_with_junk(ctx)
    for name in ("a.wav", "b.wav"):
        os.remove(os.path.join(ctx.audio, name))


def _extensible_wav(ctx):
    """16-bit PCM behind a WAVE_FORMAT_EXTENSIBLE header, written byte by byte."""
    ctx.ints = (np.arange(400) * 163 % 65536 - 32768).astype("<i2")
    raw = ctx.ints.tobytes()
    guid = struct.pack("<IHH", 1, 0, 0x0010) + bytes.fromhex("800000aa00389b71")  # PCM
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 8000, 16000, 2, 16, 22, 16, 4) + guid
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data"
            + struct.pack("<I", len(raw)) + raw)
    ctx.wav = ctx.path("extensible.wav")
    with open(ctx.wav, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def _check_extensible(ctx, waveform):
    np.testing.assert_array_equal(waveform, (ctx.ints / 32768.0).astype(np.float32))


def _truncated_wav(ctx):
    ctx.wav = _write_wav(ctx.path("cut.wav"), np.arange(1000))
    with open(ctx.wav, "rb") as f:
        data = f.read()
    with open(ctx.wav, "wb") as f:
        f.write(data[:44 + 500])


def _long_wav(ctx):
    """Two minutes of 8 kHz mono (the probe's one-hour file, shortened for the suite)."""
    ctx.ints = (np.arange(120 * 8000) * 7919 % 65536 - 32768).astype("<i2")
    ctx.wav = _write_wav(ctx.path("long.wav"), ctx.ints)


def _check_prefix(ctx, waveform):
    np.testing.assert_array_equal(waveform, (ctx.ints[:4096] / 32768.0).astype(np.float32))


# ------------------------------------------------------------------- commands


def _evaluate_missing_folder(ctx):
    """learnit-evaluate as a user runs it (absl's app.run), on a folder that is not there."""
    code = ("import sys; from learnit_tf.commands import evaluate; "
            "sys.argv = ['learnit-evaluate'] + sys.argv[1:]; evaluate.run()")
    done = subprocess.run([sys.executable, "-c", code, f"--init={ctx.init}",
                           f"--directory={ctx.path('missing')}", f"--output_dir={ctx.out}"],
                          capture_output=True, text=True, timeout=300, check=False)
    return done.returncode, done.stdout, done.stderr


def _check_error_alone(ctx, result):
    code, out, err = result
    assert code != 0, (out, err)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    # The last lines are the error and the pointer to --help (TensorFlow's start-up
    # lines may come before them) ...
    assert lines[-2:] == [f"Error: Folder {ctx.path('missing')!r} does not exist or is not a "
                          "directory.", "(Run with --help for the usage.)"], err[-2000:]
    # ... and neither the module docstring nor the flags were printed.
    # (Read from the source: importing the command here would define its flags twice.)
    import ast  # pylint: disable=import-outside-toplevel
    import importlib.util  # pylint: disable=import-outside-toplevel
    source = importlib.util.find_spec("learnit_tf.commands.evaluate").origin
    with open(source) as f:
        first_doc_line = ast.get_docstring(ast.parse(f.read())).strip().splitlines()[0]
    assert first_doc_line not in err and "flags:" not in err and "--output_dir" not in err
    assert "Traceback" not in out + err


# ---------------------------------------------------------------------- table

CASES = [
    # 2. Silent wrong input: images decoded exactly and upright.
    Case("2-jpeg-exif-orientation", setup=_portrait_jpeg,
         action=lambda ctx: files.load_image(ctx.jpeg), check=_check_upright),
    Case("2-jpeg-exif-orientation-in-ct-slices", setup=_portrait_jpeg,
         action=lambda ctx: ct_files.load_slice(ctx.jpeg),
         check=_check_upright_gray),
    Case("2-32-bit-integer-tiff", setup=_uint32_tiff,
         action=lambda ctx: files.read_image(ctx.tiff), check=_check_uint32),
    Case("2-16-bit-rgb-png", setup=lambda ctx: _png16(ctx, 3),
         action=lambda ctx: files.read_image(ctx.png16), check=_check_png16),
    Case("2-16-bit-rgba-png", setup=lambda ctx: _png16(ctx, 4),
         action=lambda ctx: files.read_image(ctx.png16), check=_check_png16),
    # 2. NeRF poses.
    _pose_case("all-zero", lambda m: np.zeros((4, 4)), "all zeros"),
    _pose_case("scaled", lambda m: m @ np.diag([3.0, 3.0, 3.0, 1.0]),
               r"is scaled: .*lengths \[3.0, 3.0, 3.0\]"),
    _pose_case("mirrored", lambda m: m @ np.diag([-1.0, 1.0, 1.0, 1.0]),
               r"is mirrored: its rotation has determinant -1.000"),
    _pose_case("far-away", _far_away, r"40 from the origin, outside the task's near/far "
                                      r"range \[2, 6\]"),
    _pose_case("nan", lambda m: np.where(np.eye(4) > 0, np.nan, m), "NaN or infinite"),
    # 2. CT sinograms.
    Case("2-complex-sinogram", setup=lambda ctx: _sinogram(ctx, np.ones((4, 16)) * (1 + 2j)),
         action=lambda ctx: ct_files.fit_example(ctx.sinogram, CtTask(16), num_angles=4),
         raises=ValueError, match=r"sinogram.npy' holds complex values \(complex128\)"),
    Case("2-2d-angle-array", setup=_grid_angles,
         action=lambda ctx: ct_files.fit_example(ctx.sinogram, CtTask(16), angles=ctx.angles),
         raises=ValueError, match=r"Angles file '.*angles.npy' has shape \(2, 2\); expected a "
                                  r"1D array of shape \(4,\)"),
    # 2. Init names, metadata and model options.
    Case("2-empty-version-is-not-latest", action=lambda ctx: zoo.load("tiny@"),
         raises=ValueError, match=r"'tiny@' has an empty version around '@'; expected "
                                  r"NAME@VERSION"),
    Case("2-empty-version-in-fit", action=lambda ctx: ctx.fit(init="tiny@"),
         check=_exits(2, r"'tiny@' has an empty version"), may_write=("out",)),
    Case("2-nan-in-init-metadata", setup=lambda ctx: _init_with(ctx, metadata=_nan_psnr),
         action=lambda ctx: init_io.load_init(ctx.init), raises=MetadataError,
         match=r"edited/metadata.json: field 'final_train_metrics.(psnr|loss)' must be a "
               r"finite number, got (NaN|Infinity)"),
    Case("2-siren-w0-negative", setup=lambda ctx: _init_with(ctx, config={"w0": -200.0}),
         action=lambda ctx: init_io.load_init(ctx.init), raises=ValueError,
         match=r"edited/config.json: field 'config.w0': Siren: w0 must be a finite number > "
               r"0, got -200"),
    Case("2-siren-w0-not-a-number", setup=lambda ctx: _init_with(ctx, config={"w0": "200"}),
         action=lambda ctx: init_io.load_init(ctx.init), raises=ValueError,
         match=r"field 'config.w0': Siren: w0 must be a finite number > 0, got '200' "
               r"\(a string\)"),
    # 2. Audio folders: only regular, visible WAV files are signals.
    Case("2-audio-folder-skips-forks-dirs-and-dangling-links", setup=_audio_folder_with_junk,
         action=lambda ctx: [os.path.basename(f) for f in
                             audio_folder.list_wav_files(ctx.audio)],
         check=lambda ctx, names: names == ["a.wav", "b.wav"] or pytest.fail(str(names))),
    Case("2-audio-folder-of-junk-only", setup=_only_junk,
         action=lambda ctx: audio_folder.audio_folder_examples(ctx.audio, "train"),
         raises=ValueError, match=r"clips' holds no WAV files \(regular, readable, not hidden"),
    # 3. Resources: long audio decodes what is used, and a stated bound is checked first.
    Case("3-long-wav-decodes-only-the-samples-used", setup=_long_wav,
         action=lambda ctx: audio_folder.load_waveform(ctx.wav, 4096, 8000,
                                                       max_decoded_bytes=2**20),
         check=_check_prefix),
    Case("3-long-wav-over-the-memory-bound", setup=_long_wav,
         action=lambda ctx: audio_folder.read_wav(ctx.wav, max_decoded_bytes=2**20),
         raises=ValueError, match=r"long.wav' would decode to 7 MiB \(960000 frames × 1 "
                                  r"channels as float64, 120 s at 8000 Hz\), over the 1 MiB "
                                  r"bound; pass max_decoded_bytes="),
    # 5. Unclear errors made clear.
    Case("5-png-given-as-sinogram", setup=_png_sinogram,
         action=lambda ctx: ct_files.fit_example(ctx.sinogram, CtTask(16), num_angles=4),
         raises=ValueError, match=r"^Sinogram '.*sinogram.png' is not a .npy file \(it is a PNG "
                                  r"image\); expected a NumPy .npy array \(np.save\) of real "
                                  r"numbers.$"),
    Case("5-wave-format-extensible-pcm", setup=_extensible_wav,
         action=lambda ctx: audio_folder.load_waveform(ctx.wav, 400, 8000),
         check=_check_extensible),
    Case("5-truncated-wav-has-a-reason", setup=_truncated_wav,
         action=lambda ctx: audio_folder.load_waveform(ctx.wav, 100, 8000), raises=ValueError,
         match=r"cut.wav' is truncated: its header declares 2000 bytes of samples but only 500 "
               r"follow"),
    Case("5-nan-in-config-names-the-field",
         setup=lambda ctx: _init_with(ctx, config={"output_offset": float("nan")}),
         action=lambda ctx: ctx.fit(init=ctx.init, steps=2),
         check=lambda ctx, result: (_exits(2, r"edited/config.json: field "
                                              r"'config.output_offset' must be a finite "
                                              r"number, got NaN")(ctx, result),
                                    _check_not_the_learning_rate(ctx, result)),
         may_write=("out",)),
    Case("5-depth-string-names-the-field", setup=lambda ctx: _init_with(ctx, config={"depth": "5"}),
         action=lambda ctx: init_io.load_init(ctx.init), raises=ValueError,
         match=r"edited/config.json: field 'config.depth': Siren: depth must be an integer >= "
               r"2, got '5' \(a string\)"),
    Case("5-huge-seed-names-the-field", setup=lambda ctx: _init_with(ctx, config={"seed": 10**30}),
         action=lambda ctx: init_io.load_init(ctx.init), raises=ValueError,
         match=r"edited/config.json: field 'config.seed': Siren: seed must be None or an "
               r"integer in \[0, 2147483647\], got 10{30}"),
    Case("5-huge-meta-train-seed-names-the-field",
         action=lambda ctx: train.meta_train(ctx.model_dir, **tiny_kwargs(
             seed=10**30, model_fn=never_build)),
         raises=train.MetaTrainConfigError,
         match=r"meta_train.seed must be an integer in \[0, 2147483646\], got 10{30}"),
    Case("5-folder-error-printed-alone", setup=lambda ctx: _init_with(ctx),
         action=_evaluate_missing_folder, check=_check_error_alone, may_write=("out",)),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_26(case, pristine_zoo, tmp_path, capsys, monkeypatch):  # noqa: F811
    ctx = Ctx(tmp_path, pristine_zoo, capsys, monkeypatch)
    try:
        _run_case(case, ctx)
    finally:
        for cleanup in reversed(ctx.cleanups):
            cleanup()


def test_ids_follow_the_issue_items():
    assert {case.id.split("-")[0] for case in CASES} == {"2", "3", "5"}
    assert len({case.id for case in CASES}) == len(CASES)
