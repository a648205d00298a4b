"""Tiny meta-training runs shared by the runner tests (test_train_runner.py) and the
bad-input table (test_bad_inputs.py): a 12-image 8×8 dataset and `meta_train` keyword
arguments that train for a few seconds."""

import numpy as np
import tensorflow as tf

from learnit_tf.kinds.image import ImageTask
from learnit_tf.models import Siren

IMAGES = np.random.RandomState(0).rand(12, 8, 8, 3).astype(np.float32)


def tiny_images(split):
    del split
    return tf.data.Dataset.from_tensor_slices({"image": IMAGES})


def tiny_kwargs(**overrides):
    """`meta_train` arguments of a 4-step Reptile run of an 8-wide SIREN; `overrides` win."""
    kwargs = dict(model_fn=lambda seed: Siren(out_features=3, width=8, depth=2, seed=seed),
                  task=ImageTask(8), dataset_fn=tiny_images, algorithm="reptile",
                  inner_steps=1, meta_batch_size=2, num_steps=4, outer_learning_rate=1e-3,
                  checkpoint_every=2, eval_every=0, jit_compile=False, show_progress=False)
    kwargs.update(overrides)
    return kwargs


def never_build(seed):
    """A `model_fn` for arguments that must be refused before any model is built."""
    raise AssertionError(f"model_fn was called (seed={seed}) before the arguments were checked")
