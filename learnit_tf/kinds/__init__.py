"""Signal kinds: one package per kind (image, ct, nerf, audio), each registered once.

The registry (what a kind provides, how it is looked up) is `learnit_tf.core.registry`;
this package re-exports its functions so `learnit_tf.kinds.get_kind` keeps working.
Kind packages are imported lazily, by the registry (`learnit_tf.kinds.registrants`).
"""

from learnit_tf.core.registry import (Metric, ReaderOption, SignalKind, all_kinds,
                                      dataset_function, get_kind, kind_of_dataset,
                                      kind_of_task, load_all, register_kind, task_class)

__all__ = ["Metric", "ReaderOption", "SignalKind", "all_kinds", "dataset_function",
           "get_kind", "kind_of_dataset", "kind_of_task", "load_all", "register_kind",
           "task_class"]
