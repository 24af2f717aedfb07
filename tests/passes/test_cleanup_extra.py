"""CSE, duplicate-initializer merging, no-op and pair removal (simplify_shape_ops), and the
extended constant folding of shape chains."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from passcheck import ops, rand, run_pass

pytest.importorskip("onnxruntime")
F = TensorProto.FLOAT


def _m(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, F, None) for n in outputs],
        initializer=[numpy_helper.from_array(a, n) for n, a in inits],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _i64(*v):
    return np.array(v, dtype=np.int64)


def test_cse_merges_equal_nodes_but_not_different_attributes():
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Relu", ["x"], ["b"]),
        helper.make_node("LeakyRelu", ["x"], ["c"], alpha=0.1),
        helper.make_node("LeakyRelu", ["x"], ["d"], alpha=0.2),
        helper.make_node("Sum", ["a", "b", "c", "d"], ["y"]),
    ]
    model, result = run_pass(
        "eliminate_common_subexpressions", _m(nodes, [("x", F, [2, 3])], ["y"])
    )
    assert result.stats == {"merged": 1} and ops(model).count("Relu") == 1
    assert ops(model).count("LeakyRelu") == 2


def test_cse_keeps_graph_outputs():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["x"], ["b"])]
    _, result = run_pass("eliminate_common_subexpressions", _m(nodes, [("x", F, [2])], ["a", "b"]))
    assert result.modified is False


def test_merge_initializers():
    one = np.ones(3, np.float32)
    nodes = [
        helper.make_node("Add", ["x", "k1"], ["a"]),
        helper.make_node("Mul", ["a", "k2"], ["y"]),
    ]
    proto = _m(nodes, [("x", F, [3])], ["y"], [("k1", one), ("k2", one.copy())])
    model, result = run_pass("merge_initializers", proto)
    assert result.stats == {"merged": 1} and len(model.graph.initializers) == 1
    proto = _m(nodes, [("x", F, [3])], ["y"], [("k1", one), ("k2", one * 2)])
    _, result = run_pass("merge_initializers", proto)
    assert result.modified is False


@pytest.mark.parametrize(
    "nodes,inits,expected,rule",
    [
        ([helper.make_node("Cast", ["x"], ["c"], to=F)], [], [], "cast_noop"),
        (
            [helper.make_node("Reshape", ["x", "s"], ["c"])],
            [("s", _i64(2, -1, 4))],
            [],
            "reshape_noop",
        ),
        (
            [
                helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
                helper.make_node("Transpose", ["t"], ["c"], perm=[0, 2, 1]),
            ],
            [],
            [],
            "transpose_pair",
        ),
        (
            [
                helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
                helper.make_node("Transpose", ["t"], ["c"], perm=[0, 2, 1]),
            ],
            [],
            ["Transpose"],
            "transpose_pair",
        ),
        (
            [
                helper.make_node("Unsqueeze", ["x", "ax"], ["u"]),
                helper.make_node("Squeeze", ["u", "ax"], ["c"]),
            ],
            [("ax", _i64(1))],
            [],
            "squeeze_unsqueeze",
        ),
        (
            [
                helper.make_node("Reshape", ["x", "s1"], ["r"]),
                helper.make_node("Reshape", ["r", "s2"], ["c"]),
            ],
            [("s1", _i64(6, 4)), ("s2", _i64(4, -1))],
            ["Reshape"],
            "reshape_pair",
        ),
    ],
)
def test_simplify_shape_ops(nodes, inits, expected, rule):
    nodes = [*nodes, helper.make_node("Relu", ["c"], ["y"])]
    model, result = run_pass("simplify_shape_ops", _m(nodes, [("x", F, [2, 3, 4])], ["y"], inits))
    assert ops(model) == [*expected, "Relu"] and result.stats[rule] == 1


def test_simplify_refuses_real_cast_and_reshape():
    nodes = [
        helper.make_node("Cast", ["x"], ["c"], to=TensorProto.DOUBLE),
        helper.make_node("Reshape", ["c", "s"], ["y"]),
    ]
    proto = _m(nodes, [("x", F, [2, 3, 4])], ["y"], [("s", _i64(6, 4))])
    proto.graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    _, result = run_pass("simplify_shape_ops", proto)
    assert result.modified is False


def test_simplify_keeps_output_name_when_output_would_vanish():
    nodes = [helper.make_node("Cast", ["x"], ["y"], to=F)]
    model, result = run_pass("simplify_shape_ops", _m(nodes, [("x", F, [2])], ["y"]))
    assert result.modified is False and ops(model) == ["Cast"]


def test_fold_shape_of_static_and_gather_of_symbolic_dims():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i2"], ["d"], axis=0),
        helper.make_node("Concat", ["minus1", "d"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = [("i2", _i64(2)), ("minus1", _i64(-1))]
    proto = _m(nodes, [("x", F, ["batch", "seq", 8])], ["y"], inits)
    model, result = run_pass("fold_constants", proto)
    assert ops(model) == ["Shape", "Reshape"]  # the unread Shape is left to dead-code removal
    np.testing.assert_array_equal(model.graph.nodes[1].inputs[1].const.numpy(), [-1, 8])


def test_fold_keeps_symbolic_shape_dims():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["d"], axis=0),
        helper.make_node("Concat", ["d", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = [("i0", _i64(0)), ("minus1", _i64(-1))]
    proto = _m(nodes, [("x", F, ["batch", 8])], ["y"], inits)
    _, result = run_pass("fold_constants", proto)
    assert result.modified is False


def test_fold_cast_of_initializer():
    nodes = [
        helper.make_node("Cast", ["k"], ["kf"], to=F),
        helper.make_node("Add", ["x", "kf"], ["y"]),
    ]
    proto = _m(nodes, [("x", F, [3])], ["y"], [("k", np.arange(3, dtype=np.int64))])
    model, result = run_pass("fold_constants", proto)
    assert ops(model) == ["Add"] and result.stats["folded"] == 1


def test_rand_helper_is_never_constant():
    assert np.std(rand(100)) > 0.5
