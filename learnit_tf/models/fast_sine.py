"""Sine and cosine of float32 tensors as a polynomial that XLA fuses (`sincos`).

Why: XLA's CPU backend calls a scalar sine per element (no vector sine): a 16384×256
float32 `tf.sin` costs ~31 ms of CPU time under `jit_compile=True` here, TensorFlow's own
(Eigen, vectorised) sine ~4.5 ms and its cosine as much again. The same work written as
plain multiplies, adds, a round and selects is fused by XLA into one loop: the bfloat16
product's cast, the bias add and the sine *and* cosine of those 4.2 M values in ~3.9 ms
of CPU time, against ~9.8 ms for TensorFlow's cast, bias add, sine and cosine
(the MAML step: benchmarks/precision.py).

The backward passes are clusters too (`sine_of_affine`): the first-order one (cast, the
sine's derivative multiply, the cast back to the product's dtype and the bias's sum over
the points) and its own derivative (MAML's second order). In one A/B run of the mixed
MAML step at 64² (alternating steps, CPU time, load average ~12): 352 ms with both
clusters, 364 ms with the first-order one as TensorFlow ops, 378 ms with the second-order
one as TensorFlow ops (float32: 616 ms).

A Siren's mixed path calls whole layers (`sine_layer`, and `affine_layer` for its output
layer): their weight gradients read aliases of their inputs and of the backward
cluster's output, so the two cotangents an activation collects in MAML's second order
are summed inside the clusters instead of by TensorFlow's AddN (30 bfloat16 ones a step
at 64² before), and the output layer's weight gradient is computed as (dyᵀ·x)ᵀ (oneDNN
copies a transposed 4096×256 first operand; with 3 columns the other order is 1.7×
faster). With the quadrant taken from k's integer bits (below; same values), an A/B of
the mixed step against the previous code (alternating, CPU time, load average 5–8):
356 → 348 ms at 64² (20 rounds), 2856 → 2759 ms at 178² (6 rounds).

The method (Cody–Waite reduction and the Cephes `sinf`/`cosf` minimax polynomials):
- k = round(x · 2/π), the quadrant; r = x − k·π/2 with π/2 split in three parts
  (P1 + P2 + P3, P1 and P2 with short mantissas so that k·P1 and k·P2 are exact for
  |k| below 2¹⁵ and 2¹²): r ∈ [−π/4, π/4] to a few float32 ulp;
- on r: sin r = r + r³·S(r²), cos r = 1 − r²/2 + r⁴·C(r²) with degree-2 minimax S, C
  (Cephes; relative error ~ 3e-8 on [−π/4, π/4]);
- the quadrant k mod 4 picks (sin x, cos x) = (s, c), (c, −s), (−s, −c), (−c, s)
  (from k's integer bits: bit 0 swaps, bit 1 of k and of k + 1 flip the signs).

Accuracy (tests/test_fast_sine.py, against float64 numpy): absolute error ≤ 1.2e-7
(`MAX_ERROR`, as `tf.sin`'s own ~1e-7) for |x| ≤ 8192 (`MAX_ACCURATE`), in graph mode
and under XLA. SIREN's pre-activations stay far inside: the first layer's
w0 · (x·W + b) with coordinates in [−1, 1] and w0 = 200 is a few hundred at most.
Beyond 8192, k·P2 is no longer exact: measured in graph mode 5e-7 up to 3·10⁴, 1e-6 up
to 10⁵ (tested: ≤ 2e-6), 3e-2 up to 10⁶, 0.5 up to 10⁷ (XLA, which contracts the
reduction into FMAs, stays at 1e-7 to 10⁶ and 1e-4 to 10⁷), always within [−1, 1] to
round-off; float32 itself spaces arguments 0.06 apart at 10⁶. inf and nan give nan,
like `tf.sin`.
"""

import math

import numpy as np
import tensorflow as tf

# π/2 = P1 + P2 + P3 (Cephes' DP1..DP3 of π/4, doubled): P1 and P2 have 9 and 12
# significant bits, so k·P1 and k·P2 are exact in float32 for |k| below 2¹⁵ and 2¹².
P1 = 1.5703125
P2 = 4.837512969970703125e-4
P3 = 7.54978995489188216e-8
# Minimax coefficients on [−π/4, π/4] (Cephes sinf.c / cosf.c), in r² = z.
SIN = (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)
COS = (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)
# Largest |x| of the tested accuracy bound (tests/test_fast_sine.py).
MAX_ACCURATE = 8192.0
MAX_ERROR = 1.2e-7


def sincos(x):
    """(sin x, cos x) of a float32 tensor, element-wise, from one range reduction.

    Pure TensorFlow element-wise ops (no `tf.sin`): under XLA they fuse into one loop.
    See the module docstring for the method and its accuracy.
    """
    x = tf.convert_to_tensor(x)
    if x.dtype != tf.float32:
        raise ValueError(f"sincos is written for float32 tensors, got {x.dtype.name}.")
    k = tf.round(x * (2.0 / math.pi))
    r = ((x - k * P1) - k * P2) - k * P3
    z = r * r
    s = r + r * z * ((SIN[0] * z + SIN[1]) * z + SIN[2])
    c = (1.0 - 0.5 * z) + z * z * ((COS[0] * z + COS[1]) * z + COS[2])
    # The quadrant k mod 4 from k's integer bits (two's complement: also for k < 0):
    # bit 0 swaps the polynomials, bit 1 of k (sine) and of k + 1 (cosine) flips the sign
    # (an XOR of the float's sign bit; the same values as selects on k mod 4, fewer ops).
    quadrant = tf.cast(k, tf.int32)
    odd = tf.equal(tf.bitwise.bitwise_and(quadrant, 1), 1)
    sin = _flip_sign(tf.where(odd, c, s), quadrant)  # Quadrants 2, 3.
    cos = _flip_sign(tf.where(odd, s, c), quadrant + 1)  # Quadrants 1, 2.
    return sin, cos


def _flip_sign(x, quadrant):
    """x with its sign flipped where bit 1 of int32 `quadrant` is set."""
    bit = tf.bitwise.left_shift(tf.bitwise.bitwise_and(quadrant, 2), 30)
    return tf.bitcast(tf.bitwise.bitwise_xor(tf.bitcast(x, tf.int32), bit), tf.float32)


def _sincos_of_affine(product, bias, out_dtype):
    """(sin, cos) of product + bias, product cast to bias's dtype (float32) first; the sine
    cast to `out_dtype` (bfloat16 when the next layer multiplies in bfloat16: the cast it
    would do anyway, fused here)."""
    sin, cos = sincos(tf.nn.bias_add(tf.cast(product, bias.dtype), bias))
    return tf.cast(sin, out_dtype), cos


def _affine_cotangents(d_sins, d_cos, sin, cos, product_dtype):
    """The cotangents of (product, bias) of `sine_of_affine` from those of (sin, cos):
    dz = d_sin·cos − d_cos·sin in float32, d_sin the sum of `d_sins` (the cotangents of
    a sine and of its alias, `sine_layer`: summed here, in float32, not by an AddN of
    their own); (dz cast to the product's dtype, dz summed over the rows). d_cos may be
    None (skipped)."""
    d_sin = tf.add_n([tf.cast(d, cos.dtype) for d in d_sins])
    dz = d_sin * cos
    if d_cos is not None:
        dz = dz - d_cos * tf.cast(sin, cos.dtype)
    return tf.cast(dz, product_dtype), tf.reduce_sum(dz, axis=0)


def _affine_cotangents_grad(g_products, g_bias, d_sins, d_cos, sin, cos):
    """The cotangents of (d_sin, cos), or with d_cos of (d_sin, d_cos, sin, cos), of
    `_affine_cotangents` from those of its outputs (each may be None; `g_products`: of
    the product and of its alias, summed): with gz = Σ g_products + g_bias (broadcast
    over the rows), gz·cos, gz·d_sin and −gz·sin, −gz·d_cos. The cotangent of every one
    of `d_sins` is the first (in the first one's dtype)."""
    g_products = [g for g in g_products if g is not None]
    if not g_products:
        gz = tf.zeros_like(cos) if g_bias is None else tf.broadcast_to(g_bias, tf.shape(cos))
    else:
        gz = tf.add_n([tf.cast(g, cos.dtype) for g in g_products])
        if g_bias is not None:
            gz = tf.nn.bias_add(gz, g_bias)
    g_d_sin = tf.cast(gz * cos, d_sins[0].dtype)
    g_cos = gz * tf.add_n([tf.cast(d, cos.dtype) for d in d_sins])
    if d_cos is None:
        return g_d_sin, g_cos
    return g_d_sin, -(gz * tf.cast(sin, cos.dtype)), tf.cast(-(gz * d_cos), sin.dtype), g_cos


def _compiled(fn):
    return tf.function(fn, jit_compile=True, autograph=False)


# One XLA cluster each, also inside graph-mode (`jit_compile=False`) functions: the cast,
# the bias add, the reduction, both polynomials, the quadrant selects and the sine's cast
# to the next layer's dtype fuse into one loop; the backward's casts, multiplies and the
# bias's row sum into another, and so does the second-order backward.
compiled_sincos_of_affine = _compiled(_sincos_of_affine)
_compiled_cotangents = _compiled(_affine_cotangents)
_compiled_cotangents_grad = _compiled(_affine_cotangents_grad)


def sine_of_affine(product, bias, out_dtype=None):
    """sin(product + bias) for a (rows, width) product (bfloat16 or float32) and a float32
    bias, returned in `out_dtype` (default: the bias's dtype), whose derivatives of every
    order reuse the forward pass's sine and cosine.

    Forward: one XLA cluster (`compiled_sincos_of_affine`); a bfloat16 `out_dtype` is
    the cast the next bfloat16 matmul would do (same values), fused. Backward: the
    cotangent dz = d_sin·cos − d_cos·sin of z = product + bias goes to the product cast
    to its dtype and to the bias summed over the rows, as TensorFlow's cast and bias add
    would send it, in one XLA cluster (`_cotangents`); its own gradient (MAML's second
    order) is one more cluster, and further orders are TensorFlow's derivatives of that
    cluster's plain ops. No sine or cosine is evaluated again. With a bfloat16
    `out_dtype` the term d_cos·sin (second order only) uses the bfloat16 sine. In graph
    mode a cotangent that is a constant zero (the tape's filler for an output nobody
    used, e.g. the cosine in a first-order backward pass) is skipped.
    """
    out_dtype = tf.as_dtype(out_dtype or bias.dtype)
    outputs = []  # The op's outputs as the tapes recorded them (set after the call).

    @tf.custom_gradient
    def sin_cos(product, bias):
        def grad(d_sin, d_cos):
            use_sin, use_cos = not constant_zero(d_sin), not constant_zero(d_cos)
            if not (use_sin or use_cos):
                return tf.zeros_like(product), tf.zeros_like(bias)
            sin, cos = outputs
            if not use_sin:
                d_sin = tf.zeros_like(sin)
            return _cotangents([d_sin], d_cos if use_cos else None, sin, cos, product.dtype)
        # stop_gradient: the tapes see no differentiable input of the compiled call, so
        # TensorFlow does not make it return its intermediates for a gradient of its own
        # (a dozen extra outputs of the input's size per call: without this the fast sine
        # saved nothing on the MAML step); this op's gradient is `grad`.
        return compiled_sincos_of_affine(tf.stop_gradient(product), tf.stop_gradient(bias),
                                         out_dtype), grad

    sin, cos = sin_cos(product, bias)
    outputs.extend([sin, cos])
    return sin


def sine_layer(x, kernel, bias, out_dtype=None, x_alias=None):
    """(y, y_alias): y = sin(x @ kernel + bias) (`sine_of_affine` of the product, in
    `out_dtype`, default float32) and an alias of it (the same tensor's values, for the
    next layer's weight gradient: `x_alias` of the next call; default: x itself).

    Why aliases: a layer's input x is used by its forward product and, in a gradient, by
    its weight gradient xᵀ·dz; the product's cotangent dz by x's gradient dz·kernelᵀ
    and that weight gradient. In MAML's second order both then collect two cotangents,
    which TensorFlow's tape sums with an AddN of its own (bfloat16, ~0.3 ms per 4096×256
    on this CPU, 30 a MAML step at 64²). With the weight gradient computed from aliases
    (x_alias, and dz's alias out of the backward cluster), the two cotangents reach
    this layer's backward separately and are summed inside its XLA clusters (the
    previous layer's backward for x and x_alias; the second-order cluster for dz and its
    alias). Values and first derivatives are the composition's; from the second order the
    two cotangents of a bfloat16 tensor are summed in float32 where TensorFlow's AddN
    summed them in bfloat16 (tests/test_fast_sine.py: ≤ 5.7e-3 of the largest value).
    """
    out_dtype = tf.as_dtype(out_dtype or bias.dtype)
    x_alias = x if x_alias is None else x_alias
    outputs = []  # The op's outputs as the tapes recorded them (set after the call).

    @tf.custom_gradient
    def layer(x, x_alias, kernel, bias):
        def grad(d_y, d_y_alias, d_cos):
            d_sins = [d for d in (d_y, d_y_alias) if not constant_zero(d)]
            use_cos = not constant_zero(d_cos)
            if not (d_sins or use_cos):
                return (tf.zeros_like(x), None, tf.zeros_like(kernel), tf.zeros_like(bias))
            y, _, cos = outputs
            dz, dz_alias, d_bias = _cotangents(d_sins or [tf.zeros_like(y)],
                                               d_cos if use_cos else None, y, cos,
                                               kernel.dtype, alias=True)
            return (tf.matmul(dz, kernel, transpose_b=True), None,
                    tf.matmul(x_alias, dz_alias, transpose_a=True), d_bias)
        product = tf.matmul(x, kernel)
        y, cos = compiled_sincos_of_affine(tf.stop_gradient(product), tf.stop_gradient(bias),
                                           out_dtype)
        return (y, tf.identity(y), cos), grad

    y, y_alias, cos = layer(x, x_alias, kernel, bias)
    outputs.extend([y, y_alias, cos])
    return y, y_alias


def affine_layer(x, kernel, bias, x_alias=None):
    """x @ kernel + bias for a layer with few outputs (a Siren's float32 output layer,
    after `sine_layer`), whose weight gradient reads `x_alias` (default: x itself; see
    `sine_layer`: x's two cotangents then reach the previous layer's backward cluster
    separately) and is computed as (dyᵀ·x)ᵀ: with 3 outputs, 1.7× faster on this CPU
    than xᵀ·dy (whose transposed 4096×256 first operand oneDNN copies; measured 0.19
    against 0.34 ms at 4096 rows, one thread). Same values as the Keras Dense layer.
    """
    x_alias = x if x_alias is None else x_alias
    kernel, bias = tf.convert_to_tensor(kernel), tf.convert_to_tensor(bias)  # (Variables.)

    @tf.custom_gradient
    def layer(x, x_alias, kernel, bias):
        def grad(dy):
            return (_times_transposed(dy, kernel), None, _transposed_product(dy, x_alias),
                    tf.reduce_sum(dy, axis=0))
        return tf.nn.bias_add(tf.matmul(x, kernel), bias), grad

    return layer(x, x_alias, kernel, bias)


def _transposed_product(a, b):
    """bᵀ·a as (aᵀ·b)ᵀ for a with few columns (see `affine_layer`)."""
    return tf.transpose(tf.matmul(a, b, transpose_a=True))


@tf.custom_gradient
def _times_transposed(a, b):
    """a·bᵀ for a and b with few columns, whose gradient for b, gᵀ·a, is computed as
    (aᵀ·g)ᵀ (see `affine_layer`; MAML's second order of the output layer)."""
    def grad(g):
        return tf.matmul(g, b), _transposed_product(a, g)
    return tf.matmul(a, b, transpose_b=True), grad


def _cotangents(d_sins, d_cos, sin, cos, product_dtype, alias=False):
    """`_affine_cotangents` in one XLA cluster, with its gradient (`_cotangents_grad`, one
    more cluster; TensorFlow differentiates that one's plain ops for further orders).
    With `alias`: (product's cotangent, an alias of it, bias's cotangent)."""
    n = len(d_sins)
    inputs = list(d_sins) + ([cos] if d_cos is None else [d_cos, sin, cos])

    @tf.custom_gradient
    def cotangents(*args):
        def grad(*gs):
            g_products = [None if constant_zero(g) else g for g in gs[:-1]]
            g_bias = None if constant_zero(gs[-1]) else gs[-1]
            g_d_sin, *rest = _compiled_cotangents_grad(g_products, g_bias, list(d_sins), d_cos,
                                                       sin, cos)
            return [g_d_sin if d.dtype == g_d_sin.dtype else tf.cast(g_d_sin, d.dtype)
                    for d in d_sins] + list(rest)
        held = [tf.stop_gradient(a) for a in args]
        rest = [None, None, held[n]] if d_cos is None else held[n:]
        product, bias = _compiled_cotangents(held[:n], *rest, product_dtype)
        return ((product, tf.identity(product), bias) if alias else (product, bias)), grad

    return cotangents(*inputs)


def sine_cotangent(d_sin, d_cos, sin, cos):
    """The cotangent of z from those of (sin z, cos z): d_sin·cos − d_cos·sin, written
    with the recorded sine and cosine (so its own derivatives evaluate neither again),
    a constant-zero cotangent skipped (`constant_zero`); None when both are."""
    use_sin, use_cos = not constant_zero(d_sin), not constant_zero(d_cos)
    if use_sin and use_cos:
        return d_sin * cos - d_cos * sin
    if use_sin:
        return d_sin * cos
    if use_cos:
        return -(d_cos * sin)
    return None


def constant_zero(t):
    """Whether cotangent `t` is None or, in graph mode, a constant that is all zeros.

    In eager mode every tensor has a value, so a zero there may be a differentiable
    result: nothing is skipped (results stay exact, only slower).
    """
    if t is None:
        return True
    if tf.executing_eagerly():
        return False
    value = tf.get_static_value(t)
    return value is not None and not np.any(value)
