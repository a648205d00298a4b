"""`procedural_shapes`: random unions of spheres, boxes, tori and capsules (no download).

An offline 3D shape class for meta-learning signed distance functions, in the spirit
of MetaSDF's ShapeNet classes: every shape is a union (hard or smooth) of 2-4
primitives with analytic signed distances (`learnit_tf.kinds.shape3d.sdf`),
normalized like a user's mesh, and sampled like one (`sampling.sample_example`).

Example `i` of a split is drawn from `numpy.random.RandomState((seed, split_index, i))`,
so the dataset is deterministic by seed, independent of generation order, and the
splits (different `split_index`) never share a random stream: the train/test split
is fixed.
"""

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from learnit_tf.data.procedural_builders import (ProceduralBuilder, ProceduralConfig,
                                                 prepare_procedural_builder)
from learnit_tf.kinds.shape3d.sampling import sample_example
from learnit_tf.kinds.shape3d.sdf import random_shape, surface_points

#: Surface points drawn per shape before sampling (near-surface centres, Chamfer points).
SURFACE_POOL = 4096
#: Surface points whose bounding box normalizes a shape.
BOUNDS_POOL = 2048


def shape_example(rng, num_points, near_surface_std, grid_resolution, num_surface):
    """One random normalized shape's example (see `sampling.sample_example`)."""
    shape = random_shape(rng)
    shape = shape.normalized(surface_points(shape, rng, BOUNDS_POOL))
    surface = surface_points(shape, rng, SURFACE_POOL)
    return sample_example(shape.sdf, surface, rng, num_points, near_surface_std,
                          grid_resolution, num_surface)


@dataclasses.dataclass
class ProceduralShapesConfig(ProceduralConfig):
    """Samples per shape of a `procedural_shapes` config (and its split sizes)."""

    num_points: int = 2048
    near_surface_std: float = 0.02
    grid_resolution: int = 32
    num_surface: int = 2048


class ProceduralShapes(ProceduralBuilder):
    """Random unions of spheres, boxes, tori and capsules as signed distance samples."""

    BUILDER_CONFIGS = [
        # MetaSDF samples 500k points per ShapeNet shape, half near the surface
        # (DeepSDF's sampling), and fits 64^3 grids; 16384 points per example here.
        ProceduralShapesConfig(name="paper", description="16384 points per shape, a 64^3 "
                               "IoU grid, 10,000 shapes, for an accelerator.",
                               num_points=16384, near_surface_std=0.01, grid_resolution=64,
                               num_surface=8192, num_train=9000, num_validation=500,
                               num_test=500),
        # 512 training shapes: generating one takes ~0.4 s on a CPU.
        ProceduralShapesConfig(name="cpu", description="2048 points per shape, a 32^3 IoU "
                               "grid, 512 training shapes, for CPU meta-training.",
                               num_points=2048, near_surface_std=0.02, grid_resolution=32,
                               num_surface=2048, num_train=512, num_validation=32,
                               num_test=32),
        ProceduralShapesConfig(name="small", description="256 points, an 8^3 grid, a few "
                               "shapes, for tests.", num_points=256, near_surface_std=0.02,
                               grid_resolution=8, num_surface=128, num_train=16,
                               num_validation=4, num_test=4),
    ]
    DEFAULT_CONFIG_NAME = "cpu"

    def _features(self):
        cfg = self.builder_config
        return {
            "points": tfds.features.Tensor(shape=(cfg.num_points, 3), dtype=np.float32),
            "sdf": tfds.features.Tensor(shape=(cfg.num_points,), dtype=np.float32),
            "grid_sdf": tfds.features.Tensor(shape=(cfg.grid_resolution ** 3,),
                                             dtype=np.float32, encoding="zlib"),
            "surface": tfds.features.Tensor(shape=(cfg.num_surface, 3), dtype=np.float32),
        }

    def _metadata(self):
        return tfds.core.MetadataDict(sign="negative inside")

    def _example(self, split, index):
        cfg = self.builder_config
        rng = np.random.RandomState(list(self.example_seed(split, index)))
        return shape_example(rng, cfg.num_points, cfg.near_surface_std, cfg.grid_resolution,
                             cfg.num_surface)


def procedural_shapes_examples(split, config="cpu", data_dir=None):
    """The `procedural_shapes` split as unbatched examples (float32 points, sdf,
    grid_sdf, surface; see `learnit_tf.kinds.shape3d.sampling`).

    Generated on this machine on first use (`prepare_procedural_builder`).

    Example:

    >>> ds = procedural_shapes_examples("test", config="small")  # doctest: +SKIP
    >>> next(iter(ds))["points"].shape  # doctest: +SKIP
    TensorShape([256, 3])
    """
    builder = prepare_procedural_builder(ProceduralShapes, config, data_dir, split=split)
    if split not in builder.info.splits:
        raise ValueError(f"Unknown split {split!r} for dataset {builder.name!r}; "
                         f"expected one of {sorted(builder.info.splits)}.")
    return builder.as_dataset(split=split, shuffle_files=False)
