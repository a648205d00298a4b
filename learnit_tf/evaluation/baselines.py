"""The paper's baseline initializations and their evaluation against a meta-learned init.

PAPER.md, "Baseline initializations compared in the paper" (*secondary*):

- **standard**: the architecture's usual random init (`standard_init`);
- **mean**: an init whose output is the class's mean signal (`mean_init`: a standard
  init fitted to the mean image);
- **matched**: an init whose output matches the meta init's output, found by fitting a
  standard init to that output (`matched_init`); it separates a prior in signal space
  (the starting function) from a prior in weight space (where the weights sit);
- **shuffled**: the meta-learned weights permuted within each layer (`shuffled_init`).

The paper's finding: SGD works well from the meta init, while a standard init needs
Adam. `evaluate_baselines` fits held-out signals from each init with SGD (lr 1e-2)
and Adam (lr 1e-4) and reports PSNR after every step.

All inits are plain Keras models of the meta model's architecture, so they can be
saved with `learnit_tf.meta.init_io.save_init` and fitted like any other init.

Example:

>>> from learnit_tf.models import Siren
>>> from learnit_tf.kinds.image import ImageTask
>>> meta = Siren(width=16, depth=3, w0=30., seed=0)
>>> shuffled = shuffled_init(meta, seed=1)
>>> [tuple(w.shape) for w in shuffled.get_weights()] == [tuple(w.shape) for w in meta.get_weights()]
True
"""


import keras
import numpy as np
import tensorflow as tf

from learnit_tf.evaluation.report import write_csv_atomic
from learnit_tf.meta.fit import Fitter
from learnit_tf.meta.inner import InnerOptimizer
from learnit_tf.models import model_from_config
from learnit_tf.models.functional import FunctionalModel

#: Inits compared by `evaluate_baselines`, in table order.
BASELINE_INITS = ("standard", "mean", "matched", "shuffled", "meta")
#: Test-time optimizers of the paper: SGD 1e-2 (meta init) and Adam 1e-4 (standard init).
EVAL_OPTIMIZERS = (InnerOptimizer("sgd", 1e-2), InnerOptimizer("adam", 1e-4))
#: Optimizer used to *build* the mean and matched inits (fitting a standard init).
INIT_FIT_OPTIMIZER = InnerOptimizer("adam", 1e-4)


def _architecture(model_or_config):
    """A freshly built model from a Keras model or an init `config.json` dict."""
    if isinstance(model_or_config, keras.Model):
        return model_or_config
    if isinstance(model_or_config, dict) and {"class_name", "config"} <= set(model_or_config):
        return model_from_config(model_or_config["class_name"], model_or_config["config"])
    raise TypeError("Expected a Keras model or a dict with 'class_name' and 'config' (as in an "
                    f"init's config.json), got {type(model_or_config).__name__}.")


def standard_init(model, seed=0):
    """A fresh, standard random init of `model`'s architecture.

    Non-trainable weights (e.g. the Fourier matrix B of `FourierFeatureMLP`) are part of
    the architecture, not of the init, so they are copied from `model`. Learned inner
    rates (Meta-SGD) are part of the meta init, not of the architecture: the standard
    init has none.

    Args:
        model: a built coordinate network (or an init config dict, see `_architecture`).
        seed: integer seed of the new weights (same seed → same weights).

    Returns:
        A new Keras model with the same config except its seed.
    """
    model = _architecture(model)
    config = dict(model.get_config())
    if "seed" not in config:
        raise ValueError(f"Model class {type(model).__name__} has no 'seed' in its config; "
                         "standard_init needs a seedable architecture.")
    config["seed"] = int(seed)
    config.pop("inner_rates", None)
    fresh = type(model).from_config(config)
    sources = {v.path: v for v in model.non_trainable_variables}
    for dst in fresh.non_trainable_variables:
        if dst.path not in sources:
            raise ValueError(f"standard_init: {type(model).__name__} has no non-trainable "
                             f"weight {dst.path!r} to copy into the fresh init.")
        dst.assign(sources[dst.path])
    return fresh


def class_mean_image(dataset, n=None, key="image"):
    """Pixelwise mean of the first `n` (default: all) examples' `key` entry.

    Args:
        dataset: iterable of example dicts (a `tf.data.Dataset` or a list).
        n: number of examples to average; the dataset must have at least that many.
        key: the entry to average.

    Returns:
        float32 numpy array with the shape of one image.
    """
    total, count = None, 0
    for example in dataset:
        if n is not None and count >= n:
            break
        if key not in example:
            raise ValueError(f"class_mean_image: example {count} has no {key!r} entry "
                             f"(keys: {sorted(example)}).")
        image = np.asarray(example[key], np.float64)
        if total is None:
            total = np.zeros_like(image)
        elif image.shape != total.shape:
            raise ValueError(f"class_mean_image: example {count} has shape {image.shape}, "
                             f"expected {total.shape} like the first example.")
        total += image
        count += 1
    if count == 0 or (n is not None and count < n):
        raise ValueError(f"class_mean_image: the dataset has {count} examples, expected "
                         f"{'at least one' if n is None else f'at least n={n}'}.")
    return (total / count).astype(np.float32)


def _fit_to_image(model, image, task, steps, optimizer, fitter):
    """Fits `model` (in place) so that its image under `task` matches `image`."""
    fitter = fitter or Fitter(model, task, optimizer)
    example = {"image": tf.convert_to_tensor(image, tf.float32),
               "seed": tf.zeros((2,), tf.int32)}
    result = fitter.fit(example, steps, weights=FunctionalModel(model).initial_weights())
    FunctionalModel(model).assign(result.weights)
    return result


def mean_init(model_or_config, mean_image, task, steps, optimizer=INIT_FIT_OPTIMIZER, seed=0,
              return_fit=False, fitter=None):
    """An init whose output is the class mean image: a standard init fitted to it.

    Args:
        model_or_config: the architecture (a Keras model or an init config dict).
        mean_image: float (H, W, C), e.g. from `class_mean_image` on training signals.
        task: an image task (`ImageTask`) matching the image's shape.
        steps: optimizer steps of the fit (more steps: closer to the mean).
        optimizer: `InnerOptimizer` of the fit (default Adam 1e-4, the paper's optimizer
            for standard inits).
        seed: seed of the standard init the fit starts from.
        return_fit: also return the `FitResult` (its `psnr[-1]` measures the match).
        fitter: optional `Fitter` on the same architecture and task, to reuse its
            compiled steps.

    Returns:
        The fitted Keras model (and the `FitResult` if `return_fit`).
    """
    model = standard_init(model_or_config, seed)
    result = _fit_to_image(model, mean_image, task, steps, optimizer, fitter)
    return (model, result) if return_fit else model


def matched_init(meta_model, task, steps, optimizer=INIT_FIT_OPTIMIZER, seed=0,
                 return_fit=False, fitter=None):
    """A standard init fitted to reproduce the meta init's output (same function, other weights).

    Args:
        meta_model: the meta-learned init (a Keras model).
        task: an image task with `render(fmodel, weights)` (e.g. `ImageTask`): the meta
            init's image under this task is the target.
        steps, optimizer, seed, return_fit, fitter: as in `mean_init`.

    Returns:
        The fitted Keras model (and the `FitResult` if `return_fit`).
    """
    if not hasattr(task, "render"):
        raise TypeError(f"matched_init needs a task with render(fmodel, weights) (e.g. "
                        f"ImageTask); got {type(task).__name__}.")
    fmodel = FunctionalModel(meta_model)
    target = task.render(fmodel, fmodel.initial_weights())
    model = standard_init(meta_model, seed)
    result = _fit_to_image(model, target, task, steps, optimizer, fitter)
    return (model, result) if return_fit else model


def shuffled_init(meta_model, seed=0):
    """The meta init's weights, each tensor's entries randomly permuted.

    "Permuted within each layer" is read as: every weight tensor (each kernel and each
    bias) keeps exactly its multiset of values, but the values are assigned to random
    positions. This keeps each layer's weight statistics (the scale a learned init may
    have found) while destroying their arrangement. Permuting *hidden units*
    consistently (rows of one kernel with the columns of the next) would not be a
    baseline at all: it leaves the network's function unchanged.

    Args:
        meta_model: the meta-learned init.
        seed: seed of the permutations.

    Returns:
        A new Keras model; non-trainable weights are copied unchanged.
    """
    rng = np.random.default_rng(seed)
    model = standard_init(meta_model, seed)
    for dst, src in zip(model.trainable_variables, meta_model.trainable_variables):
        values = np.asarray(src.numpy())
        flat = values.reshape(-1)
        dst.assign(flat[rng.permutation(flat.size)].reshape(values.shape))
    return model


def baseline_inits(meta_model, task, mean_image, init_fit_steps, inits=BASELINE_INITS,
                   init_optimizer=INIT_FIT_OPTIMIZER, seed=0, fitter=None):
    """Builds the requested inits: dict name -> Keras model (the meta model itself for "meta").

    `fitter` (a `Fitter` on the meta model's architecture with `init_optimizer`) is
    reused for the mean and matched fits when given.
    """
    unknown = [name for name in inits if name not in BASELINE_INITS]
    if unknown:
        raise ValueError(f"Unknown inits {unknown}; expected names from {BASELINE_INITS}.")
    if ("mean" in inits or "matched" in inits) and fitter is None:
        fitter = Fitter(meta_model, task, init_optimizer, steps_per_call=max(1, init_fit_steps))
    models = {}
    for name in inits:
        if name == "standard":
            models[name] = standard_init(meta_model, seed)
        elif name == "mean":
            if mean_image is None:
                raise ValueError("The 'mean' init needs mean_image (see class_mean_image).")
            models[name] = mean_init(meta_model, mean_image, task, init_fit_steps,
                                     init_optimizer, seed, fitter=fitter)
        elif name == "matched":
            models[name] = matched_init(meta_model, task, init_fit_steps, init_optimizer,
                                        seed, fitter=fitter)
        elif name == "shuffled":
            models[name] = shuffled_init(meta_model, seed)
        else:
            models[name] = meta_model
    return models


def _as_examples(examples, seed):
    out = []
    for i, example in enumerate(examples):
        example = {k: np.asarray(v) for k, v in dict(example).items()}
        # Tasks that subsample pixels need a per-example seed; fixed, so every init and
        # optimizer sees the same pixel subsets.
        example.setdefault("seed", np.array([seed, i], np.int32))
        out.append(example)
    if not out:
        raise ValueError("evaluate_baselines: `examples` is empty.")
    return out


def evaluate_baselines(meta_model, task, examples, steps, mean_image=None,
                       init_fit_steps=500, inits=BASELINE_INITS, optimizers=EVAL_OPTIMIZERS,
                       init_optimizer=INIT_FIT_OPTIMIZER, seed=0, progress=True,
                       jit_compile="auto"):
    """Fits held-out signals from every baseline init with every optimizer.

    Args:
        meta_model: the meta-learned init.
        task: the task of the signals (an `ImageTask` for "matched").
        examples: iterable of held-out example dicts (e.g. `ds.take(100)`).
        steps: test-time optimizer steps (paper's image table: 2).
        mean_image: class mean for the "mean" init; default: the mean of `examples`
            (pass the training-set mean, `class_mean_image(train_ds, n)`, to keep test
            signals out of the init).
        init_fit_steps: steps used to build the mean and matched inits.
        inits: subset of `BASELINE_INITS`.
        optimizers: `InnerOptimizer`s used at test time (default SGD 1e-2, Adam 1e-4).
        init_optimizer: optimizer that builds the mean and matched inits.
        seed: seed of the standard-initialized networks and of the shuffle.
        progress: show a `keras.utils.Progbar` with ETA.
        jit_compile: compile fits with XLA (True, False or "auto").

    Returns:
        List of dict rows, one per (init, optimizer, step 0..steps): "init",
        "optimizer" (name), "learning_rate", "step", "psnr_mean", "psnr_std" (over
        examples) and "num_examples".
    """
    examples = _as_examples(examples, seed)
    if mean_image is None and "mean" in inits:
        mean_image = class_mean_image(examples)
    total = len(inits) * len(optimizers) * len(examples)
    bar = keras.utils.Progbar(total, unit_name="fit") if progress else None
    models = baseline_inits(meta_model, task, mean_image, init_fit_steps, inits,
                            init_optimizer, seed)
    rows = []
    for optimizer in optimizers:
        fitter = Fitter(meta_model, task, optimizer, steps_per_call=max(1, steps),
                        jit_compile=jit_compile)
        for name in inits:
            weights = FunctionalModel(models[name]).initial_weights()
            curves = []
            for example in examples:
                curves.append(fitter.fit(example, steps, weights=weights).psnr)
                if bar is not None:
                    bar.add(1)
            curves = np.stack(curves)
            for step in range(steps + 1):
                rows.append({
                    "init": name, "optimizer": optimizer.name,
                    "learning_rate": optimizer.learning_rate, "step": step,
                    "psnr_mean": float(np.mean(curves[:, step])),
                    "psnr_std": float(np.std(curves[:, step])),
                    "num_examples": len(examples),
                })
    return rows


def write_rows_csv(rows, path):
    """Writes `evaluate_baselines` rows (or any list of flat dicts) as CSV, atomically."""
    if not rows:
        raise ValueError("write_rows_csv: no rows to write.")
    return write_csv_atomic(rows, path, columns=None)
