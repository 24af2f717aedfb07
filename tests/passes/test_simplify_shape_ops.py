"""simplify_shape_ops: no-op Cast/Reshape and cancelling Transpose, Reshape and
Squeeze/Unsqueeze pairs; each rule counted, each refusal tested."""

from __future__ import annotations

import numpy as np
import onnx.parser
import pytest
from onnx import TensorProto, helper
from passcheck import graph_model, hf_model, o2_until, ops, run_pass, run_pipeline

import infopt
from infopt.passes import create

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
    # the no-op Reshape and Squeeze/Unsqueeze pairs are gone already: resolve_dynamic_shapes
    # (earlier in -O1) proves the Reshape is the identity and folds the squeezed shape values
    assert applied == {"applied": 8, "cast_noop": 8, "unsqueeze_composed": 5}


def _parse(text: str, opset: int = 17) -> onnx.ModelProto:
    return onnx.parser.parse_model(f'<ir_version: 8, opset_import: ["" : {opset}]>\n' + text)


def test_unsqueeze_chain_with_two_readers_composes():
    # dynamo's causal-mask export: one Unsqueeze feeding two more
    proto = _parse(
        """
        g (float[5] x) => (float[1, 1, 5, 1] a, float[1, 1, 1, 5] b) {
            a0 = Constant<value = int64[2] {0, 1}>()
            a1 = Constant<value = int64[1] {-1}>()
            a2 = Constant<value = int64[1] {2}>()
            m = Unsqueeze(x, a0)
            a = Unsqueeze(m, a1)
            b = Unsqueeze(m, a2)
        }
        """
    )
    model, result = run_pass("simplify_shape_ops", proto, before=("fold_constants", "infer_shapes"))
    assert result.stats["unsqueeze_composed"] == 2
    assert ops(model) == ["Unsqueeze", "Unsqueeze"]
    axes = sorted(n.inputs[1].const.numpy().tolist() for n in model.graph.nodes)
    assert axes == [[0, 1, 2], [0, 1, 3]]


def test_opset11_attribute_axes_compose():
    proto = _parse(
        """
        g (float[3, 4] x) => (float[3, 1, 4, 1] y) {
            m = Unsqueeze<axes = [1]>(x)
            y = Unsqueeze<axes = [3]>(m)
        }
        """,
        opset=11,
    )
    model, result = run_pass("simplify_shape_ops", proto)
    assert result.stats["unsqueeze_composed"] == 1
    assert len(model.graph.nodes) == 1 and model.graph.nodes[0].attr("axes") == [1, 3]


def test_unsqueeze_with_another_reader_stays():
    proto = _parse(
        """
        g (float[5] x) => (float[1, 5, 1] a, float[1, 5] m) {
            a0 = Constant<value = int64[1] {0}>()
            a1 = Constant<value = int64[1] {2}>()
            m = Unsqueeze(x, a0)
            a = Unsqueeze(m, a1)
        }
        """
    )
    model = infopt.load(proto)
    for p in ("fold_constants", "infer_shapes"):
        create(p).run(model)
    assert create("simplify_shape_ops").run(model).modified is False
