"""Analytic signed distance functions and the procedural shapes built from them (numpy).

Sign convention of the whole kind: a signed distance is NEGATIVE INSIDE the shape,
zero on its surface and positive outside (DeepSDF's and MetaSDF's convention; trimesh
returns the opposite, see `learnit_tf.kinds.shape3d.mesh`). Occupancy is `sdf < 0`.

A procedural shape is the union (hard `min`, or a smooth union of radius `k`,
Inigo Quilez's polynomial smooth minimum) of 2-4 primitives: spheres, boxes, tori and
capsules, each rotated and placed at random. Every shape is then normalized as a
user's mesh is (`NORMALIZED_HALF_EXTENT`): its bounding box centred on the origin and
scaled uniformly so its longest side spans [-0.8, 0.8], inside the [-1, 1]^3 domain
the network sees. A smooth union is not an exact distance away from the blend, but it
is 1-Lipschitz with the right sign and zero set, which is what the metrics use.

Example:

>>> import numpy as np
>>> shape = Shape((Primitive("sphere", np.zeros(3), np.eye(3), (0.5,)),))
>>> [round(float(d), 3) for d in shape.sdf(np.array([[0., 0., 0.], [1., 0., 0.]]))]
[-0.5, 0.5]
"""

import dataclasses
from typing import Tuple

import numpy as np

#: Half side of the cube [-h, h]^3 a normalized shape's bounding box fits in (longest side).
NORMALIZED_HALF_EXTENT = 0.8
PRIMITIVE_KINDS = ("sphere", "box", "torus", "capsule")


@dataclasses.dataclass(frozen=True)
class Primitive:
    """One primitive: `kind`, `center` (3,), `rotation` (3, 3, local -> world), `size`.

    size: sphere (radius,); box (half x, half y, half z); torus (major, minor radius,
    ring in the local xy plane); capsule (half length along local z, radius).
    """

    kind: str
    center: np.ndarray
    rotation: np.ndarray
    size: Tuple[float, ...]

    def sdf(self, points):
        """Signed distances of world `points` (N, 3), float64 (N,)."""
        local = (np.asarray(points, np.float64) - self.center) @ self.rotation
        if self.kind == "sphere":
            return np.linalg.norm(local, axis=-1) - self.size[0]
        if self.kind == "box":
            q = np.abs(local) - np.asarray(self.size)
            outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
            return outside + np.minimum(q.max(axis=-1), 0.0)
        if self.kind == "torus":
            ring = np.linalg.norm(local[:, :2], axis=-1) - self.size[0]
            return np.hypot(ring, local[:, 2]) - self.size[1]
        if self.kind == "capsule":
            half, radius = self.size
            z = np.clip(local[:, 2], -half, half)
            return np.linalg.norm(local - np.stack([0 * z, 0 * z, z], -1), axis=-1) - radius
        raise ValueError(f"Unknown primitive {self.kind!r}; expected one of {PRIMITIVE_KINDS}.")


def smooth_min(a, b, k):
    """Polynomial smooth minimum of radius `k` (k = 0: `min`); <= min(a, b)."""
    if k <= 0:
        return np.minimum(a, b)
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


@dataclasses.dataclass(frozen=True)
class Shape:
    """A union of primitives, then `points -> scale * f((points - offset) / scale)`."""

    primitives: Tuple[Primitive, ...]
    blend: float = 0.0
    offset: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    scale: float = 1.0

    def sdf(self, points):
        """Signed distances (negative inside) of `points` (N, 3), float64 (N,)."""
        local = (np.asarray(points, np.float64) - self.offset) / self.scale
        d = self.primitives[0].sdf(local)
        for primitive in self.primitives[1:]:
            d = smooth_min(d, primitive.sdf(local), self.blend)
        return self.scale * d

    def normalized(self, surface_points):
        """This shape moved and scaled so the bounding box of `surface_points` (on its
        surface) is centred and its longest side spans 2 * NORMALIZED_HALF_EXTENT."""
        low, high = surface_points.min(0), surface_points.max(0)
        factor = 2 * NORMALIZED_HALF_EXTENT / float((high - low).max())
        center = (low + high) / 2
        # x' = (x - center) * factor: f'(x') = factor * f(x' / factor + center).
        return dataclasses.replace(self, offset=(self.offset - center) * factor,
                                   scale=self.scale * factor)


def random_rotation(rng):
    """A uniformly random rotation matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_primitive(rng):
    kind = PRIMITIVE_KINDS[rng.randint(len(PRIMITIVE_KINDS))]
    center = rng.uniform(-0.35, 0.35, size=3)
    if kind == "sphere":
        size = (rng.uniform(0.2, 0.45),)
    elif kind == "box":
        size = tuple(rng.uniform(0.1, 0.4, size=3))
    elif kind == "torus":
        major = rng.uniform(0.2, 0.4)
        size = (major, rng.uniform(0.06, 0.5 * major))
    else:
        size = (rng.uniform(0.1, 0.35), rng.uniform(0.08, 0.2))
    return Primitive(kind, center, random_rotation(rng), tuple(float(s) for s in size))


def random_shape(rng, min_primitives=2, max_primitives=4):
    """A random union of primitives (half of them smooth, radius 0.05-0.15), not normalized."""
    count = rng.randint(min_primitives, max_primitives + 1)
    primitives = tuple(random_primitive(rng) for _ in range(count))
    blend = float(rng.uniform(0.05, 0.15)) if rng.uniform() < 0.5 else 0.0
    return Shape(primitives, blend)


def project_to_surface(sdf_fn, points, iterations=6, eps=1e-4):
    """Moves `points` onto the zero set of `sdf_fn` by steps p -= f(p) grad f / |grad f|^2
    (finite-difference gradients); returns (points, |f| after the last step)."""
    p = np.asarray(points, np.float64).copy()
    offsets = np.eye(3) * eps
    for _ in range(iterations):
        f = sdf_fn(p)
        grad = np.stack([(sdf_fn(p + o) - sdf_fn(p - o)) / (2 * eps) for o in offsets], -1)
        norm2 = np.maximum((grad ** 2).sum(-1, keepdims=True), 1e-12)
        p = p - f[:, None] * grad / norm2
    return p, np.abs(sdf_fn(p))


def _primitive_surface_guesses(primitive, rng, count):
    """Points near the surface of one primitive (its parameterization; not area-exact)."""
    u = rng.normal(size=(count, 3))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    if primitive.kind == "sphere":
        local = u * primitive.size[0]
    elif primitive.kind == "box":
        local = rng.uniform(-1, 1, size=(count, 3)) * np.asarray(primitive.size)
        axis = rng.randint(3, size=count)
        local[np.arange(count), axis] = np.sign(u[np.arange(count), axis]) * np.asarray(
            primitive.size)[axis]
    elif primitive.kind == "torus":
        angle = rng.uniform(0, 2 * np.pi, size=count)
        ring = np.stack([np.cos(angle), np.sin(angle), 0 * angle], -1) * primitive.size[0]
        local = ring + u * primitive.size[1]
    else:
        z = rng.uniform(-primitive.size[0], primitive.size[0], size=count)
        local = np.stack([0 * z, 0 * z, z], -1) + u * primitive.size[1]
    return local @ primitive.rotation.T + primitive.center


def surface_points(shape, rng, count, tolerance=1e-3):
    """`count` points on the surface of `shape` (|sdf| < tolerance), float64 (count, 3).

    Guesses on every primitive's surface are projected onto the union's zero set;
    guesses that do not converge (e.g. at a blend's crease) are dropped.
    """
    guesses = []
    # Most guesses converge: ~1.5 per point asked for, spread over the primitives.
    per = max(64, (3 * count) // (2 * len(shape.primitives)))
    for _ in range(20):
        for primitive in shape.primitives:
            local_guess = _primitive_surface_guesses(primitive, rng, per)
            guesses.append(local_guess * shape.scale + shape.offset)
        points, residual = project_to_surface(shape.sdf, np.concatenate(guesses))
        kept = points[residual < tolerance]
        if len(kept) >= count:
            return kept[rng.permutation(len(kept))[:count]]
    raise ValueError(f"Could not place {count} points on the surface of {shape!r}.")
