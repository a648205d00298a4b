"""Emission-absorption volume rendering of a NeRF MLP along camera rays.

PAPER.md, "View synthesis": the network's raw output is (r, g, b, σ) per point;
colour is `sigmoid(rgb)`, density `relu(σ)`; points are stratified samples between
near and far (paper: 128 per ray, near 2, far 6 for ShapeNet); colours are
composited front to back and, for the object renders, over a white background.

Quadrature. Sample k represents the interval between the midpoints to its
neighbours, the first and last intervals ending at near and far:
`e_0 = near, e_k = (t_{k-1} + t_k) / 2, e_N = far`, `δ_k = (e_{k+1} − e_k) · ‖d‖`.
With `α_k = 1 − exp(−σ_k δ_k)` and `T_k = exp(−Σ_{j<k} σ_j δ_j)` the weights
`w_k = α_k T_k` sum exactly to `1 − exp(−∫σ)`, so a constant density σ gives the
analytic transmittance `exp(−σ · distance)`. (The authors' notebook instead gives
the last sample an infinite interval, which makes every ray opaque; here light that
passes the far bound shows the background.) Distances are metric (scaled by ‖d‖).

All functions take static-shape ray batches and compile with XLA; `RayRenderer`
renders any number of rays in fixed-size chunks so memory stays bounded. Jitter is
reproducible from its stateless seed, but note that TF's stateless RNG draws
different numbers with and without XLA on CPU, so eager debugging runs
(`jit_compile=False`) see other random samples than compiled ones.
"""

import numpy as np
import tensorflow as tf

from learnit_tf.meta.compile import resolve_jit_compile


def _per_ray(value, num_rays, name):
    value = tf.cast(value, tf.float32)
    if value.shape.rank not in (None, 0, 1):
        raise ValueError(f"{name} must be a scalar or have shape (num_rays,), got {value.shape}.")
    return tf.broadcast_to(value, (num_rays,))


def stratified_samples(near, far, num_rays, num_samples, seed=None):
    """Sample positions t (num_rays, num_samples) between near and far, sorted.

    [near, far] is cut into `num_samples` equal bins and each sample is drawn
    uniformly inside its bin (stateless RNG from `seed`), or at the bin's centre
    when `seed` is None (deterministic evaluation).

    Args:
        near, far: scalars or per-ray (num_rays,) bounds.
        num_rays, num_samples: static sizes.
        seed: optional int32 (2,) stateless seed.

    Example:

    >>> stratified_samples(2.0, 6.0, 1, 4).numpy().tolist()
    [[2.5, 3.5, 4.5, 5.5]]
    """
    near = _per_ray(near, num_rays, "near")[:, None]
    far = _per_ray(far, num_rays, "far")[:, None]
    if seed is None:
        u = tf.fill((num_rays, num_samples), 0.5)
    else:
        u = tf.random.stateless_uniform((num_rays, num_samples), seed)
    fraction = (tf.range(num_samples, dtype=tf.float32)[None, :] + u) / float(num_samples)
    return near + (far - near) * fraction


def composite(raw, t, rays_d, near, far, white_background=True):
    """Volume-renders raw network outputs along rays.

    Args:
        raw: float32 (R, N, 4): raw (r, g, b, σ) at the samples.
        t: float32 (R, N): sorted sample positions.
        rays_d: float32 (R, 3) ray directions (distances are scaled by their norm).
        near, far: scalars or (R,) bounds of the integration interval.
        white_background: composite over white (True) or black (False).

    Returns:
        dict with "rgb" (R, 3), "depth" (R,) (expected ray parameter of termination,
        counting the background as terminating at `far`), "opacity" (R,) (=
        1 − transmittance through [near, far]), "weights" (R, N) and
        "transmittance" (R, N) (light reaching the start of each interval).
    """
    num_rays = raw.shape[0]
    near = _per_ray(near, num_rays, "near")[:, None]
    far = _per_ray(far, num_rays, "far")[:, None]
    rgb = tf.sigmoid(raw[..., :3])
    sigma = tf.nn.relu(raw[..., 3])
    edges = tf.concat([near, 0.5 * (t[:, 1:] + t[:, :-1]), far], axis=-1)
    deltas = (edges[:, 1:] - edges[:, :-1]) * tf.norm(rays_d, axis=-1, keepdims=True)
    optical_depth = sigma * deltas
    alpha = 1.0 - tf.exp(-optical_depth)
    transmittance = tf.exp(-tf.math.cumsum(optical_depth, axis=-1, exclusive=True))
    weights = alpha * transmittance
    opacity = tf.reduce_sum(weights, axis=-1)
    rgb_map = tf.reduce_sum(weights[..., None] * rgb, axis=-2)
    if white_background:
        rgb_map = rgb_map + (1.0 - opacity[:, None])
    depth = tf.reduce_sum(weights * t, axis=-1) + (1.0 - opacity) * far[:, 0]
    return {"rgb": rgb_map, "depth": depth, "opacity": opacity, "weights": weights,
            "transmittance": transmittance}


def render_rays(fmodel, weights, rays_o, rays_d, near, far, num_samples, seed=None,
                white_background=True):
    """Renders a static-shape batch of rays with a network given as explicit weights.

    Args:
        fmodel: callable (weights, points (P, 3)) -> raw (P, 4), e.g. a
            `learnit_tf.models.FunctionalModel` of a `NerfMLP`.
        weights: the network's weight list.
        rays_o, rays_d: float32 (R, 3).
        near, far: scalars or (R,) bounds.
        num_samples: samples per ray (paper: 128).
        seed: stateless seed for stratified jitter; None samples bin centres.
        white_background: composite over white (objects) or black.

    Returns:
        The dict of `composite`.

    Example:

    >>> from learnit_tf.models import FunctionalModel, NerfMLP
    >>> fmodel = FunctionalModel(NerfMLP(width=16, hidden_layers=2, seed=0))
    >>> out = render_rays(fmodel, fmodel.initial_weights(), tf.zeros((5, 3)),
    ...                   tf.ones((5, 3)), 2.0, 6.0, num_samples=8)
    >>> tuple(out["rgb"].shape), tuple(out["depth"].shape)
    ((5, 3), (5,))
    """
    rays_o = tf.convert_to_tensor(rays_o, tf.float32)
    rays_d = tf.convert_to_tensor(rays_d, tf.float32)
    num_rays = rays_o.shape[0]
    if num_rays is None:
        raise ValueError("render_rays needs a static number of rays; got shape "
                         f"{rays_o.shape}.")
    t = stratified_samples(near, far, num_rays, num_samples, seed)
    points = rays_o[:, None, :] + t[..., None] * rays_d[:, None, :]
    raw = fmodel(weights, tf.reshape(points, (num_rays * num_samples, 3)))
    raw = tf.reshape(raw, (num_rays, num_samples, raw.shape[-1]))
    return composite(raw, t, rays_d, near, far, white_background)


def render_rays_chunked(fmodel, weights, rays_o, rays_d, near, far, num_samples, chunk=4096,
                        white_background=True, outputs=("rgb", "depth", "opacity")):
    """`render_rays` over many rays in chunks (inside one graph; no jitter, no gradients).

    Rays are padded to a multiple of `chunk` and mapped with `tf.map_fn`, so peak
    memory is that of one chunk. Returns the dict restricted to `outputs`.
    """
    rays_o = tf.convert_to_tensor(rays_o, tf.float32)
    rays_d = tf.convert_to_tensor(rays_d, tf.float32)
    num_rays = rays_o.shape[0]
    near = _per_ray(near, num_rays, "near")
    far = _per_ray(far, num_rays, "far")
    if num_rays <= chunk:
        out = render_rays(fmodel, weights, rays_o, rays_d, near, far, num_samples, None,
                          white_background)
        return {k: out[k] for k in outputs}
    num_chunks = -(-num_rays // chunk)
    pad = num_chunks * chunk - num_rays

    def padded(x, value):
        x = tf.pad(x, [[0, pad]] + [[0, 0]] * (x.shape.rank - 1), constant_values=value)
        return tf.reshape(x, (num_chunks, chunk) + tuple(x.shape[1:]))

    # Padding rays get a non-zero direction and a valid interval so they stay finite.
    inputs = (padded(rays_o, 0.0), padded(rays_d, 1.0), padded(near, 0.0), padded(far, 1.0))

    def one(args):
        o, d, n, f = args
        out = render_rays(fmodel, weights, o, d, n, f, num_samples, None, white_background)
        return {k: out[k] for k in outputs}

    spec = {k: tf.TensorSpec((chunk, 3) if k == "rgb" else (chunk,), tf.float32)
            for k in outputs}
    mapped = tf.map_fn(one, inputs, fn_output_signature=spec)
    return {k: tf.reshape(v, (num_chunks * chunk,) + tuple(v.shape[2:]))[:num_rays]
            for k, v in mapped.items()}


class RayRenderer:
    """Renders arbitrarily many rays (e.g. full images) in compiled fixed-size chunks.

    One XLA program renders `chunk` rays; a Python loop feeds it chunk after chunk
    (the last one padded), so memory stays bounded by the chunk size whatever the
    image size, and weights are arguments (no recompilation for new weights).

    Args:
        fmodel: callable (weights, points) -> raw outputs.
        num_samples: samples per ray (bin centres: deterministic).
        white_background: composite over white or black.
        chunk: rays per compiled call.
        jit_compile: compile with XLA.

    Example:

    >>> from learnit_tf.models import FunctionalModel, NerfMLP
    >>> fmodel = FunctionalModel(NerfMLP(width=16, hidden_layers=2, seed=0))
    >>> renderer = RayRenderer(fmodel, num_samples=8, chunk=64)
    >>> out = renderer(fmodel.initial_weights(), np.zeros((10, 10, 3)), np.ones((10, 10, 3)),
    ...                2.0, 6.0)
    >>> out["rgb"].shape
    (10, 10, 3)
    """

    def __init__(self, fmodel, num_samples, white_background=True, chunk=4096, jit_compile="auto"):
        self.fmodel = fmodel
        self.num_samples = int(num_samples)
        self.white_background = bool(white_background)
        self.chunk = int(chunk)
        self._render = tf.function(self._render_chunk,
                                   jit_compile=resolve_jit_compile(jit_compile),
                                   reduce_retracing=True)

    def _render_chunk(self, weights, rays_o, rays_d, near, far):
        out = render_rays(self.fmodel, weights, rays_o, rays_d, near, far, self.num_samples,
                          None, self.white_background)
        return {"rgb": out["rgb"], "depth": out["depth"], "opacity": out["opacity"]}

    def __call__(self, weights, rays_o, rays_d, near, far, progress=None):
        """Renders rays of any leading shape; returns numpy "rgb", "depth", "opacity".

        Args:
            weights: the network's weight list.
            rays_o, rays_d: (..., 3) arrays.
            near, far: scalars or arrays of shape rays_o.shape[:-1].
            progress: optional callable(rays_done, total).
        """
        rays_o = np.asarray(rays_o, np.float32)
        rays_d = np.asarray(rays_d, np.float32)
        if rays_o.shape != rays_d.shape or rays_o.shape[-1:] != (3,):
            raise ValueError(f"rays_o and rays_d must have equal shapes (..., 3), got "
                             f"{rays_o.shape} and {rays_d.shape}.")
        lead = rays_o.shape[:-1]
        n = int(np.prod(lead))
        near = np.broadcast_to(np.asarray(near, np.float32), lead).reshape(n)
        far = np.broadcast_to(np.asarray(far, np.float32), lead).reshape(n)
        if np.any(near >= far):
            raise ValueError("near must be < far for every ray.")
        flat_o, flat_d = rays_o.reshape(n, 3), rays_d.reshape(n, 3)
        weights = [tf.convert_to_tensor(w) for w in weights]
        pieces = {"rgb": [], "depth": [], "opacity": []}
        for start in range(0, n, self.chunk):
            stop = min(start + self.chunk, n)
            pad = self.chunk - (stop - start)
            args = [flat_o[start:stop], flat_d[start:stop], near[start:stop], far[start:stop]]
            if pad:
                fill = [np.zeros((pad, 3)), np.ones((pad, 3)), np.zeros(pad), np.ones(pad)]
                args = [np.concatenate([a, f.astype(np.float32)]) for a, f in zip(args, fill)]
            out = self._render(weights, *[tf.constant(a) for a in args])
            for k in pieces:
                pieces[k].append(out[k].numpy()[:stop - start])
            if progress is not None:
                progress(stop, n)
        return {k: np.concatenate(v).reshape(lead + ((3,) if k == "rgb" else ()))
                for k, v in pieces.items()}
