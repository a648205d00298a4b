"""Shared data plumbing: examples -> meta-batches (kind-specific datasets live in `kinds/`)."""

from learnit_tf.data.pipeline import add_example_seeds, meta_batches, take_examples

__all__ = ["add_example_seeds", "meta_batches", "take_examples"]
