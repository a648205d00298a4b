"""Fits kept on disk, so a long evaluation resumes where it stopped.

A whole-curve evaluation at 256×256 fits every held-out signal for 1000 steps from two
inits (≈ 14 minutes a fit on a 2-core CPU): more than one session. With a `FitCache`
(`learnit-evaluate --fit_cache_dir=DIR`), each finished fit is written to DIR as one
`.npz` file, and a later run with the same DIR reads it instead of fitting again; an
interrupted run loses only the fit in progress. The standard init's curves are shared
by every run that fits the same signals from the same standard init (e.g. fit-recipe
candidates of one init, or versions of one architecture). The fit-recipe selection
(`--select_fit_recipe`, with or without `--recipe_ahead`) fits through the same cache:
the standard init's and every candidate's validation fits, so an interrupted selection
resumes too and a second one with the same candidates fits nothing again.

A fit is found again only if everything that decides it is the same, hashed into its
file name (`FitCache.key`): the model's architecture (its Keras config) and every weight
(learned inner rates included), the optimizer or fit recipe, the task's config, the
example's tensors, the steps, the steps snapshotted, and the source of the installed
learnit_tf package together with the TensorFlow version (a code change that could change
a curve starts a new cache). Files are written atomically and read with
`allow_pickle=False`; one that is unreadable or does not hold the arrays the key
promises is refused with an error naming it, never used.

Fits are deterministic on one machine for a given key; across machines (another CPU's
vector units, a GPU) curves can differ in the last bits, which is why a cache directory
belongs to one machine.
"""

import functools
import hashlib
import json
import os
import zipfile

import numpy as np

from learnit_tf.core import atomic
from learnit_tf.meta import FitRecipe, FitResult

FORMAT = 1


class FitCacheError(ValueError):
    """A cache file that cannot be trusted (unreadable or not what its key promises)."""


@functools.lru_cache(maxsize=None)
def _code_fingerprint():
    """sha256 of every .py file of the installed learnit_tf package and TF's version."""
    import learnit_tf  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    root = os.path.dirname(os.path.abspath(learnit_tf.__file__))
    digest = hashlib.sha256(tf.__version__.encode())
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, root).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def _optimizer_spec(optimizer):
    """The recipe's dict: an InnerOptimizer and its one-phase recipe are the same fit."""
    try:
        return FitRecipe.of(optimizer).to_dict()
    except (TypeError, ValueError) as e:
        raise TypeError(f"Cannot key a fit on optimizer {optimizer!r}: expected an "
                        "InnerOptimizer or a FitRecipe.") from e


def _update_array(digest, name, value):
    array = np.ascontiguousarray(np.asarray(value))
    digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
    digest.update(array.tobytes())


class FitCache:
    """Finished fits on disk, keyed by everything that decides them (module docstring).

    >>> import tempfile
    >>> from learnit_tf.kinds.image import ImageTask
    >>> from learnit_tf.meta import InnerOptimizer
    >>> from learnit_tf.models import Siren
    >>> cache = FitCache(tempfile.mkdtemp())
    >>> model = Siren(out_features=3, width=8, depth=2, seed=0)
    >>> task = ImageTask(4)
    >>> example = {"image": np.zeros((4, 4, 3), np.float32)}
    >>> key = cache.key(model, InnerOptimizer("adam", 1e-4), task, example, steps=3)
    >>> cache.get(key) is None
    True
    >>> key == cache.key(model, InnerOptimizer("adam", 3e-4), task, example, steps=3)
    False
    """

    def __init__(self, directory):
        if not directory:
            raise ValueError("FitCache needs a directory, got an empty path.")
        self.directory = os.path.expanduser(os.fspath(directory))
        if os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise ValueError(f"--fit_cache_dir={directory!r} exists and is not a directory.")
        # The source is hashed now, when the run starts using the cache, not at its first
        # key (hours later after a long selection, by which time the files may have been
        # edited under the running process).
        self.code = _code_fingerprint()

    def key(self, model, optimizer, task, example, steps, snapshot_steps=(), **settings):
        """Hex sha256 of what decides the fit (see the module docstring); `settings`:
        anything else that does (e.g. the fitter's `jit_compile`), JSON-ready."""
        digest = hashlib.sha256(f"learnit_tf fit cache {FORMAT}".encode())
        # Without the names Keras makes unique per process (siren, siren_1): the same
        # init loaded twice is the same fit.
        config = {k: v for k, v in model.get_config().items() if k != "name"}
        spec = {"code": self.code, "model": config,
                "optimizer": _optimizer_spec(optimizer), "task": type(task).__name__,
                "task_config": task.get_config(), "steps": int(steps),
                "snapshot_steps": sorted(int(s) for s in snapshot_steps),
                "settings": settings}
        digest.update(json.dumps(spec, sort_keys=True, default=str).encode())
        for i, weight in enumerate(model.weights):
            _update_array(digest, f"weight{i}:{weight.path.partition('/')[2]}", weight)
        for name in sorted(example):
            _update_array(digest, f"example:{name}", example[name])
        return digest.hexdigest()

    def path(self, key):
        return os.path.join(self.directory, f"{key}.npz")

    def get(self, key):
        """The cached `FitResult` of `key`, or None if there is none."""
        path = self.path(key)
        if not os.path.exists(path):
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            header = json.loads(str(arrays.pop("header")))
            losses = arrays.pop("losses")
            metrics = {m: arrays.pop(f"metric:{m}") for m in header["metrics"]}
            weights = [arrays.pop(f"weight:{i}") for i in range(header["num_weights"])]
            snapshots = {int(s): [arrays.pop(f"snapshot:{s}:{i}")
                                  for i in range(header["num_weights"])]
                         for s in header["snapshot_steps"]}
        except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
            raise FitCacheError(f"Fit cache file {path} is not a readable fit ({e}); "
                                "delete it to fit again.") from e
        if header.get("key") != key or any(len(v) != len(losses) for v in metrics.values()):
            raise FitCacheError(f"Fit cache file {path} does not hold the fit its name says "
                                "(its key or curve lengths differ); delete it to fit again.")
        return FitResult(weights=weights, losses=losses, metrics=metrics,
                         seconds=float(header["seconds"]), snapshots=snapshots)

    def put(self, key, result):
        """Writes `result` under `key` (atomically)."""
        arrays = {"losses": np.asarray(result.losses)}
        arrays.update({f"metric:{m}": np.asarray(v) for m, v in result.metrics.items()})
        arrays.update({f"weight:{i}": np.asarray(w) for i, w in enumerate(result.weights)})
        for step, weights in result.snapshots.items():
            arrays.update({f"snapshot:{int(step)}:{i}": np.asarray(w)
                           for i, w in enumerate(weights)})
        header = {"key": key, "metrics": sorted(result.metrics),
                  "num_weights": len(result.weights), "seconds": float(result.seconds),
                  "snapshot_steps": sorted(int(s) for s in result.snapshots)}
        arrays["header"] = np.asarray(json.dumps(header))

        def save(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        return atomic.atomic_save(self.path(key), save, suffix=".npz")

    def fit(self, fitter, example, steps, snapshot_steps=()):
        """`fitter.fit(example, steps, snapshot_steps=...)`, read from the cache when this
        fit was done before (and written to it when not). Returns (FitResult, cached)."""
        key = self.key(fitter.model, fitter.recipe, fitter.task, example, steps,
                       snapshot_steps, jit_compile=fitter.jit_compile,
                       record_metrics=fitter.record_metrics)
        cached = self.get(key)
        if cached is not None:
            return cached, True
        result = fitter.fit(example, steps, snapshot_steps=snapshot_steps)
        self.put(key, result)
        return result, False


def cached_fit(fitter, example, steps, snapshot_steps=(), cache=None):
    """`fitter.fit(example, steps, snapshot_steps=...)`, through `cache` (a `FitCache`)
    when one is given: every fit of an evaluation or a fit-recipe selection goes here."""
    if cache is None:
        return fitter.fit(example, steps, snapshot_steps=snapshot_steps)
    return cache.fit(fitter, example, steps, snapshot_steps)[0]
