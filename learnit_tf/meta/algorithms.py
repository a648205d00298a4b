"""Meta-gradients of MAML, first-order MAML and Reptile as pure functions.

Given the current init θ (a weight list) and a meta-batch of examples of one
signal class, each function adapts θ to every example with the inner optimizer and
returns the outer "gradient" that an outer optimizer (Adam in the paper) applies:

- MAML (Finn et al. 2017): ∇θ mean_i L_i(adapt_i(θ)), exact, through the unrolled
  inner loop (second order).
- First-order MAML: mean_i ∇L_i evaluated at adapt_i(θ), the inner trajectory
  treated as constant.
- Reptile (Nichol et al. 2018): θ − mean_i adapt_i(θ).

The meta-batch is a dict of tensors with a static leading dimension; the loop over
its examples is unrolled so the compiled step has static shapes everywhere.

Two options trade nothing in results (tests check each against the plain path):
- `share_first_forward`: every example's first inner step starts from the same θ on
  the same coordinates (images, CT), so the network is evaluated once for the
  whole meta-batch and only the per-example losses and backward passes differ.
- `remat` (MAML): rematerialize each inner step and the outer loss, and take the
  meta-batch's examples one after another, so that memory stays bounded when K
  grows, for about one extra forward/backward per step.

Meta-SGD (Li et al. 2017): with learned inner learning rates (`rates`, held by the
model: `learnit_tf.models.inner_rates`) the inner SGD steps with them and they get
a meta-gradient too: exact through the unrolled loop for MAML, with the inner
gradients held constant for first-order MAML (then d adapted/d rate = -sum_k g_k).

`vectorize` replaces the unrolled loop over the meta-batch by one `tf.vectorized_map`
(pfor) over its examples: the graph no longer grows with the meta-batch (the loop-
invariant first forward pass is computed once by pfor itself). Same results to
round-off (tests/test_distribute.py); whether it is faster is measured in
benchmarks/meta_batch.py (benchmarks/README.md), which set its default.
"""

import contextlib
import dataclasses

import tensorflow as tf

from learnit_tf.meta.compile import AUTO, mixed_precision_record, resolve_mixed_precision
from learnit_tf.meta.inner import InnerOptimizer, data_dependency, adapt, rematerialized
from learnit_tf.models.functional import supports_mixed_precision

ALGORITHMS = ("maml", "fomaml", "reptile")


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """What to meta-learn with.

    Args:
        algorithm: "maml", "fomaml" or "reptile".
        inner_steps: K, the number of inner optimizer steps per example.
        inner_optimizer: the inner `InnerOptimizer` (paper images: SGD lr 1e-2).
        share_first_forward: evaluate the network once per meta-batch for the first
            inner step when the task allows it (`Task.shared_prediction`); ignored
            for tasks whose examples see different inputs (NeRF rays).
        remat: MAML only: recompute each inner step's activations in the backward
            pass instead of storing them, one example at a time (memory for many
            inner steps; the first forward pass is then not shared).
        vectorize: adapt the meta-batch's examples in one `tf.vectorized_map`.
        mixed_precision: True, False or "auto": run the hidden matmuls of a float32
            SIREN in bfloat16 inside the step (weights, sine, first and output layers
            stay float32; `learnit_tf.models.siren`). "auto" (`meta_train`'s default)
            chooses it where the hardware multiplies bfloat16 natively
            (`learnit_tf.meta.compile.bfloat16_hardware`) and the model is a float32
            Siren; other models always run in their own precision. True on another
            model is an error. Meta-gradients then differ from float32 by bfloat16
            round-off (benchmarks/precision.py measures the held-out PSNR of both).
    """

    algorithm: str = "maml"
    inner_steps: int = 2
    inner_optimizer: InnerOptimizer = InnerOptimizer("sgd", 1e-2)
    share_first_forward: bool = True
    remat: bool = False
    vectorize: bool = False
    mixed_precision: object = False

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}.")
        if int(self.inner_steps) < 1:
            raise ValueError(f"inner_steps must be >= 1, got {self.inner_steps}.")
        if not isinstance(self.inner_optimizer, InnerOptimizer):
            raise TypeError(f"MetaConfig.inner_optimizer must be an InnerOptimizer (e.g. "
                            f"InnerOptimizer('sgd', 1e-2)), got {self.inner_optimizer!r}.")
        for name in ("share_first_forward", "remat", "vectorize"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"MetaConfig.{name} must be True or False, got "
                                f"{getattr(self, name)!r}.")
        if not (isinstance(self.mixed_precision, bool) or self.mixed_precision == AUTO):
            raise ValueError(f"MetaConfig.mixed_precision must be True, False or 'auto', got "
                             f"{self.mixed_precision!r}.")
        if self.remat and self.algorithm != "maml":
            raise ValueError(
                f"remat applies to algorithm 'maml' only ({self.algorithm!r} does not keep "
                "the inner trajectory for the backward pass, so its memory is already flat "
                "in inner_steps).")
        if self.vectorize and self.remat:
            raise ValueError("vectorize and remat exclude each other: remat adapts the "
                             "examples one after another to bound memory, vectorize all at once.")


def uses_mixed_precision(config, model):
    """Whether `config`'s steps run `model`'s hidden matmuls in bfloat16 (see `MetaConfig`)."""
    if config.mixed_precision is False:
        return False
    if config.mixed_precision is True:
        if not supports_mixed_precision(model):
            raise ValueError(f"MetaConfig.mixed_precision=True needs a float32 Siren; model "
                             f"{model.name!r} is a {type(model).__name__} with dtype "
                             f"{model.dtype_policy.name!r}.")
        return True
    return supports_mixed_precision(model) and resolve_mixed_precision(AUTO)


def precision_metadata(config, model):
    """What a meta-trained init's metadata records of its steps' precision (JSON-ready).

    E.g. {"matmul_dtype": "bfloat16", "weights_dtype": "float32", "requested": "auto",
    "bfloat16_hardware": True, "hardware_evidence": "CPU flags avx512_bf16",
    "sine": "polynomial"}; "sine" (models with a `uses_fast_sine` method, SIREN):
    "polynomial" when the steps ran `learnit_tf.models.fast_sine`, else "tf.sin".
    """
    mixed = uses_mixed_precision(config, model)
    record = mixed_precision_record(config.mixed_precision, mixed)
    uses_fast_sine = getattr(model, "uses_fast_sine", None)
    if uses_fast_sine is not None:
        record["sine"] = "polynomial" if uses_fast_sine(mixed) else "tf.sin"
    return record


def _with_precision(config, fmodel):
    """`fmodel` evaluated in the precision `config` asks for (unchanged when float32)."""
    if config.mixed_precision is False or not uses_mixed_precision(config, fmodel.model):
        return fmodel
    return fmodel.with_mixed_precision(True)


def meta_batch_size(meta_batch):
    """Static leading dimension of a meta-batch dict."""
    sizes = {int(t.shape[0]) for t in tf.nest.flatten(meta_batch)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"Meta-batch entries need one static leading dimension, got {sizes}.")
    return sizes.pop()


def _example(meta_batch, i):
    return tf.nest.map_structure(lambda t: t[i], meta_batch)


def prepare_meta_batch(task, meta_batch, n):
    """The meta-batch with `task.prepare_example` applied to each of its `n` examples
    (once per step, outside the inner loops; an unrolled loop, so any op can be used);
    the meta-batch itself when the task prepares nothing."""
    examples = [_example(meta_batch, i) for i in range(n)]
    prepared = [task.prepare_example(example) for example in examples]
    if all(p is e for p, e in zip(prepared, examples)):
        return meta_batch
    return tf.nest.map_structure(lambda *ts: tf.stack(ts), *prepared)


def _adapt_example(config, task, fmodel, weights, example, differentiable, first_step=None,
                   rates=None, first_order=False):
    loss_fn = lambda ws, step: task.inner_loss(fmodel, ws, example, step)  # noqa: E731
    return adapt(loss_fn, weights, config.inner_steps, config.inner_optimizer, differentiable,
                 remat=config.remat, first_step=first_step, rates=rates,
                 first_order=first_order)


def check_learned_rates(config):
    """Raises ValueError if `config` cannot learn inner rates (Meta-SGD)."""
    if config.algorithm == "reptile":
        raise ValueError("Learned inner learning rates (Meta-SGD) need a meta-gradient: use "
                         "algorithm 'maml' or 'fomaml' (Reptile's update has none for them), "
                         "or a model without inner_rates.")
    if config.inner_optimizer.name != "sgd":
        raise ValueError("Learned inner learning rates (Meta-SGD) step with SGD; inner "
                         f"optimizer is {config.inner_optimizer.name!r}.")
    if config.vectorize and config.algorithm != "maml":
        raise ValueError("vectorize with learned inner learning rates is implemented for "
                         "'maml' only.")


def _outer_loss(config, task, fmodel, weights, example):
    if not config.remat:
        return task.outer_loss(fmodel, weights, example)
    # Its activations would otherwise be the one per-example set the backward keeps.
    loss_fn = lambda *ws: [task.outer_loss(fmodel, list(ws), example)]  # noqa: E731
    return rematerialized(loss_fn)(*weights)[0]


def _shared_first_steps(config, task, fmodel, weights, examples):
    """[(loss, gradients)] of every example's step 0 from one shared forward pass, or None.

    One persistent tape holds the shared activations; each example's gradient is a
    backward pass from its own loss.
    """
    if not config.share_first_forward or config.remat or not task.has_shared_prediction():
        return None
    step = tf.constant(0, tf.int32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(weights)
        prediction = task.shared_prediction(fmodel, weights)
        losses = [task.inner_loss_from_prediction(prediction, ex, step) for ex in examples]
    first_steps = [(loss, tape.gradient(loss, weights)) for loss in losses]
    del tape
    return first_steps


def meta_gradients(config, task, fmodel, weights, meta_batch, rates=None, rate_index=None):
    """Outer gradients for one meta-batch.

    Args:
        config: a `MetaConfig`.
        task: a `learnit_tf.tasks.Task`.
        fmodel: a `FunctionalModel`.
        weights: list of tensors, the current init θ.
        meta_batch: dict of tensors with a static leading meta-batch dimension.
        rates: optional learned inner learning rates (Meta-SGD): a list of tensors,
            meta-learned with θ (MAML: exact; first-order MAML: the trajectory's
            inner gradients held constant).
        rate_index: with `rates`, the rate of each weight tensor (`rates[rate_index[j]]`
            is broadcast to `weights[j]`; default: one rate per weight).

    Returns:
        (gradients: list like `weights` (followed by one per rate with `rates`),
        metrics: dict with "loss" (mean outer loss after adaptation) and
        "inner_loss_first" (mean step-0 inner loss)).
    """
    weights = [tf.convert_to_tensor(w) for w in weights]
    n = meta_batch_size(meta_batch)
    meta_batch = prepare_meta_batch(task, meta_batch, n)
    fmodel = _with_precision(config, fmodel)
    if rates is not None:
        check_learned_rates(config)
        return _meta_sgd_gradients(config, task, fmodel, weights, meta_batch,
                                   [tf.convert_to_tensor(r) for r in rates],
                                   list(range(len(weights))) if rate_index is None
                                   else list(rate_index))
    if config.vectorize:
        return _vectorized_meta_gradients(config, task, fmodel, weights, meta_batch)
    examples = [_example(meta_batch, i) for i in range(n)]
    first_losses, outer_losses = [], []

    if config.algorithm == "maml" and config.remat:
        # One example at a time: example i + 1 starts only once example i's
        # meta-gradient exists (a data dependency, which XLA respects too), so a
        # single example's recomputation is live at any moment.
        grads = [tf.zeros_like(w) for w in weights]
        for i, example in enumerate(examples):
            start = weights
            if i:
                dep = data_dependency(grads)
                start = [w + tf.cast(dep, w.dtype) for w in weights]
            with tf.GradientTape() as tape:
                tape.watch(start)
                adapted, losses = _adapt_example(config, task, fmodel, start, example, True)
                outer = _outer_loss(config, task, fmodel, adapted, example)
            grads = [g + eg / n for g, eg in zip(grads, tape.gradient(outer, start))]
            outer_losses.append(outer)
            first_losses.append(losses[0])
        meta_loss = tf.add_n(outer_losses) / n
    elif config.algorithm == "maml":
        with tf.GradientTape() as tape:
            tape.watch(weights)
            shared = _shared_first_steps(config, task, fmodel, weights, examples)
            for i in range(n):
                example = examples[i]
                adapted, losses = _adapt_example(config, task, fmodel, weights, example, True,
                                                 shared[i] if shared else None)
                outer_losses.append(_outer_loss(config, task, fmodel, adapted, example))
                first_losses.append(losses[0])
            meta_loss = tf.add_n(outer_losses) / n
        grads = tape.gradient(meta_loss, weights)
    else:
        grads = [tf.zeros_like(w) for w in weights]
        shared = _shared_first_steps(config, task, fmodel, weights, examples)
        for i in range(n):
            example = examples[i]
            first_step = None
            if shared:
                first_step = (tf.stop_gradient(shared[i][0]),
                              [tf.stop_gradient(g) for g in shared[i][1]])
            adapted, losses = _adapt_example(config, task, fmodel, weights, example, False,
                                             first_step)
            first_losses.append(losses[0])
            if config.algorithm == "fomaml":
                with tf.GradientTape() as tape:
                    tape.watch(adapted)
                    outer = task.outer_loss(fmodel, adapted, example)
                example_grads = tape.gradient(outer, adapted)
            else:
                outer = task.outer_loss(fmodel, adapted, example)
                example_grads = [w - a for w, a in zip(weights, adapted)]
            outer_losses.append(outer)
            grads = [g + eg / n for g, eg in zip(grads, example_grads)]
        meta_loss = tf.add_n(outer_losses) / n
    metrics = {"loss": meta_loss, "inner_loss_first": tf.add_n(first_losses) / n}
    return grads, metrics


def _vectorized_meta_gradients(config, task, fmodel, weights, meta_batch):
    """`meta_gradients` with one `tf.vectorized_map` over the examples (see module doc).

    The inner loop is unrolled inside the mapped function (K is small; pfor then sees
    plain ops, no while loop); first-order algorithms stop its gradients.
    """
    def per_example(example):
        if config.algorithm == "maml":
            # The example's meta-gradient is taken inside the mapped function: a tape
            # outside it differentiates pfor's converted ops, where custom gradients (the
            # fast sine's fused backward) are gone and MAML's second-order term came out
            # zero (tests/test_distribute.py, VectorizedMetaBatchTest).
            with tf.GradientTape() as tape:
                tape.watch(weights)
                adapted, losses = _adapt_example(config, task, fmodel, weights, example, True)
                outer = task.outer_loss(fmodel, adapted, example)
            return outer, losses[0], tape.gradient(outer, weights)
        adapted, losses = _adapt_example(config, task, fmodel, weights, example, True)
        adapted = [tf.stop_gradient(a) for a in adapted]
        if config.algorithm == "fomaml":
            with tf.GradientTape() as tape:
                tape.watch(adapted)
                outer = task.outer_loss(fmodel, adapted, example)
            return outer, losses[0], tape.gradient(outer, adapted)
        outer = task.outer_loss(fmodel, adapted, example)
        return outer, losses[0], [w - a for w, a in zip(weights, adapted)]

    return _mean_over_examples(per_example, meta_batch)


def _mean_over_examples(per_example, meta_batch):
    """`per_example` (-> outer loss, first inner loss, gradients) mapped over the meta-batch
    with `tf.vectorized_map`: the mean gradients and the step's metrics."""
    outer_losses, first_losses, example_grads = tf.vectorized_map(per_example, meta_batch)
    grads = [tf.reduce_mean(g, axis=0) for g in example_grads]
    return grads, {"loss": tf.reduce_mean(outer_losses),
                   "inner_loss_first": tf.reduce_mean(tf.cast(first_losses, tf.float32))}


def _meta_sgd_gradients(config, task, fmodel, weights, meta_batch, rates, rate_index):
    """`meta_gradients` with learned inner rates: gradients of weights then rates."""
    n = meta_batch_size(meta_batch)
    params = list(weights) + list(rates)
    per_weight = lambda rs: [rs[i] for i in rate_index]  # noqa: E731
    first_order = config.algorithm == "fomaml"
    if config.vectorize:  # MAML (check_learned_rates).
        def per_example(example):
            # Each example's gradient inside the mapped function (see
            # `_vectorized_meta_gradients`: custom gradients are lost outside it).
            with tf.GradientTape() as tape:
                tape.watch(params)
                adapted, losses = _adapt_example(config, task, fmodel, weights, example,
                                                 True, rates=per_weight(rates))
                outer = task.outer_loss(fmodel, adapted, example)
            return outer, losses[0], tape.gradient(outer, params)

        return _mean_over_examples(per_example, meta_batch)
    examples = [_example(meta_batch, i) for i in range(n)]
    sequential = config.remat or first_order
    grads = [tf.zeros_like(p) for p in params]
    outer_losses, first_losses = [], []
    with contextlib.nullcontext() if sequential else tf.GradientTape() as batch_tape:
        if batch_tape is not None:
            batch_tape.watch(params)
        shared = None if config.remat else _shared_first_steps(config, task, fmodel, weights,
                                                                examples)
        for i, example in enumerate(examples):
            first_step = shared[i] if shared else None
            if sequential:
                # One example's graph at a time (remat: bounded memory; first order: its
                # own small tape); a data dependency orders the examples, as in remat MAML.
                start = params
                if i and config.remat:
                    dep = data_dependency(grads)
                    start = [p + tf.cast(dep, p.dtype) for p in params]
                with tf.GradientTape() as tape:
                    tape.watch(start)
                    ws, rs = start[:len(weights)], start[len(weights):]
                    if first_step is not None:
                        first_step = (tf.stop_gradient(first_step[0]),
                                      [tf.stop_gradient(g) for g in first_step[1]])
                    adapted, losses = _adapt_example(config, task, fmodel, ws, example, True,
                                                     first_step, per_weight(rs), first_order)
                    outer = _outer_loss(config, task, fmodel, adapted, example)
                grads = [g + eg / n for g, eg in zip(grads, tape.gradient(outer, start))]
            else:
                adapted, losses = _adapt_example(config, task, fmodel, weights, example, True,
                                                 first_step, per_weight(rates))
                outer = _outer_loss(config, task, fmodel, adapted, example)
            outer_losses.append(outer)
            first_losses.append(losses[0])
        meta_loss = tf.add_n(outer_losses) / n
    if not sequential:
        grads = batch_tape.gradient(meta_loss, params)
    return grads, {"loss": meta_loss, "inner_loss_first": tf.add_n(first_losses) / n}
