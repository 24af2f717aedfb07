"""eliminate_dead_code: unread nodes and initializers go; graph inputs and outputs stay."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from passcheck import graph_model, hf_model, o2_until, ops, rand, run_pass, run_pipeline

import infopt

pytest.importorskip("onnxruntime")


def test_dead_code_elimination():
    nodes = [
        helper.make_node("Relu", ["x"], ["y"]),
        helper.make_node("Neg", ["x"], ["unused"]),
        helper.make_node("Exp", ["unused"], ["unused2"]),
    ]
    proto = graph_model(nodes, [("x", [3])], ["y"], [("lonely", rand(3, seed=3))])
    model, result = run_pass("eliminate_dead_code", proto, rtol=0.0)
    assert result.stats == {"nodes_removed": 2, "initializers_removed": 1, "functions_removed": 0}
    assert ops(model) == ["Relu"]


def test_dead_code_keeps_everything_live():
    proto = graph_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [3])], ["y"])
    _, result = run_pass("eliminate_dead_code", proto)
    assert result.modified is False


def test_keeps_unused_graph_input_and_a_node_with_one_live_output():
    nodes = [helper.make_node("Split", ["x"], ["a", "b"], axis=0, num_outputs=2)]
    proto = graph_model(nodes, [("x", [4]), ("unused_input", [2])], ["a"], opset=18)
    model, result = run_pass("eliminate_dead_code", proto)
    assert result.modified is False
    assert [v.name for v in model.graph.inputs] == ["x", "unused_input"]


def test_constant_graph_output_is_not_dead():
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    k = np.arange(1, 4, dtype=np.float32)
    proto = graph_model(nodes, [("x", [3])], ["y", "k"], [("k", k)])
    _, result = run_pass("eliminate_dead_code", proto)
    assert result.modified is False


def test_gpt2_after_cleanup():
    path, feeds = hf_model("gpt2")
    model, result = run_pipeline(path, o2_until("eliminate_dead_code"), feeds, rtol=1e-6)
    assert result.stats == {"nodes_removed": 47, "initializers_removed": 15, "functions_removed": 0}


def test_drops_infopt_functions_no_node_calls():
    """A rewrite that replaces an infopt op (FusedConvRelu -> NchwcConv*) leaves its
    definition behind; a function of another domain is the model's own and stays."""
    from infopt.ir import Function, Graph
    from infopt.ops import ensure_function

    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    model, _ = run_pass("eliminate_dead_code", graph_model(nodes, [("x", [3])], ["y"]))
    ensure_function(model, "FusedConvRelu")
    model.functions.append(Function("custom", "F", ["X"], ["Y"], Graph("F")))
    result = infopt.passes.create("eliminate_dead_code").run(model)
    assert result.stats["functions_removed"] == 1
    assert [(f.domain, f.name) for f in model.functions] == [("custom", "F")]
