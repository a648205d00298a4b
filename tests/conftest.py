import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TF tracks CPU allocator statistics (get_memory_info, used by the memory tests) only
# with the BFC allocator, which is the default on some CPUs and not on others.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

import tensorflow as tf  # pylint: disable=wrong-import-position

# tf.test.TestCase defines a deprecated `test_session` context manager whose name makes
# pytest collect it as a test in every TestCase subclass, where it always skips. Not
# collecting it keeps the summary's skip count to the real skips (`pytest -rs` lists them).
_TF_PLACEHOLDER = tf.test.TestCase.test_session


def pytest_collection_modifyitems(items):
    # unittest classes are collected by pytest's unittest plugin (no pycollect hook), so
    # the placeholder is dropped from the collected items.
    items[:] = [item for item in items
                if getattr(getattr(item, "obj", None), "__func__", None) is not _TF_PLACEHOLDER]
