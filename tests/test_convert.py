"""Tests of the converter for the authors' haiku SIREN checkpoints, incl. malicious pickles."""

import builtins
import copy
import io
import os
import pickle
import subprocess
import sys
import tempfile
import types

import numpy as np
import tensorflow as tf

from learnit_tf import convert
from learnit_tf.meta.init_io import load_init, read_metadata
from learnit_tf.kinds.image import image_grid
from learnit_tf.testing import TestCase

# A copy of ../shared/fixtures (the authors' haiku layout and haiku's own output) lives
# in the repository so that a plain clone runs these tests; LEARNIT_FIXTURES may point
# at another copy.
FIXTURES = os.environ.get("LEARNIT_FIXTURES",
                          os.path.join(os.path.dirname(__file__), "data", "learnit_fixture"))
PARAMS = os.path.join(FIXTURES, "learnit_siren_params.pkl")
EXPECTED = os.path.join(FIXTURES, "learnit_siren_expected.npz")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "siren__model"



def _key(i):
    return f"{PREFIX}/siren_layer{'' if i == 0 else f'_{i}'}/linear"


def _xla_output(model, coords):
    return tf.function(model, jit_compile=True)(tf.constant(coords)).numpy()


class _Payload:
    """Pickles as a call of `func(*args)`: what a malicious checkpoint would contain."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _fake_haiku():
    """Modules named like haiku's, holding look-alikes of its mapping classes.

    They only exist while pickling; loading must not need (or import) them.
    """
    names = ("haiku", "haiku._src", "haiku._src.data_structures")
    mods = {n: types.ModuleType(n) for n in names}
    ds = mods["haiku._src.data_structures"]

    class FlatMap(dict):  # newer haiku: __reduce__ -> (FlatMapping, (dict,))
        def __reduce__(self):
            return ds.FlatMapping, (dict(self),)

    class FlatMapping(dict):
        @classmethod
        def from_mapping(cls, mapping):
            return cls(mapping)

    class frozendict:  # haiku <= 0.0.3: __reduce__ -> (frozendict, (storage,))
        def __init__(self, storage):
            self._storage = dict(storage)

        def __reduce__(self):
            return ds.frozendict, (self._storage,)

    class OldFlatMapping:  # plain object pickled with its __dict__ state
        def __init__(self, mapping):
            self._mapping = dict(mapping)
            self._leaves = None

    class ViaClassmethod:  # pickled as getattr(FlatMapping, "from_mapping")(dict)
        def __init__(self, mapping):
            self.mapping = dict(mapping)

        def __reduce__(self):
            return ds.FlatMapping.from_mapping, (self.mapping,)

    OldFlatMapping.__name__ = OldFlatMapping.__qualname__ = "FlatMapping"
    for cls in (FlatMap, FlatMapping, frozendict):
        cls.__module__ = ds.__name__
        cls.__qualname__ = cls.__name__
        setattr(ds, cls.__name__, cls)
    OldFlatMapping.__module__ = ds.__name__
    # Pickle the old-style object under the name 'FlatMapping' too.
    return mods, ds, OldFlatMapping, ViaClassmethod


class ConvertFixtureTest(TestCase):

    def test_fixture_reproduced(self):
        params = convert.load_haiku_params(PARAMS)
        self.assertEqual(sorted(params), [_key(i) for i in range(5)])
        model = convert.siren_from_haiku_params(params)
        self.assertEqual((model.width, model.depth, model.w0, model.out_features),
                         (256, 5, 200.0, 3))
        with np.load(EXPECTED) as data:
            coords, expected = data["coords"], data["out"]
        # The fixture's coordinates are the paper's grid (fixtures/README.md).
        self.assertAllEqual(coords[0], image_grid(32))
        self.assertAllClose(_xla_output(model, coords), expected, atol=1e-5, rtol=0)

    def test_convert_to_init_directory(self):
        out = os.path.join(tempfile.mkdtemp(), "init")
        _, _, error = convert.convert_checkpoint(PARAMS, out, metadata={"signal_class": "x"},
                                                 verify_npz=EXPECTED)
        self.assertLessEqual(error, 1e-5)
        model = load_init(out)
        with np.load(EXPECTED) as data:
            self.assertAllClose(_xla_output(model, data["coords"]), data["out"], atol=1e-5,
                                rtol=0)
        meta = read_metadata(out)
        self.assertEqual(meta["source"]["file"], "learnit_siren_params.pkl")
        self.assertLen(meta["source"]["sha256"], 64)
        self.assertEqual(meta["source"]["keys"], [_key(i) for i in range(5)])
        self.assertEqual(meta["signal_class"], "x")
        self.assertIn("matthewtancik.com/learnit", meta["source"]["authors_project_page"])
        self.assertLessEqual(meta["verified_against"]["max_abs_error"], 1e-5)

    def test_failed_verification_writes_nothing(self):
        with np.load(EXPECTED) as data:
            bad = {"coords": data["coords"], "out": data["out"] + 1e-3}
        npz = os.path.join(tempfile.mkdtemp(), "bad.npz")
        np.savez(npz, **bad)
        out = os.path.join(tempfile.mkdtemp(), "init")
        with self.assertRaisesRegex(ValueError, "deviates .* by 0.001"):
            convert.convert_checkpoint(PARAMS, out, verify_npz=npz)
        self.assertFalse(os.path.exists(out))

    def test_all_pickle_protocols(self):
        params = convert.load_haiku_params(PARAMS)
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            loaded = convert.load_haiku_params(io.BytesIO(pickle.dumps(params, protocol)))
            for key in params:
                for name in ("w", "b"):
                    self.assertAllEqual(loaded[key][name], params[key][name])

    def test_haiku_mappings_without_haiku(self):
        arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float32)}
        mods, ds, old_flat_mapping, via_classmethod = _fake_haiku()
        saved = {n: sys.modules.get(n) for n in mods}
        sys.modules.update(mods)
        try:
            blobs = {
                "FlatMap": pickle.dumps(ds.FlatMap({"m/siren_layer/linear": ds.FlatMap(arrays)})),
                "frozendict": pickle.dumps(ds.frozendict({"m": ds.frozendict(arrays)}), 2),
                "classmethod": pickle.dumps(via_classmethod({"m": arrays})),
            }
            # Old FlatMapping: NEWOBJ of the class + BUILD with its __dict__.
            ds.FlatMapping = old_flat_mapping
            blobs["state"] = pickle.dumps(old_flat_mapping({"m": arrays}), 4)
        finally:
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
        self.assertNotIn("haiku", sys.modules)
        for name, blob in blobs.items():
            loaded = convert.load_haiku_params(io.BytesIO(blob))
            inner = next(iter(loaded.values()))
            self.assertIs(type(loaded), dict, msg=name)
            self.assertIs(type(inner), dict, msg=name)
            self.assertAllEqual(inner["w"], arrays["w"], msg=name)
        self.assertNotIn("haiku", sys.modules)  # nothing imported haiku


class MaliciousPickleTest(TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp()
        self.marker = os.path.join(self.dir, "pwned")

    def _refused(self, payload_object, global_name, protocol=pickle.HIGHEST_PROTOCOL):
        blob = pickle.dumps(payload_object, protocol)
        with self.assertRaisesRegex(convert.UnsafePickleError,
                                    f"Refusing to unpickle global '{global_name}'"):
            convert.load_haiku_params(io.BytesIO(blob))
        self.assertFalse(os.path.exists(self.marker), "the payload ran")

    def test_os_system_refused(self):
        payload = _Payload(os.system, f"touch {self.marker}")
        self._refused(payload, f"{os.system.__module__}.system")
        self._refused(payload, f"{os.system.__module__}.system", protocol=0)

    def test_eval_refused(self):
        self._refused(_Payload(builtins.eval, f"open({self.marker!r}, 'w').write('x')"),
                      "builtins.eval")

    def test_payload_inside_valid_params_refused(self):
        params = convert.load_haiku_params(PARAMS)
        params[_key(2)]["w"] = _Payload(os.system, f"touch {self.marker}")
        self._refused(params, f"{os.system.__module__}.system")

    def test_unknown_class_refused(self):
        self._refused(_Payload(tempfile.mkdtemp, "", "", self.dir), "tempfile.mkdtemp")
        self.assertEqual(os.listdir(self.dir), [])

    def test_getattr_restricted(self):
        # getattr is only honoured for haiku's from_mapping, not to reach other callables.
        blob = pickle.dumps(_Payload(getattr, dict, "fromkeys"), 2)
        with self.assertRaisesRegex(convert.UnsafePickleError, r"getattr\(.*'fromkeys'\)"):
            convert.load_haiku_params(io.BytesIO(blob))

    def test_converter_script_refuses(self):
        path = os.path.join(self.dir, "evil.pkl")
        with open(path, "wb") as f:
            pickle.dump({_key(0): _Payload(os.system, f"touch {self.marker}")}, f)
        out = os.path.join(self.dir, "init")
        proc = subprocess.run(
            [sys.executable, os.path.join(REPO, "scripts", "convert_learnit_checkpoint.py"),
             f"--input={path}", f"--output_dir={out}"],
            capture_output=True, text=True, cwd=REPO, timeout=300,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        self.assertEqual(proc.returncode, 1, proc.stderr[-2000:])
        self.assertIn(f"Refusing to unpickle global '{os.system.__module__}.system'", proc.stderr)
        self.assertFalse(os.path.exists(self.marker), "the payload ran")
        self.assertFalse(os.path.exists(out))


class BadLayoutTest(TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.params = convert.load_haiku_params(PARAMS)

    def _fails(self, params, pattern):
        with self.assertRaisesRegex(convert.CheckpointFormatError, pattern):
            convert.siren_from_haiku_params(params)

    def test_unexpected_key(self):
        params = copy.deepcopy(self.params)
        params[f"{PREFIX}/extra/linear"] = params[_key(1)]
        self._fails(params, f"Unexpected key '{PREFIX}/extra/linear'")

    def test_wrong_shape(self):
        params = copy.deepcopy(self.params)
        params[_key(2)]["w"] = params[_key(2)]["w"][:, :128]
        self._fails(params, rf"{PREFIX}/siren_layer_2/linear\['w'\] has shape \(256, 128\), "
                            r"expected \(256, 256\)")
        params = copy.deepcopy(self.params)
        params[_key(4)]["b"] = np.zeros(4, np.float32)
        self._fails(params, r"siren_layer_4/linear\['b'\] has shape \(4,\), expected \(3,\)")

    def test_missing_or_extra_entries(self):
        params = copy.deepcopy(self.params)
        del params[_key(1)]["b"]
        self._fails(params, rf"Entry '{PREFIX}/siren_layer_1/linear' must hold exactly 'w' "
                            r"and 'b', found \['w'\]")
        params = copy.deepcopy(self.params)
        params[_key(0)]["scale"] = np.ones(1, np.float32)
        self._fails(params, r"found \['b', 'scale', 'w'\]")

    def test_missing_layer(self):
        params = copy.deepcopy(self.params)
        del params[_key(3)]
        self._fails(params, r"found indices \[0, 1, 2, 4\]")

    def test_bad_values(self):
        params = copy.deepcopy(self.params)
        params[_key(0)]["w"] = params[_key(0)]["w"].astype(np.int32)
        self._fails(params, r"siren_layer/linear\['w'\] must be a floating-point numpy array")
        params = copy.deepcopy(self.params)
        params[_key(0)]["b"][3] = np.nan
        self._fails(params, r"siren_layer/linear\['b'\] contains NaN")

    def test_mixed_prefixes_and_non_mapping(self):
        params = copy.deepcopy(self.params)
        params["other/siren_layer_5/linear"] = params.pop(_key(4))
        self._fails(params, "several model prefixes")
        self._fails([1, 2], "Expected a non-empty mapping")


if __name__ == "__main__":
    tf.test.main()
