import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TF tracks CPU allocator statistics (get_memory_info, used by the memory tests) only
# with the BFC allocator, which is the default on some CPUs and not on others.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
