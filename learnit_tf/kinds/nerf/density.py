"""Dead ReLU densities: detecting them and drawing standard NeRF inits that are alive.

A ReLU density that is zero at every sample point ("dead") has zero gradients: no
optimiser can leave it. With zero biases a deep ReLU MLP's output has nearly the same
sign everywhere, so a sizeable share of random NerfMLP inits start dead. `NerfTask`
uses `density_alive_fraction` to refuse such inits; the single-view protocol uses
`draw_standard_init` so that its standard-init baseline is not a constant image.
(This module imports no task or protocol, so both can import it.)
"""

import numpy as np
import tensorflow as tf

from learnit_tf.kinds.nerf.rendering import stratified_samples
from learnit_tf.models import FunctionalModel, model_from_config


def density_alive_fraction(fmodel, weights, example, task, max_rays=1024):
    """Share of sample points of an example's support rays where the density σ > 0.

    Args:
        fmodel: a `FunctionalModel` of a NeRF MLP (output channel 3 is σ before ReLU).
        weights: its weights.
        example: an example with "rays_o", "rays_d" (and optional "near"/"far").
        task: the `NerfTask` (bounds and samples per ray).
        max_rays: evenly spaced support rays checked.
    """
    rays_o = np.asarray(example["rays_o"])
    idx = np.unique(np.linspace(0, len(rays_o) - 1, min(max_rays, len(rays_o))).astype(int))
    near = np.asarray(example["near"])[idx] if "near" in example else task.near
    far = np.asarray(example["far"])[idx] if "far" in example else task.far
    t = stratified_samples(near, far, len(idx), task.num_samples).numpy()
    points = rays_o[idx, None] + t[..., None] * np.asarray(example["rays_d"])[idx, None]
    raw = fmodel(weights, tf.constant(points.reshape(-1, 3), tf.float32))
    return float(np.mean(np.asarray(raw)[:, 3] > 0.0))


def draw_standard_init(class_name, config, seed, example, task, min_alive=0.01, max_tries=50):
    """A standard (random) init whose density is not dead on `example`'s rays.

    Draws the architecture's usual random init with seeds seed, seed + 1, ... and
    returns the first whose density is positive at >= `min_alive` of the sample
    points (see `density_alive_fraction`); a dead init would make the "standard"
    baseline a constant image whatever the optimiser.

    Returns:
        (model, seed used).
    """
    for k in range(max_tries):
        model = model_from_config(class_name, dict(config, seed=seed + k))
        fmodel = FunctionalModel(model)
        if density_alive_fraction(fmodel, fmodel.initial_weights(), example, task) >= min_alive:
            return model, seed + k
    raise RuntimeError(f"No standard init with a live density in {max_tries} seeds from {seed}.")
