"""remove_identity: Identity and inference-mode Dropout go; the interface keeps its names."""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper
from passcheck import graph_model, light_model, o2_until, ops, run_pass, run_pipeline

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
