"""`NerfTask`: view synthesis as a measurement operator (volume rendering along rays).

PAPER.md, "View synthesis": the inner loop (and the test-time fit) takes random
batches of rays from the observed views of one object (128 rays a step for
ShapeNet, 64 for Phototourism), renders them with the NeRF MLP and minimises the
squared colour error; quality is PSNR on held-out views (ShapeNet) or on the
right half of a photo fitted on its left half (Phototourism).

Example layout (one signal, static shapes; R support rays, T held-out rays):

- `"rays_o"`, `"rays_d"`, `"rgb"`: float32 (R, 3): every ray of the observed
  (support) views: all 25 support views, or one view for single-view training
  ("SV meta") and the single-view test protocol, or the left half of a photo.
- `"near"`, `"far"`: optional float32 (R,) per-ray bounds (Phototourism); without
  them the task's scalar `near`/`far` are used.
- `"test_rays_o"`, `"test_rays_d"`, `"test_rgb"` (T, 3), optional `"test_near"`,
  `"test_far"` (T,): held-out rays that `metrics` scores (held-out views, right
  half of the photo). Without them `metrics` scores support rays.
- `"test_shape"`: optional int32 (3,) = (views, height, width) of the held-out
  rays when they form images (for full-image evaluation and pictures).
- `"seed"`: int32 (2,), added by the data pipeline; the inner loss draws its ray
  batch and stratified jitter at step k from stateless RNG of (seed, k).
"""

import numpy as np
import tensorflow as tf

from learnit_tf.kinds.nerf.rendering import render_rays, render_rays_chunked
from learnit_tf.core.task import Task, mse_to_psnr

SUPPORT_KEYS = ("rays_o", "rays_d", "rgb")
TEST_KEYS = ("test_rays_o", "test_rays_d", "test_rgb")


class NerfTask(Task):
    """Fit a NeRF MLP to the rays of one object (or photo).

    Args:
        near, far: default integration bounds (ShapeNet: 2, 6); overridden per ray
            by example entries "near"/"far".
        num_samples: stratified samples per ray (paper: 128).
        rays_per_step: random rays per inner/test-time step (paper: 128 ShapeNet
            meta-training, 64 Phototourism and test time).
        white_background: composite over white (object renders) or black.
        metric_rays: `metrics` renders this many held-out rays (an evenly spaced,
            fixed subset) so that per-step metrics stay cheap; None renders all.
            Full-image PSNR lives in `learnit_tf.kinds.nerf.evaluation`.
        eval_num_samples: samples per ray for `metrics` (default num_samples).
        chunk: rays per chunk when `metrics` renders many rays.

    Example:

    >>> from learnit_tf.models import FunctionalModel, NerfMLP
    >>> task = NerfTask(num_samples=8, rays_per_step=4)
    >>> fmodel = FunctionalModel(NerfMLP(width=16, hidden_layers=2, seed=0))
    >>> example = {"rays_o": tf.zeros((10, 3)) + [0.0, 0.0, 4.0],
    ...            "rays_d": tf.zeros((10, 3)) + [0.0, 0.0, -1.0],
    ...            "rgb": tf.ones((10, 3)), "seed": tf.constant([0, 1])}
    >>> loss = task.inner_loss(fmodel, fmodel.initial_weights(), example, tf.constant(0))
    >>> loss.shape
    TensorShape([])
    """

    def __init__(self, near=2.0, far=6.0, num_samples=128, rays_per_step=128,
                 white_background=True, metric_rays=1024, eval_num_samples=None, chunk=4096):
        self.near = float(near)
        self.far = float(far)
        if not self.near < self.far:
            raise ValueError(f"NerfTask needs near < far, got near={near}, far={far}.")
        if self.near < 0:
            raise ValueError(f"NerfTask needs near >= 0, got {near}.")
        self.num_samples = int(num_samples)
        self.rays_per_step = int(rays_per_step)
        if self.num_samples < 1 or self.rays_per_step < 1:
            raise ValueError("num_samples and rays_per_step must be >= 1, got "
                             f"{num_samples} and {rays_per_step}.")
        self.white_background = bool(white_background)
        self.metric_rays = None if metric_rays is None else int(metric_rays)
        self.eval_num_samples = int(eval_num_samples or num_samples)
        self.chunk = int(chunk)

    def get_config(self):
        return {"near": self.near, "far": self.far, "num_samples": self.num_samples,
                "rays_per_step": self.rays_per_step, "white_background": self.white_background,
                "metric_rays": self.metric_rays, "eval_num_samples": self.eval_num_samples,
                "chunk": self.chunk}

    # -- helpers ---------------------------------------------------------------------------

    def _bounds(self, example, prefix, indices=None):
        near, far = example.get(prefix + "near"), example.get(prefix + "far")
        if near is None:
            return self.near, self.far
        if indices is not None:
            near, far = tf.gather(near, indices), tf.gather(far, indices)
        return near, far

    @staticmethod
    def _step_seeds(seed, step, stream):
        """Two independent int32 seeds (ray choice, jitter) for `step` of a stream."""
        seed = tf.cast(seed, tf.int32)
        mixed = tf.random.experimental.stateless_fold_in(seed, tf.cast(step, tf.int32))
        mixed = tf.random.experimental.stateless_fold_in(mixed, stream)
        return tf.unstack(tf.random.experimental.stateless_split(mixed, 2))

    def _sampled_loss(self, fmodel, weights, example, step, stream):
        if "seed" not in example:
            raise ValueError("NerfTask examples need a 'seed' entry (int32 (2,)) for the random "
                             "ray batches; the data pipeline adds it (add_example_seeds).")
        rays_o = example["rays_o"]
        num_rays = rays_o.shape[0] or tf.shape(rays_o)[0]
        ray_seed, jitter_seed = self._step_seeds(example["seed"], step, stream)
        idx = tf.random.stateless_uniform((self.rays_per_step,), ray_seed, 0, num_rays,
                                          dtype=tf.int32)
        near, far = self._bounds(example, "", idx)
        out = render_rays(fmodel, weights, tf.gather(rays_o, idx),
                          tf.gather(example["rays_d"], idx), near, far, self.num_samples,
                          jitter_seed, self.white_background)
        return tf.reduce_mean(tf.square(out["rgb"] - tf.gather(example["rgb"], idx)))

    # -- Task interface --------------------------------------------------------------------

    def inner_loss(self, fmodel, weights, example, step):
        """MSE of `rays_per_step` random support rays, random draw of (seed, step)."""
        return self._sampled_loss(fmodel, weights, example, step, stream=0)

    def outer_loss(self, fmodel, weights, example):
        """MSE on a random support-ray batch independent of the inner steps' batches."""
        return self._sampled_loss(fmodel, weights, example, tf.constant(0, tf.int32), stream=1)

    def metric_indices(self, num_rays):
        """The fixed, evenly spaced subset of `num_rays` rays that `metrics` scores."""
        if self.metric_rays is None or self.metric_rays >= num_rays:
            return None
        return np.round(np.linspace(0, num_rays - 1, self.metric_rays)).astype(np.int32)

    def check_init(self, fmodel, weights, example):
        from learnit_tf.kinds.nerf.density import density_alive_fraction  # pylint: disable=import-outside-toplevel
        alive = density_alive_fraction(fmodel, weights, example, self)
        if alive < 0.01:
            return (f"the density is positive at only {alive:.2%} of sample points, so the "
                    "ReLU density has (almost) zero gradients everywhere.")
        return None

    def metrics(self, fmodel, weights, example):
        """{"loss": MSE, "psnr"} on held-out rays (support rays if none), bin-centre samples."""
        prefix = "test_" if "test_rays_o" in example else ""
        rays_o, rays_d = example[prefix + "rays_o"], example[prefix + "rays_d"]
        target = example[prefix + "rgb"]
        num_rays = rays_o.shape[0]
        if num_rays is None:
            raise ValueError("NerfTask.metrics needs a static number of rays.")
        idx = self.metric_indices(num_rays)
        if idx is not None:
            idx = tf.constant(idx)
            rays_o, rays_d, target = (tf.gather(x, idx) for x in (rays_o, rays_d, target))
        near, far = self._bounds(example, prefix, idx)
        out = render_rays_chunked(fmodel, weights, rays_o, rays_d, near, far,
                                  self.eval_num_samples, self.chunk, self.white_background,
                                  outputs=("rgb",))
        mse = tf.reduce_mean(tf.square(out["rgb"] - target))
        return {"loss": mse, "psnr": mse_to_psnr(mse)}

    def validate_example(self, example, name="example"):
        """Checks keys, shapes, colour range and bounds; raises ValueError naming `name`."""
        if not isinstance(example, dict):
            raise ValueError(f"{name} must be a dict of tensors, got {type(example).__name__}.")
        missing = [k for k in SUPPORT_KEYS if k not in example]
        if missing:
            raise ValueError(f"{name} is missing {missing}; NerfTask examples need "
                             f"{list(SUPPORT_KEYS)} (float32 (R, 3)).")
        present_test = [k for k in TEST_KEYS if k in example]
        if present_test and len(present_test) != len(TEST_KEYS):
            raise ValueError(f"{name} has {present_test} but not all of {list(TEST_KEYS)}.")
        for prefix, keys in (("", SUPPORT_KEYS), ("test_", TEST_KEYS if present_test else ())):
            if not keys:
                continue
            shapes = {k: tuple(np.shape(example[k])) for k in keys}
            first = shapes[keys[0]]
            if len(first) != 2 or first[-1] != 3 or first[0] == 0 or any(
                    s != first for s in shapes.values()):
                raise ValueError(f"{name}: {list(keys)} must all have the same shape (R, 3) "
                                 f"with R >= 1, got {shapes}.")
            rgb = np.asarray(example[prefix + "rgb"])
            if not np.all(np.isfinite(rgb)) or rgb.min() < 0.0 or rgb.max() > 1.0:
                raise ValueError(f"{name}['{prefix}rgb'] must hold finite colours in [0, 1] "
                                 f"(range found: {rgb.min()}..{rgb.max()}).")
            for k in keys[:2]:
                if not np.all(np.isfinite(np.asarray(example[k]))):
                    raise ValueError(f"{name}['{k}'] contains NaN or infinite values.")
            has_near, has_far = prefix + "near" in example, prefix + "far" in example
            if has_near != has_far:
                raise ValueError(f"{name} must have both or neither of '{prefix}near' and "
                                 f"'{prefix}far'.")
            if has_near:
                near = np.asarray(example[prefix + "near"])
                far = np.asarray(example[prefix + "far"])
                if near.shape != (first[0],) or far.shape != (first[0],):
                    raise ValueError(f"{name}: '{prefix}near'/'{prefix}far' must have shape "
                                     f"({first[0]},), got {near.shape} and {far.shape}.")
                bad = np.flatnonzero(~(near < far))
                if bad.size:
                    raise ValueError(f"{name}: near >= far for {bad.size} rays (first: ray "
                                     f"{bad[0]}, near={near[bad[0]]}, far={far[bad[0]]}).")
        if "seed" in example and tuple(np.shape(example["seed"])) != (2,):
            raise ValueError(f"{name}['seed'] must have shape (2,), got "
                             f"{tuple(np.shape(example['seed']))}.")
