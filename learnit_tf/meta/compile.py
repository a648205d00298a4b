"""When to compile steps with XLA.

Measured on the 2-core CPU this project develops on (benchmarks/meta_step.py,
SIREN 256×5, 64×64 grid, meta-batch 3, K = 2): TensorFlow's graph mode (oneDNN
kernels) runs a MAML outer step 2.1× and a Reptile step 2.4× faster than the same
step under XLA, and a test-time fitting step 2.5× faster. XLA is what GPUs and TPUs
want (TPUs require it). So `jit_compile="auto"`, the library default, compiles with
XLA when an accelerator is visible and uses graph mode on CPU-only machines; pass
True or False to force either.
"""

import tensorflow as tf

AUTO = "auto"


def resolve_jit_compile(jit_compile=AUTO):
    """True/False for `tf.function(jit_compile=...)` from True, False or "auto"."""
    if jit_compile == AUTO:
        return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
    if not isinstance(jit_compile, bool):
        raise ValueError(f"jit_compile must be True, False or 'auto', got {jit_compile!r}.")
    return jit_compile
