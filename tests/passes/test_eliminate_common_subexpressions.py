"""eliminate_common_subexpressions: equal nodes on equal inputs merge; random ops, different
attributes and graph outputs do not."""

from __future__ import annotations

import pytest
from onnx import helper
from passcheck import graph_model, hf_model, o2_until, ops, run_pass, run_pipeline

import infopt
from infopt.ir import serde
from infopt.passes import create

pytest.importorskip("onnxruntime")


def test_cse_merges_equal_nodes_but_not_different_attributes():
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Relu", ["x"], ["b"]),
        helper.make_node("LeakyRelu", ["x"], ["c"], alpha=0.1),
        helper.make_node("LeakyRelu", ["x"], ["d"], alpha=0.2),
        helper.make_node("Sum", ["a", "b", "c", "d"], ["y"]),
    ]
    model, result = run_pass(
        "eliminate_common_subexpressions", graph_model(nodes, [("x", [2, 3])], ["y"]), rtol=0.0
    )
    assert result.stats == {"merged": 1} and ops(model).count("Relu") == 1
    assert ops(model).count("LeakyRelu") == 2


def test_cse_merges_whole_chains_in_one_run():
    nodes = [
        helper.make_node("Relu", ["x"], ["a1"]),
        helper.make_node("Neg", ["a1"], ["b1"]),
        helper.make_node("Relu", ["x"], ["a2"]),
        helper.make_node("Neg", ["a2"], ["b2"]),
        helper.make_node("Mul", ["b1", "b2"], ["y"]),
    ]
    proto = graph_model(nodes, [("x", [5])], ["y"])
    model, result = run_pass("eliminate_common_subexpressions", proto, rtol=0.0)
    assert result.stats == {"merged": 2} and ops(model) == ["Relu", "Neg", "Mul"]


def test_cse_keeps_graph_outputs():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["x"], ["b"])]
    proto = graph_model(nodes, [("x", [2])], ["a", "b"])
    _, result = run_pass("eliminate_common_subexpressions", proto)
    assert result.modified is False


def test_cse_leaves_random_ops_alone():
    nodes = [
        helper.make_node("RandomUniformLike", ["x"], ["r1"], seed=1.0),
        helper.make_node("RandomUniformLike", ["x"], ["r2"], seed=1.0),
        helper.make_node("Add", ["r1", "r2"], ["y"]),
    ]
    proto = graph_model(nodes, [("x", [4])], ["y"])
    # outputs are random: no comparison with onnxruntime, only the structure and invariants
    model, result = run_pass("eliminate_common_subexpressions", proto, seeds=())
    assert result.modified is False and ops(model).count("RandomUniformLike") == 2


def test_modified_is_honest_when_an_unnamed_output_blocks_the_merge():
    nodes = [
        helper.make_node("MaxPool", ["x"], ["a", ""], kernel_shape=[2]),
        helper.make_node("MaxPool", ["x"], ["b", "idx"], kernel_shape=[2]),
        helper.make_node("Cast", ["idx"], ["fi"], to=1),
        helper.make_node("Add", ["a", "b"], ["s"]),
        helper.make_node("Add", ["s", "fi"], ["y"]),
    ]
    model = infopt.load(graph_model(nodes, [("x", [1, 2, 6])], ["y"]))
    create("infer_shapes").run(model)
    before = serde.to_bytes(model)
    result = create("eliminate_common_subexpressions").run(model)
    assert result.modified == (serde.to_bytes(model) != before)


def test_gpt2_repeated_shape_computations_merge():
    path, feeds = hf_model("gpt2")
    _, result = run_pipeline(path, o2_until("eliminate_common_subexpressions"), feeds, rtol=1e-6)
    assert result.stats == {"merged": 32}
