"""When to compile steps with XLA, and when to run them in mixed precision.

Measured on the 2-core CPU this project develops on (benchmarks/meta_step.py,
SIREN 256×5, 64×64 grid, meta-batch 3, K = 2): TensorFlow's graph mode (oneDNN
kernels) runs a MAML outer step 2.1× and a Reptile step 2.4× faster than the same
step under XLA, and a test-time fitting step 2.5× faster. XLA is what GPUs and TPUs
want (TPUs require it). So `jit_compile="auto"`, the library default, compiles with
XLA when an accelerator is visible and uses graph mode on CPU-only machines; pass
True or False to force either.

Mixed precision (bfloat16 hidden matmuls of a SIREN, float32 weights and sine): pays
where the hardware multiplies bfloat16 natively — x86 CPUs with AVX512-BF16 or AMX
(the `/proc/cpuinfo` flags `avx512_bf16`, `amx_bf16`), NVIDIA GPUs of compute
capability ≥ 8.0, TPUs. `resolve_mixed_precision("auto")` says True there and
records why (`mixed_precision_record`, written into a meta-trained init's metadata).
Measured in benchmarks/precision.py; elsewhere bfloat16 is emulated and slower.
"""

import dataclasses
import os

import tensorflow as tf

AUTO = "auto"


def resolve_jit_compile(jit_compile=AUTO):
    """True/False for `tf.function(jit_compile=...)` from True, False or "auto"."""
    if jit_compile == AUTO:
        return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
    if not isinstance(jit_compile, bool):
        raise ValueError(f"jit_compile must be True, False or 'auto', got {jit_compile!r}.")
    return jit_compile


#: /proc/cpuinfo flags of x86 bfloat16 matrix instructions (Zen 4 / Cooper Lake; AMX).
CPU_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = "/proc/cpuinfo"


@dataclasses.dataclass(frozen=True)
class Bfloat16Hardware:
    """Whether this machine multiplies bfloat16 natively, and the evidence."""

    available: bool
    reason: str


def cpu_bfloat16_flags(cpuinfo=None):
    """The bfloat16 matrix flags (`CPU_BFLOAT16_FLAGS`) a Linux cpuinfo file lists.

    `cpuinfo`: the file to read (default `CPUINFO`, looked up at call time). An
    unreadable or absent file (macOS, Windows, sandboxes) lists none.
    """
    cpuinfo = CPUINFO if cpuinfo is None else cpuinfo
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return ()
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return tuple(flag for flag in CPU_BFLOAT16_FLAGS if flag in flags)


def bfloat16_hardware(cpuinfo=None):
    """A `Bfloat16Hardware` for this machine: TPU, GPU compute capability, CPU flags."""
    if tf.config.list_logical_devices("TPU"):
        return Bfloat16Hardware(True, "TPU")
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capabilities = [tf.config.experimental.get_device_details(g).get("compute_capability")
                        for g in gpus]
        if all(c is not None and tuple(c) >= (8, 0) for c in capabilities):
            return Bfloat16Hardware(True, f"GPU compute capability {capabilities[0]}")
        return Bfloat16Hardware(False, f"GPU compute capability {capabilities} < (8, 0)")
    flags = cpu_bfloat16_flags(cpuinfo)
    if flags:
        return Bfloat16Hardware(True, "CPU flags " + " ".join(flags))
    return Bfloat16Hardware(False, f"no CPU flag {' or '.join(CPU_BFLOAT16_FLAGS)} in "
                                   f"{os.fspath(CPUINFO if cpuinfo is None else cpuinfo)}")


def resolve_mixed_precision(mixed_precision=AUTO, cpuinfo=None):
    """True/False from True, False or "auto" (True where `bfloat16_hardware` finds it)."""
    if mixed_precision == AUTO:
        return bfloat16_hardware(cpuinfo).available
    if not isinstance(mixed_precision, bool):
        raise ValueError(f"mixed_precision must be True, False or 'auto', got "
                         f"{mixed_precision!r}.")
    return mixed_precision


def mixed_precision_record(requested, used, cpuinfo=None):
    """JSON-ready record of a run's precision for an init's metadata.

    `requested`: True, False or "auto" (what the run was asked); `used`: whether its
    steps ran bfloat16 hidden matmuls (False also when the model has none, e.g. a
    Fourier-feature MLP).
    """
    hardware = bfloat16_hardware(cpuinfo)
    return {"matmul_dtype": "bfloat16" if used else "float32", "weights_dtype": "float32",
            "requested": requested, "bfloat16_hardware": hardware.available,
            "hardware_evidence": hardware.reason}
