"""Counting the matmul FLOPs of a traced step, for achieved-FLOP/s figures.

Coordinate networks spend nearly all their arithmetic in dense matmuls (a SIREN
256×5 layer does 2·256 multiply-adds per activation for one sine), so the matmul
count of a compiled step, divided by its time, is its achieved FLOP/s; the
benchmarks compare it with the machine's own large-matmul peak measured in the
same run. The count walks the step's TensorFlow graph, including the bodies of
`tf.while_loop`s (times their trip count, read from the loop's condition) and
called functions.

Example:

>>> import tensorflow as tf
>>> f = tf.function(lambda a, b: tf.matmul(a, b))
>>> matmul_flops(f.get_concrete_function(tf.TensorSpec((4, 3)), tf.TensorSpec((3, 5))))
120
"""

import tensorflow as tf

_MATMULS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
_CALLS = ("PartitionedCall", "StatefulPartitionedCall")
_WHILES = ("While", "StatelessWhile")


def _static_dims(tensor, op):
    dims = tensor.shape.as_list() if tensor.shape.rank is not None else None
    if dims is None or None in dims:
        raise ValueError(f"matmul_flops needs static shapes; op {op.name!r} has input "
                         f"shape {tensor.shape}.")
    return dims


def _matmul_flops(op):
    a = _static_dims(op.inputs[0], op)
    b = _static_dims(op.inputs[1], op)
    if op.type == "MatMul":
        m, k = (a[1], a[0]) if op.get_attr("transpose_a") else (a[0], a[1])
        n = b[0] if op.get_attr("transpose_b") else b[1]
        return 2 * m * n * k
    adj_x, adj_y = op.get_attr("adj_x"), op.get_attr("adj_y")
    m, k = (a[-1], a[-2]) if adj_x else (a[-2], a[-1])
    n = b[-2] if adj_y else b[-1]
    batch = 1
    for d in (a[:-2] if len(a) >= len(b) else b[:-2]):
        batch *= d
    return 2 * batch * m * n * k


def _trip_count(op, graph):
    """Iterations of a while op whose condition is `counter < constant`."""
    cond = graph._get_function(op.get_attr("cond").name).graph  # pylint: disable=protected-access
    for cond_op in cond.get_operations():
        if cond_op.type != "Less":
            continue
        counter, bound = cond_op.inputs
        bound = tf.get_static_value(bound)
        index = [i for i, t in enumerate(cond.inputs) if t is counter]
        if counter.op.type != "Placeholder" or bound is None or not index:
            continue
        start = tf.get_static_value(op.inputs[index[0]])
        if start is not None:
            return max(int(bound) - int(start), 0)
    raise ValueError(f"Cannot read the trip count of while loop {op.name!r}: its condition "
                     "is not `counter < constant` with a constant start.")


def _graph_flops(graph, root):
    total = 0
    for op in graph.get_operations():
        if op.type in _MATMULS:
            total += _matmul_flops(op)
        elif op.type in _CALLS:
            total += _graph_flops(root._get_function(op.get_attr("f").name).graph, root)  # pylint: disable=protected-access
        elif op.type in _WHILES:
            body = root._get_function(op.get_attr("body").name).graph  # pylint: disable=protected-access
            total += _trip_count(op, root) * _graph_flops(body, root)
    return total


def matmul_flops(concrete_function):
    """Floating-point operations (2 per multiply-add) of every matmul a traced function runs.

    Args:
        concrete_function: a `tf.function`'s concrete function (all shapes static).

    Returns:
        int, the FLOPs of one call.

    Raises:
        ValueError: if a matmul has a dynamic shape or a loop's trip count is not static.
    """
    graph = concrete_function.graph
    return _graph_flops(graph, graph)
