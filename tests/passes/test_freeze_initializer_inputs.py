"""freeze_initializer_inputs: IR v3 style initializer inputs become plain constants."""

from __future__ import annotations

import pytest
from onnx import helper
from passcheck import graph_model, light_model, o2_until, rand, run_pass, run_pipeline

pytest.importorskip("onnxruntime")


def _model(k_is_input: bool):
    nodes = [
        helper.make_node("Mul", ["x", "k"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["y"]),
    ]
    inputs = [("x", [2, 3]), ("b", [3])] + ([("k", [3])] if k_is_input else [])
    return graph_model(nodes, inputs, ["y"], [("k", rand(3, seed=1))])


def test_initializer_listed_as_input_is_frozen():
    model, result = run_pass("freeze_initializer_inputs", _model(k_is_input=True))
    assert result.stats == {"frozen": 1}
    assert [v.name for v in model.graph.inputs] == ["x", "b"]
    assert model.ir_version >= 4 and "k" in model.graph.initializers


def test_plain_inputs_and_initializers_are_left_alone():
    model, result = run_pass("freeze_initializer_inputs", _model(k_is_input=False))
    assert result.modified is False and result.stats == {"frozen": 0}
    assert [v.name for v in model.graph.inputs] == ["x", "b"]


def test_squeezenet_weights_frozen():
    path, feeds = light_model("squeezenet")
    model, result = run_pipeline(path, o2_until("freeze_initializer_inputs"), feeds, rtol=0.0)
    assert result.stats == {"frozen": 52}
    assert [v.name for v in model.graph.inputs] == ["data_0"]
