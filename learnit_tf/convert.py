"""Convert the paper authors' haiku SIREN checkpoints into learnit_tf init directories.

The authors of Tancik et al., "Learned Initializations for Optimizing Coordinate-Based
Neural Representations" (CVPR 2021) trained their image inits with JAX + haiku and
saved them with ``pickle.dump(params)``. Their code is at
https://github.com/tancik/learnit (image regression: the ``meta_demo.ipynb`` Colab);
its ``Experiments/README.md`` ("Data and checkpoints") says the data and checkpoints,
including the CelebA MAML init (150K outer steps), are published on the project page
https://www.matthewtancik.com/learnit, which links a Google Drive folder
(https://drive.google.com/drive/folders/1lRfg-Ov1dd3ldke9Gv9dyzGGTxiFOhIs, as cited by
third-party READMEs for the learnit ShapeNet data). Download the CelebA pickle from
there, then::

    python scripts/convert_learnit_checkpoint.py --input=celeba_maml.pkl --output_dir=inits/celeba

**Safety.** Unpickling runs code named by the file, so `load_haiku_params` uses
`RestrictedUnpickler`: it resolves only the globals needed for dicts, lists, tuples,
numpy arrays, dtypes and scalars, and haiku's mapping classes (``FlatMapping``,
``FlatMap``, ``frozendict``, in ``haiku._src.data_structures`` or
``haiku.data_structures``), which are rebuilt as plain dicts *without importing haiku*.
Any other global (``os.system``, ``builtins.eval``, ``subprocess.Popen``, unknown
classes, jax tree definitions) raises `UnsafePickleError` naming it when the unpickler
first meets it, before anything it names can be called.

**Layout.** The image SIREN (PAPER.md, "2D image regression": w0 = 200, width 256,
depth 5) has one haiku module per layer::

    <prefix>/siren_layer/linear     {'w': (2, width), 'b': (width,)}
    <prefix>/siren_layer_1/linear   {'w': (width, width), 'b': (width,)}
    ...
    <prefix>/siren_layer_{depth-1}/linear   {'w': (width, out), 'b': (out,)}

(``<prefix>`` is the model module's name, ``siren__model`` in the authors' notebook).
Hidden layers compute ``sin(w0 · (x @ w + b))`` and the last one ``x @ w + b + 0.5``,
exactly `learnit_tf.models.Siren`. Width, depth and output channels are read from the
shapes; w0 is not stored in the pickle and defaults to the paper's 200.

**Numerics.** Evaluate converted models under XLA (``tf.function(jit_compile=True)``,
as the library's fitters and trainers do): XLA's CPU kernels match JAX's, and the
fixture in ../shared/fixtures is then reproduced exactly. Eager TensorFlow (oneDNN
matmuls, another sine) can differ by ~1e-3 on strongly perturbed weights, because
w0 = 200 amplifies float32 round-off.
"""

import _compat_pickle
import hashlib
import os
import pickle
import re

import numpy as np

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore
    from numpy.core import numeric as _numeric  # type: ignore

#: Where the authors publish their code, data and checkpoints.
AUTHORS_PROJECT_PAGE = "https://www.matthewtancik.com/learnit"
AUTHORS_CODE = "https://github.com/tancik/learnit"

_LAYER_KEY = re.compile(r"^(?P<prefix>[^/]+)/siren_layer(?:_(?P<index>\d+))?/linear$")
_HAIKU_MODULES = ("haiku._src.data_structures", "haiku.data_structures")
_HAIKU_MAPPINGS = ("FlatMapping", "FlatMap", "frozendict")


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list."""


class CheckpointFormatError(ValueError):
    """The unpickled parameters are not the authors' image SIREN layout."""


class _HaikuMapping(dict):
    """Stand-in for haiku's immutable mappings; rebuilt as (then converted to) a dict.

    Supports the ways haiku versions pickled them: ``Cls(mapping)`` via REDUCE,
    ``Cls.__new__`` + BUILD with the instance state (``_storage`` for frozendict,
    ``_mapping`` for FlatMapping), and ``getattr(Cls, "from_mapping")(mapping)``.
    """

    def __init__(self, *args, **kwargs):  # pylint: disable=super-init-not-called
        dict.__init__(self, *args, **kwargs)

    @classmethod
    def from_mapping(cls, mapping):
        return cls(mapping)

    def __setstate__(self, state):
        dict_state, slot_state = (state if isinstance(state, tuple) and len(state) == 2
                                  else (state, None))
        for part in (dict_state, slot_state):
            if not isinstance(part, dict):
                continue
            for key in ("_storage", "_mapping"):
                if isinstance(part.get(key), dict):
                    self.update(part[key])
                    return
        raise UnsafePickleError(
            "A haiku mapping in the pickle stores its items in a form this converter "
            "cannot rebuild without haiku/jax (state keys: "
            f"{sorted(dict_state) if isinstance(dict_state, dict) else type(dict_state)}). "
            "Re-save the params as plain dicts: pickle.dump(hk.data_structures.to_mutable_dict(p)).")


def _safe_reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"numpy _reconstruct of {subtype!r} refused: only "
                                "numpy.ndarray is allowed.")
    return _multiarray._reconstruct(subtype, shape, dtype)  # pylint: disable=protected-access


def _safe_getattr(obj, name):
    # Python pickles bound classmethods as getattr(cls, name); allow only the haiku
    # mapping constructors that old haiku versions used.
    if isinstance(obj, type) and issubclass(obj, _HaikuMapping) and name == "from_mapping":
        return obj.from_mapping
    raise UnsafePickleError(f"getattr({obj!r}, {name!r}) refused: only "
                            "haiku mapping constructors may be looked up.")


def _safe_copyreg_reconstructor(cls, base, state):
    if not (isinstance(cls, type) and issubclass(cls, _HaikuMapping)):
        raise UnsafePickleError(f"copyreg._reconstructor of {cls!r} refused.")
    del base, state
    return cls.__new__(cls)


_ALLOWED = {
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "getattr"): _safe_getattr,
    ("collections", "OrderedDict"): dict,
    ("copyreg", "_reconstructor"): _safe_copyreg_reconstructor,
    # Protocol-2 pickles of bytes (numpy's raw data) go through _codecs.encode(str, 'latin1').
    ("_codecs", "encode"): lambda text, encoding="utf-8": str(text).encode(str(encoding)),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_module, "_reconstruct")] = _safe_reconstruct
    _ALLOWED[(_module, "scalar")] = _multiarray.scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_module, "_frombuffer")] = _numeric._frombuffer  # pylint: disable=protected-access
for _module in _HAIKU_MODULES:
    for _name in _HAIKU_MAPPINGS:
        _ALLOWED[(_module, _name)] = _HaikuMapping


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds containers, numpy arrays and haiku mappings.

    Example:

    >>> import io
    >>> data = pickle.dumps({"w": np.ones(2, np.float32)})
    >>> RestrictedUnpickler(io.BytesIO(data)).load()["w"].tolist()
    [1.0, 1.0]
    >>> import os
    >>> RestrictedUnpickler(io.BytesIO(pickle.dumps(os.system))).load()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    learnit_tf.convert.UnsafePickleError: Refusing to unpickle global '...system': ...
    """

    def find_class(self, module, name):
        # Python-2-era names in protocol 0-2 pickles ('__builtin__', 'copy_reg'): the
        # standard find_class maps them, so must we (a static table, nothing imported).
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"Refusing to unpickle global '{module}.{name}': only dicts, lists, tuples, "
                "numpy arrays and haiku mappings are allowed in a learnit checkpoint."
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"Refusing persistent id {pid!r}: not a plain checkpoint.")


def _plain(obj):
    """Converts haiku stand-ins (and nested containers) to plain dicts."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def load_haiku_params(path_or_file):
    """Safely unpickles a haiku parameter tree into nested plain dicts of numpy arrays.

    Args:
        path_or_file: a path or a binary file object.

    Raises:
        UnsafePickleError: the pickle names a disallowed global (nothing it names ran).
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as f:
            return _plain(RestrictedUnpickler(f).load())
    return _plain(RestrictedUnpickler(path_or_file).load())


def _layer_index(key):
    match = _LAYER_KEY.match(key) if isinstance(key, str) else None
    if match is None:
        return None, None
    return match.group("prefix"), int(match.group("index") or 0)


def siren_layers_from_params(params):
    """Validates the authors' SIREN parameter tree; returns [(key, w, b)] in layer order.

    Raises:
        CheckpointFormatError: naming the unexpected key, entry or shape.
    """
    if not isinstance(params, dict) or not params:
        raise CheckpointFormatError(
            f"Expected a non-empty mapping of module names to {{'w', 'b'}} arrays, got "
            f"{type(params).__name__}.")
    layers, prefixes = {}, set()
    for key, entry in params.items():
        prefix, index = _layer_index(key)
        if prefix is None:
            raise CheckpointFormatError(
                f"Unexpected key {key!r}: expected '<model>/siren_layer/linear' or "
                "'<model>/siren_layer_<i>/linear' (the authors' image SIREN).")
        if index in layers:
            raise CheckpointFormatError(f"Key {key!r} duplicates layer {index} "
                                        f"({layers[index][0]!r}).")
        prefixes.add(prefix)
        if not isinstance(entry, dict) or set(entry) != {"w", "b"}:
            found = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise CheckpointFormatError(f"Entry {key!r} must hold exactly 'w' and 'b', "
                                        f"found {found}.")
        arrays = []
        for name in ("w", "b"):
            value = entry[name]
            if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
                raise CheckpointFormatError(
                    f"{key}['{name}'] must be a floating-point numpy array, got "
                    f"{getattr(value, 'dtype', type(value).__name__)}.")
            if not np.all(np.isfinite(value)):
                raise CheckpointFormatError(f"{key}['{name}'] contains NaN or infinite values.")
            arrays.append(value.astype(np.float32))
        layers[index] = (key, arrays[0], arrays[1])
    if len(prefixes) > 1:
        raise CheckpointFormatError(f"Keys mix several model prefixes {sorted(prefixes)}; "
                                    "expected one SIREN.")
    depth = len(layers)
    if sorted(layers) != list(range(depth)) or depth < 2:
        raise CheckpointFormatError(
            f"Expected layers siren_layer, siren_layer_1, …, siren_layer_{depth - 1} "
            f"(at least 2), found indices {sorted(layers)}.")
    return [layers[i] for i in range(depth)]


def _check_shape(key, name, array, expected):
    if tuple(array.shape) != tuple(expected):
        raise CheckpointFormatError(f"{key}['{name}'] has shape {tuple(array.shape)}, "
                                    f"expected {tuple(expected)}.")


def siren_from_haiku_params(params, w0=200.0, output_offset=0.5, in_features=2):
    """Builds a `learnit_tf.models.Siren` holding the authors' parameters.

    Args:
        params: the (safely) unpickled parameter tree, see `load_haiku_params`.
        w0: sine frequency factor (not stored in the pickle; paper images: 200).
        output_offset: constant added to the output (paper: 0.5).
        in_features: coordinate dimension (images: 2).

    Returns:
        A built `Siren` with width, depth and out_features read from the shapes.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> p = {"m/siren_layer/linear": {"w": rng.normal(size=(2, 4)), "b": np.zeros(4)},
    ...      "m/siren_layer_1/linear": {"w": rng.normal(size=(4, 3)), "b": np.zeros(3)}}
    >>> siren_from_haiku_params(p).width
    4
    """
    from learnit_tf.models import Siren  # pylint: disable=import-outside-toplevel
    layers = siren_layers_from_params(params)
    first_key, first_w, _ = layers[0]
    if first_w.ndim != 2:
        raise CheckpointFormatError(f"{first_key}['w'] has shape {first_w.shape}, expected "
                                    f"a matrix ({in_features}, width).")
    width = first_w.shape[1]
    out_features = layers[-1][1].shape[-1] if layers[-1][1].ndim == 2 else None
    for i, (key, w, b) in enumerate(layers):
        rows = in_features if i == 0 else width
        cols = out_features if i == len(layers) - 1 else width
        if cols is None:
            raise CheckpointFormatError(f"{key}['w'] has shape {w.shape}, expected ({rows}, out).")
        _check_shape(key, "w", w, (rows, cols))
        _check_shape(key, "b", b, (cols,))
    model = Siren(out_features=out_features, width=width, depth=len(layers), w0=w0,
                  output_offset=output_offset, in_features=in_features)
    for layer, (_, w, b) in zip(model.dense_layers, layers):
        layer.kernel.assign(w)
        layer.bias.assign(b)
    return model


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def max_abs_error_on_npz(model, npz_path):
    """Max |model(coords) - out| under XLA, for an .npz holding `coords` and `out`.

    Example: ``max_abs_error_on_npz(model, "fixtures/learnit_siren_expected.npz")``.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    with np.load(npz_path) as data:
        missing = {"coords", "out"} - set(data.files)
        if missing:
            raise ValueError(f"{npz_path!r} lacks {sorted(missing)} (has {data.files}).")
        coords, expected = data["coords"], data["out"]
    # XLA, as in fitting and training: matches JAX's CPU numerics (module docstring).
    out = tf.function(model, jit_compile=True)(tf.constant(coords, tf.float32)).numpy()
    if out.shape != expected.shape:
        raise ValueError(f"Model output shape {out.shape} != expected {expected.shape} "
                         f"in {npz_path!r}.")
    return float(np.max(np.abs(out - expected)))


def convert_checkpoint(input_path, output_dir, w0=200.0, metadata=None, overwrite=False,
                       verify_npz=None, tolerance=1e-5):
    """Converts an authors' image-SIREN pickle into an init directory.

    Args:
        input_path: the haiku pickle.
        output_dir: destination init directory (config.json, metadata.json,
            model.weights.h5), written atomically.
        w0: SIREN frequency factor of the checkpoint (paper images: 200).
        metadata: extra metadata (e.g. {"signal_class": "celeb_a", "algorithm": "maml",
            "outer_steps": 150000}); merged over the provenance fields.
        overwrite: replace an existing `output_dir`.
        verify_npz: optional .npz with reference `coords` and `out` (e.g. the fixture);
            checked before anything is written, recorded in the metadata.
        tolerance: maximum absolute deviation accepted by `verify_npz`.

    Returns:
        (output_dir, model, max_abs_error or None).

    Raises:
        UnsafePickleError, CheckpointFormatError: bad input (nothing is written).
        ValueError: the model deviates from `verify_npz` by more than `tolerance`.
    """
    from learnit_tf.meta.init_io import save_init  # pylint: disable=import-outside-toplevel
    if not os.path.isfile(input_path):
        raise FileNotFoundError(f"Checkpoint {str(input_path)!r} does not exist.")
    params = load_haiku_params(input_path)
    model = siren_from_haiku_params(params, w0=w0)
    meta = {
        "source": {
            "kind": "haiku pickle of the image SIREN of Tancik et al. (CVPR 2021)",
            "file": os.path.basename(str(input_path)),
            "sha256": _sha256(input_path),
            "keys": sorted(params),
            "authors_project_page": AUTHORS_PROJECT_PAGE,
            "authors_code": AUTHORS_CODE,
        },
        "converted_by": "learnit_tf.convert.convert_checkpoint",
        "architecture": {"class_name": "Siren", "width": model.width, "depth": model.depth,
                         "w0": model.w0, "out_features": model.out_features},
        "task": "image",
        "paper": "arXiv:2012.02189",
    }
    error = None
    if verify_npz:
        error = max_abs_error_on_npz(model, verify_npz)
        if not error <= tolerance:
            raise ValueError(f"Converted model deviates from {str(verify_npz)!r} by "
                             f"{error:.3g} > tolerance {tolerance:g}; nothing written.")
        meta["verified_against"] = {"file": os.path.basename(str(verify_npz)),
                                    "max_abs_error": error, "evaluated_with": "XLA"}
    meta.update(metadata or {})
    save_init(model, output_dir, meta, overwrite=overwrite)
    return output_dir, model, error
