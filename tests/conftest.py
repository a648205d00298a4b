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


#: Modules holding the suite's longest tests (each 30 s to minutes: zoo headlines
#: recomputed at 256x256, a wheel built and installed, multi-process kill-and-resume
#: runs). They run first: `pytest -n 2` hands tests out in collection order, and a long
#: test started last keeps one worker busy while the other has nothing left to do.
_LONGEST_FIRST = ("tests/test_zoo_headlines.py", "tests/test_wheel_install.py",
                  "tests/test_multi_worker.py", "tests/test_preemption.py")


def _run_order(item):
    path = item.nodeid.split("::")[0]
    return _LONGEST_FIRST.index(path) if path in _LONGEST_FIRST else len(_LONGEST_FIRST)


def pytest_collection_modifyitems(items):
    # unittest classes are collected by pytest's unittest plugin (no pycollect hook), so
    # the placeholder is dropped from the collected items.
    items[:] = sorted((item for item in items
                       if getattr(getattr(item, "obj", None), "__func__", None)
                       is not _TF_PLACEHOLDER), key=_run_order)
