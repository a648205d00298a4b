"""The kind contract: reader options become command flags; a kind's extra fit outputs.

Every registered kind's `reader_options` are keyword arguments its reader takes, and
every option its reader takes (besides the path and the task) is declared, so each one
has a flag in learnit-fit. `define_reader_flags` refuses two kinds giving one option
name two types. `FitInput.extra_outputs` files are written by learnit-fit with the
fitted network.
"""

import inspect
import io
import os

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver
from PIL import Image

from learnit_tf.meta import init_io
from learnit_tf.commands import init_args
from learnit_tf.core import cli, registry
from learnit_tf.core.fit_input import FitInput, check_extra_outputs
from learnit_tf.core.output_dir import OutputDir

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
KINDS = registry.all_kinds()
# Reader parameters that are not options: the file and the init's task.
READER_ARGUMENTS = ("path", "task")


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_reader_options_are_exactly_the_readers_keywords(kind):
    if not kind.fit_input:
        pytest.skip(f"{kind.name} has no reader of a user's file")
    parameters = inspect.signature(kind.fit_input_reader()).parameters
    keywords = [name for name in parameters if name not in READER_ARGUMENTS]
    assert sorted(option.name for option in kind.reader_options) == sorted(keywords), (
        f"{kind.name}: declare every keyword of its reader as a ReaderOption, and only those")
    for option in kind.reader_options:
        default = parameters[option.name].default
        if option.default is not None:  # A declared default must be the reader's own.
            assert option.default == default, (kind.name, option.name)


def test_every_reader_option_of_every_kind_is_a_fit_flag():
    from learnit_tf.commands import fit  # pylint: disable=import-outside-toplevel
    declared = {option.name for kind in KINDS for option in kind.reader_options}
    assert set(fit.READER_FLAGS) == declared
    assert {"resolution", "angles", "num_angles", "convention", "ground_truth",
            "interpolation", "num_support_views", "resample"} <= declared
    assert isinstance(flags.FLAGS["resample"], flags.BooleanFlag)  # audio: --noresample
    assert flags.FLAGS["convention"].parser.enum_values == ["learnit", "skimage"]
    assert "ct: Sinogram layout" in flags.FLAGS["convention"].help


def _kind(name, *options):
    return registry.SignalKind(name=name, description=name, tasks={}, datasets={},
                               reader_options=options)


def test_define_reader_flags_types_shared_names_and_conflicts():
    values = flags.FlagValues()
    a = _kind("a", registry.ReaderOption("level", "integer", 3, "Level."),
              registry.ReaderOption("mode", "string", None, "Mode.", choices=("x", "y")),
              registry.ReaderOption("offsets", "float_list", None, "Offsets."))
    b = _kind("b", registry.ReaderOption("level", "integer", None, "B's level."),
              registry.ReaderOption("fast", "boolean", None, "Fast."))
    names = cli.define_reader_flags([a, b], flag_values=values, skip=("fast",))
    assert names == ["level", "mode", "offsets"]
    assert "fast" not in values
    assert values["level"].help == "a: Level [unset: 3]; b: B's level."
    values(["prog", "--level=7", "--mode=y", "--offsets=0.5,-1"])
    given = {name: values[name].value for name in names}
    assert cli.reader_options(a, given) == {"level": 7, "mode": "y", "offsets": [0.5, -1.0]}
    with pytest.raises(ValueError, match=r"--mode, --offsets do\(es\) not apply to b inits "
                                         r"\(options for b: fast, level\)"):
        cli.reader_options(b, given)
    # Not given: a's declared default is passed, b's reader keeps its own default.
    assert cli.reader_options(a, {"level": None}) == {"level": 3}
    assert cli.reader_options(b, {"level": None}) == {}
    c = _kind("c", registry.ReaderOption("level", "float", None, "C's level."))
    with pytest.raises(ValueError, match="'level': kind 'c' declares it as float, kind 'a' "
                                         "as integer"):
        cli.define_reader_flags([a, c], flag_values=flags.FlagValues())


def test_reader_option_and_kind_refuse_bad_declarations():
    with pytest.raises(ValueError, match="choices are for 'string' options"):
        registry.ReaderOption("n", "integer", choices=("1",))
    with pytest.raises(ValueError, match="default 'z' is not one of its choices"):
        registry.ReaderOption("m", "string", "z", choices=("x", "y"))
    with pytest.raises(ValueError, match="must be a Python identifier"):
        registry.ReaderOption("num-angles", "integer")
    with pytest.raises(ValueError, match=r"declares reader options \['n'\] more than once"):
        _kind("d", registry.ReaderOption("n", "integer"), registry.ReaderOption("n", "float"))


def test_check_extra_outputs():
    assert check_extra_outputs({"a/b.ply": bytearray(b"x")}) == {"a/b.ply": b"x"}
    for bad, message in (({"/abs.ply": b""}, "not a relative path"),
                         ({"..": b""}, "not a relative path"),
                         ({"": b""}, "non-empty strings"),
                         ({"m.ply": "text"}, "'m.ply' must be bytes, got str"),
                         ({"curve.csv": b""}, "one of the command's own outputs"),
                         ({"fitted/x.bin": b""}, "one of the command's own outputs")):
        with pytest.raises(ValueError, match=message):
            check_extra_outputs(bad, reserved=("curve.csv", "fitted"))
    with pytest.raises(ValueError, match="must return a dict"):
        check_extra_outputs([("a", b"")])


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_fit_writes_the_kinds_extra_outputs_from_the_fitted_network(tmp_path):
    from learnit_tf.commands import fit  # pylint: disable=import-outside-toplevel
    png = str(tmp_path / "photo.png")
    Image.fromarray((np.random.RandomState(0).rand(16, 16, 3) * 255).astype(np.uint8)).save(png)
    init_dir = os.path.join(REPO, "zoo", "text_siren", "1")
    model, metadata = init_io.load_init(init_dir), init_io.read_metadata(init_dir)
    kind, task = init_args.kind_of_init(metadata)
    fit_input = kind.fit_input_reader()(png, task, resolution=8)
    coords = np.asarray(fit_input.task.coords)
    calls = []

    def extra_outputs(fitted_model, fit_task, example):
        calls.append((fit_task, example))
        return {"shape/prediction.npy": _npy_bytes(np.asarray(fitted_model(coords))),
                "note.txt": b"from the kind\n"}

    fit_input.extra_outputs = extra_outputs
    before = np.asarray(model(coords))
    optimizer = init_args.fit_optimizer(metadata)
    out_dir = str(tmp_path / "out")
    with flagsaver.flagsaver(init=init_dir, input=png, output_dir=out_dir, steps=3):
        flags.FLAGS.mark_as_parsed()
        fitter, result = fit.run_fit(model, fit_input, optimizer)
        with OutputDir(out_dir).open() as out:
            written = fit.write_outputs(out, model, metadata, fit_input, optimizer, fitter,
                                        result)
    assert {"shape", "note.txt", "curve.csv", "fitted"} <= set(written)  # Top-level names.
    assert calls and calls[0][0] is fit_input.task and calls[0][1] is fit_input.example
    assert (tmp_path / "out" / "note.txt").read_bytes() == b"from the kind\n"
    prediction = np.load(tmp_path / "out" / "shape" / "prediction.npy")
    fitted = init_io.load_init(os.path.join(out_dir, "fitted"))
    np.testing.assert_allclose(prediction, np.asarray(fitted(coords)), atol=1e-5)
    assert np.max(np.abs(prediction - before)) > 1e-3  # The fitted network, not the init.


def test_fit_refuses_an_extra_output_that_would_replace_its_own(tmp_path):
    from learnit_tf.commands import fit  # pylint: disable=import-outside-toplevel
    png = str(tmp_path / "photo.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(png)
    init_dir = os.path.join(REPO, "zoo", "text_siren", "1")
    model, metadata = init_io.load_init(init_dir), init_io.read_metadata(init_dir)
    kind, task = init_args.kind_of_init(metadata)
    fit_input = kind.fit_input_reader()(png, task, resolution=8)
    fit_input = FitInput(fit_input.task, fit_input.example, fit_input.observed,
                         fit_input.render, extra_outputs=lambda *_: {"curve.csv": b"x"})
    optimizer = init_args.fit_optimizer(metadata)
    out_dir = str(tmp_path / "out")
    with flagsaver.flagsaver(init=init_dir, input=png, output_dir=out_dir, steps=1):
        flags.FLAGS.mark_as_parsed()
        fitter, result = fit.run_fit(model, fit_input, optimizer)
        with pytest.raises(ValueError, match="'curve.csv' is one of the command's own"):
            with OutputDir(out_dir).open() as out:
                fit.write_outputs(out, model, metadata, fit_input, optimizer, fitter, result)
    assert not os.path.exists(out_dir)  # A failed run leaves nothing (it created the folder).


_EVALUATE_READER_FLAGS = r"""
import json, sys
from learnit_tf.commands import evaluate
from learnit_tf.core import registry
from learnit_tf.meta import init_io
from learnit_tf.commands import init_args
directory, init = sys.argv[1], sys.argv[2]
print("FLAGS", json.dumps(sorted(evaluate.READER_FLAGS)))
metadata = init_io.read_metadata(init)
kind, task = init_args.kind_of_init(metadata)
unset = {name: None for name in evaluate.READER_FLAGS}
for flag_values in (dict(unset), dict(unset, resample=False), dict(unset, sample_seed=3)):
    protocol = kind.protocol_class()(directory=directory, split="test")
    try:
        protocol = evaluate.with_reader_options(protocol, kind, flag_values)
        examples = protocol.folder_examples(metadata, directory, "test", 2, task)
        print("OK", [tuple(e["waveform"].shape) for e in examples])
    except ValueError as e:
        print("ERROR", str(e).replace(chr(10), " "))
protocol = kind.protocol_class()(split="test")
try:
    evaluate.with_reader_options(protocol, kind, dict(unset, resample=True))
except ValueError as e:
    print("ERROR", e)
"""


def _write_wav(path, rate, seconds=0.6):
    import wave  # pylint: disable=import-outside-toplevel
    t = np.arange(int(rate * seconds)) / rate
    samples = (0.5 * np.sin(2 * np.pi * 440.0 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.tobytes())


def test_evaluate_passes_reader_flags_to_the_folder_reader(tmp_path):
    import subprocess  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel
    for split in ("train", "test"):
        (tmp_path / split).mkdir()
        _write_wav(tmp_path / split / "tone.wav", 16000)  # The init's rate is 8000 Hz.
    init = os.path.join(REPO, "zoo", "procedural_audio_siren", "1")
    result = subprocess.run([sys.executable, "-c", _EVALUATE_READER_FLAGS, str(tmp_path), init],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith(("FLAGS", "OK",
                                                                              "ERROR"))]
    flag_names = lines[0].split(" ", 1)[1]
    assert '"resample"' in flag_names and '"max_decoded_bytes"' in flag_names
    assert '"resolution"' not in flag_names  # A protocol option of evaluate.
    assert lines[1] == "OK [(4096,)]"  # Resampled from 16 kHz (the reader's default).
    assert lines[2].startswith("ERROR") and "16000" in lines[2] and "8000" in lines[2]
    assert lines[3] == ("ERROR --sample_seed do(es) not apply to audio inits (options for "
                        "audio: max_decoded_bytes, resample).")
    assert lines[4] == "ERROR --resample read(s) your own files: pass --directory too."


def _console_scripts():
    import ast as _ast  # pylint: disable=import-outside-toplevel
    tree = _ast.parse(open(os.path.join(REPO, "setup.py")).read())
    for node in _ast.walk(tree):
        if isinstance(node, _ast.Assign) and any(
                getattr(t, "id", None) == "CONSOLE_SCRIPTS" for t in node.targets):
            return dict(entry.split("=", 1) for entry in _ast.literal_eval(node.value))
    raise AssertionError("setup.py has no CONSOLE_SCRIPTS")


def test_kind_commands_are_console_commands():
    scripts = _console_scripts()
    declared = {name: spec for kind in KINDS for name, spec in kind.commands.items()}
    assert declared.get("render") == "learnit_tf.kinds.nerf.render:main"
    for name, spec in declared.items():
        module, attribute = spec.split(":")
        assert scripts.get(f"learnit-{name}") == f"{module}:run", name
        assert os.path.exists(os.path.join(REPO, "scripts", f"{name}.py")), name
        source = open(os.path.join(REPO, *module.split(".")) + ".py").read()
        assert f"def {attribute}(argv)" in source and "def run()" in source, spec
