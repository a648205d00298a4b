"""The periodic held-out evaluation of a meta-training run (TensorBoard and console)."""

import numpy as np
import tensorflow as tf

from learnit_tf.core.registry import PSNR


def evaluate_init(fitter, examples, steps, weights=None):
    """Mean and std of the task metrics after 0..steps test-time steps on `examples`.

    Args:
        fitter: a `learnit_tf.meta.Fitter` (its model's current weights are the init
            unless `weights` is given).
        examples: list of example dicts.
        steps: test-time steps.
        weights: optional starting weights.

    Returns:
        dict name -> (mean (steps+1,), std (steps+1,)) numpy arrays.
    """
    curves = {}
    for example in examples:
        result = fitter.fit(example, steps, weights=weights)
        for name, values in result.metrics.items():
            curves.setdefault(name, []).append(values)
    return {name: (np.mean(v, axis=0), np.std(v, axis=0)) for name, v in curves.items()}


def evaluate_and_log(fitter, examples, steps, writer, step, metric=PSNR):
    """Fits `examples` from the current init; writes every metric at step 0 and `steps`
    (and the task's render of the init, if it has one) to TensorBoard, and prints the
    primary `metric` (a registry `Metric`: the task's kind's) if the task reports it."""
    curves = evaluate_init(fitter, examples, steps)
    with writer.as_default(step=step):
        for name, (mean, _) in curves.items():
            tf.summary.scalar(f"eval/{name}_step0", float(mean[0]))
            tf.summary.scalar(f"eval/{name}_step{steps}", float(mean[-1]))
        render = getattr(fitter.task, "render", None)
        if render is not None:
            image = render(fitter.fmodel, fitter.fmodel.initial_weights())
            if image.shape.rank == 3 and image.shape[-1] in (1, 3):
                tf.summary.image("eval/init_output", tf.clip_by_value(image, 0.0, 1.0)[None])
    primary = curves.get(metric.key)
    if primary is not None:
        print(f"\n[eval step {step}] held-out {metric.label}: step 0 "
              f"{metric.format(primary[0][0])}, step {steps} {metric.format(primary[0][-1])}")
    return curves
