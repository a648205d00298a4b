"""tf.data pipelines from unbatched examples to meta-batches.

Every example gets a `"seed"` entry, int32 (2,) = (pipeline seed, running example
index), that tasks use for per-step randomness (pixel subsets, ray batches, CT
angles) with stateless RNG. The pipeline is deterministic for a given seed and
its iterator can be saved in a `tf.train.Checkpoint`, so a resumed run sees exactly
the batches it would have seen.
"""

import tensorflow as tf


def add_example_seeds(dataset, seed):
    """Adds `"seed"` = (seed, index) to every example of an unbatched dataset."""
    seed = int(seed)

    def add(index, example):
        example = dict(example)
        example["seed"] = tf.stack([tf.constant(seed, tf.int32), tf.cast(index, tf.int32)])
        return example

    return dataset.enumerate().map(add, num_parallel_calls=tf.data.AUTOTUNE,
                                   deterministic=True)


def meta_batches(dataset, meta_batch_size, seed=0, shuffle_buffer=1024, repeat=True):
    """Shuffled, repeated meta-batches with static shapes (drop_remainder).

    Args:
        dataset: unbatched examples (dicts of tensors with static shapes).
        meta_batch_size: examples per meta-batch (the *global* meta-batch).
        seed: shuffling and example-seed base.
        shuffle_buffer: shuffle buffer size (0 disables shuffling).
        repeat: repeat the dataset forever (training).
    """
    if int(meta_batch_size) < 1:
        raise ValueError(f"meta_batch_size must be >= 1, got {meta_batch_size}.")
    ds = dataset
    if repeat:
        ds = ds.repeat()
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=int(seed), reshuffle_each_iteration=True)
    ds = add_example_seeds(ds, seed)
    ds = ds.batch(int(meta_batch_size), drop_remainder=True)
    return ds.prefetch(2)


def take_examples(dataset, n, seed=0):
    """The first `n` examples of a dataset as a list of dicts of eager tensors (with seeds)."""
    examples = list(add_example_seeds(dataset.take(int(n)), seed))
    if len(examples) < int(n):
        raise ValueError(f"Asked for {n} examples but the dataset holds only {len(examples)}.")
    return examples
