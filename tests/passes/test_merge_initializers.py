"""merge_initializers: equal constants (dtype, shape and bytes) become one initializer."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from passcheck import graph_model, hf_model, o2_until, rand, run_pass, run_pipeline

pytest.importorskip("onnxruntime")

NODES = [
    helper.make_node("Add", ["x", "k1"], ["a"]),
    helper.make_node("Mul", ["a", "k2"], ["y"]),
]


def test_merge_initializers():
    v = rand(3, seed=4)
    proto = graph_model(NODES, [("x", [3])], ["y"], [("k1", v), ("k2", v.copy())])
    model, result = run_pass("merge_initializers", proto, rtol=0.0)
    assert result.stats == {"merged": 1} and len(model.graph.initializers) == 1
    add, mul = model.graph.nodes
    assert add.inputs[1] is mul.inputs[1]
    proto = graph_model(NODES, [("x", [3])], ["y"], [("k1", v), ("k2", v * 2)])
    _, result = run_pass("merge_initializers", proto)
    assert result.modified is False


def test_same_bytes_different_dtype_or_shape_stay_apart():
    v = rand(4, seed=5)
    inits = [("k1", v), ("k2", v.view(np.int32))]
    nodes = [
        helper.make_node("Add", ["x", "k1"], ["a"]),
        helper.make_node("Cast", ["k2"], ["c"], to=1),
        helper.make_node("Mul", ["a", "c"], ["m"]),
        helper.make_node("Mul", ["m", "k3"], ["y"]),
    ]
    inits.append(("k3", v.reshape(4, 1)))
    _, result = run_pass("merge_initializers", graph_model(nodes, [("x", [4])], ["y"], inits))
    assert result.modified is False


def test_overridable_initializer_is_not_merged():
    v = rand(3, seed=6)
    proto = graph_model(NODES, [("x", [3]), ("k2", [3])], ["y"], [("k1", v), ("k2", v.copy())])
    _, result = run_pass("merge_initializers", proto)
    assert result.modified is False


def test_gpt2_repeated_constants_merge():
    path, feeds = hf_model("gpt2")
    _, result = run_pipeline(path, o2_until("merge_initializers"), feeds, rtol=1e-6)
    assert result.stats == {"merged": 214}
