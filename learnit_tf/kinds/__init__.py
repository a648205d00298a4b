"""Signal kinds: one package per kind (image, ct, nerf, audio), each registered once.

See `learnit_tf.kinds.registry` for what a kind provides and how it is looked up.
"""

from learnit_tf.kinds.registry import (SignalKind, all_kinds, dataset_function, get_kind,
                                       kind_of_dataset, kind_of_task, load_all, register_kind,
                                       task_class)

__all__ = ["SignalKind", "all_kinds", "dataset_function", "get_kind", "kind_of_dataset",
           "kind_of_task", "load_all", "register_kind", "task_class"]
