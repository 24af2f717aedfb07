"""simplify_shape_ops: no-op Cast/Reshape and cancelling Transpose, Reshape and
Squeeze/Unsqueeze pairs; each rule counted, each refusal tested."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from passcheck import graph_model, hf_model, o2_until, ops, run_pass, run_pipeline

pytest.importorskip("onnxruntime")
F = TensorProto.FLOAT


def _i64(*v):
    return np.array(v, dtype=np.int64)


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
    proto = graph_model(nodes, [("x", [2, 3, 4])], ["y"], inits)
    model, result = run_pass("simplify_shape_ops", proto, rtol=0.0)
    assert ops(model) == [*expected, "Relu"] and result.stats[rule] == 1
    assert result.stats["applied"] == 1


def test_unsqueeze_of_squeeze_cancels():
    nodes = [
        helper.make_node("Squeeze", ["x", "ax"], ["s"]),
        helper.make_node("Unsqueeze", ["s", "ax"], ["c"]),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    proto = graph_model(nodes, [("x", [2, 1, 4])], ["y"], [("ax", _i64(-2))])
    model, result = run_pass("simplify_shape_ops", proto, rtol=0.0)
    assert ops(model) == ["Relu"] and result.stats["unsqueeze_squeeze"] == 1


def test_simplify_refuses_real_cast_and_reshape():
    nodes = [
        helper.make_node("Cast", ["x"], ["c"], to=TensorProto.DOUBLE),
        helper.make_node("Reshape", ["c", "s"], ["y"]),
    ]
    proto = graph_model(nodes, [("x", [2, 3, 4])], [("y", TensorProto.DOUBLE)], [("s", _i64(6, 4))])
    _, result = run_pass("simplify_shape_ops", proto)
    assert result.modified is False


def test_simplify_keeps_output_name_when_output_would_vanish():
    nodes = [helper.make_node("Cast", ["x"], ["y"], to=F)]
    model, result = run_pass("simplify_shape_ops", graph_model(nodes, [("x", [2])], ["y"]))
    assert result.modified is False and ops(model) == ["Cast"]


@pytest.mark.parametrize(
    "nodes,inits,why",
    [
        (
            [
                helper.make_node("Reshape", ["x", "s1"], ["r"]),
                helper.make_node("Reshape", ["r", "s2"], ["c"]),
            ],
            [("s1", _i64(6, 4)), ("s2", _i64(0, 2, 2))],
            "outer shape copies a dim (0) of the inner Reshape's output",
        ),
        (
            [
                helper.make_node("Unsqueeze", ["x", "a1"], ["u"]),
                helper.make_node("Squeeze", ["u", "a2"], ["c"]),
            ],
            [("a1", _i64(0, 3)), ("a2", _i64(0))],
            "different axes",
        ),
        (
            [helper.make_node("Reshape", ["x", "s"], ["c"])],
            [("s", _i64(3, 2, 4))],
            "same rank, different dims",
        ),
    ],
)
def test_simplify_refuses_near_misses(nodes, inits, why):
    nodes = [*nodes, helper.make_node("Relu", ["c"], ["y"])]
    proto = graph_model(nodes, [("x", [2, 3, 4])], ["y"], inits)
    _, result = run_pass("simplify_shape_ops", proto)
    assert result.modified is False, why


def test_non_constant_reshape_shape_is_left_alone():
    nodes = [helper.make_node("Reshape", ["x", "s"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    proto = graph_model(nodes, [("x", [2, 3]), ("s", [2], TensorProto.INT64)], ["y"])
    model, result = run_pass("simplify_shape_ops", proto, seeds=())
    assert result.modified is False and ops(model) == ["Reshape", "Relu"]


def test_gpt2_noop_casts_and_reshapes():
    path, feeds = hf_model("gpt2")
    _, result = run_pipeline(path, o2_until("simplify_shape_ops"), feeds, rtol=1e-6)
    applied = {k: v for k, v in result.stats.items() if k not in ("attempted", "failed")}
    assert applied == {"applied": 11, "cast_noop": 8, "reshape_noop": 1, "unsqueeze_squeeze": 2}
