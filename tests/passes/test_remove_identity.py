"""remove_identity: Identity, inference-mode Dropout and neutral-constant ops (x*1, x/1, x-0,
And(x, True)) go; the interface keeps its names."""

from __future__ import annotations

import numpy as np
import onnx.parser
import pytest
from onnx import TensorProto, helper, numpy_helper
from passcheck import graph_model, light_model, o2_until, ops, run_pass, run_pipeline

import infopt
from infopt.passes import create

pytest.importorskip("onnxruntime")


def test_remove_identity_and_dropout_keeps_output_names():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Dropout", ["r"], ["d"]),
        helper.make_node("Identity", ["d"], ["y"]),
    ]
    model, result = run_pass(
        "remove_identity", graph_model(nodes, [("x", [3, 5])], ["y"]), rtol=0.0
    )
    assert result.stats["removed"] == 2
    assert ops(model) == ["Relu"]
    assert model.graph.outputs[0].name == "y"


def test_identity_with_several_readers():
    nodes = [
        helper.make_node("Identity", ["x"], ["i"]),
        helper.make_node("Relu", ["i"], ["a"]),
        helper.make_node("Neg", ["i"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    model, result = run_pass("remove_identity", graph_model(nodes, [("x", [4])], ["y"]), rtol=0.0)
    assert result.stats == {"removed": 1} and ops(model) == ["Relu", "Neg", "Add"]
    assert all(n.inputs[0].name == "x" for n in model.graph.nodes[:2])


def test_remove_identity_refuses_dropout_with_used_mask():
    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"])]
    proto = graph_model(nodes, [("x", [3])], ["d", ("mask", TensorProto.BOOL)])
    _, result = run_pass("remove_identity", proto)
    assert result.modified is False


def test_identity_between_graph_input_and_output_stays():
    proto = graph_model([helper.make_node("Identity", ["x"], ["y"])], [("x", [2])], ["y"])
    _, result = run_pass("remove_identity", proto)
    assert result.modified is False


def test_identity_between_two_graph_outputs_stays():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["r"], ["y"])]
    model, result = run_pass("remove_identity", graph_model(nodes, [("x", [2])], ["r", "y"]))
    assert result.modified is False and ops(model) == ["Relu", "Identity"]


def test_squeezenet_dropout_removed():
    path, feeds = light_model("squeezenet")
    model, result = run_pipeline(path, o2_until("remove_identity"), feeds, rtol=0.0)
    assert result.stats == {"removed": 1} and "Dropout" not in ops(model)


def _parse(text: str, inits=()) -> onnx.ModelProto:
    proto = onnx.parser.parse_model('<ir_version: 8, opset_import: ["" : 17]>\n' + text)
    proto.graph.initializer.extend(inits)
    return proto


def test_neutral_constants_removed():
    proto = _parse(
        """
        g (float[2, 3] x, bool[2, 3] m) => (float[2, 3] y, bool[2, 3] k) {
            a = Mul(one, x)
            b = Div(a, one)
            c = Sub(b, zero)
            y = Relu(c)
            k = And(m, yes)
        }
        """,
        [
            numpy_helper.from_array(np.ones((1, 3), np.float32), "one"),
            numpy_helper.from_array(np.zeros((), np.float32), "zero"),
            numpy_helper.from_array(np.ones((2, 3), bool), "yes"),
        ],
    )
    # k = And(m, True) is a graph output read straight from a graph input: it keeps its node
    model, result = run_pass("remove_identity", proto)
    assert result.stats["removed"] == 3
    assert ops(model) == ["Relu", "And"]


def test_constants_that_broadcast_or_differ_stay():
    proto = _parse(
        """
        g (float[3] x) => (float[2, 3] y, float[3] z, float[3] w) {
            y = Mul(x, ones23)
            z = Mul(x, almost)
            w = Add(x, zero)
        }
        """,
        [
            numpy_helper.from_array(np.ones((2, 3), np.float32), "ones23"),
            numpy_helper.from_array(np.array([1, 1, 0.5], np.float32), "almost"),
            # float x + 0 turns -0.0 into +0.0: not an identity
            numpy_helper.from_array(np.zeros((), np.float32), "zero"),
        ],
    )
    model = infopt.load(proto)
    create("infer_shapes").run(model)
    assert create("remove_identity").run(model).modified is False
