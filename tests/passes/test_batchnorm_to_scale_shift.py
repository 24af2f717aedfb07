"""batchnorm_to_scale_shift: a standalone inference BatchNormalization becomes Mul + Add."""

from __future__ import annotations

import pytest
from onnx import helper
from passcheck import bn_params, graph_model, light_model, ops, run_pass, run_pipeline

from infopt.passes.pipelines import O1

pytest.importorskip("onnxruntime")
BN = ["s", "t", "mu", "var"]


def test_standalone_bn_to_scale_shift():
    nodes = [helper.make_node("BatchNormalization", ["x", *BN], ["y"])]
    proto = graph_model(nodes, [("x", [2, 8, 3, 3])], ["y"], bn_params())
    model, result = run_pass("batchnorm_to_scale_shift", proto)
    assert ops(model) == ["Mul", "Add"]
    assert result.stats["applied"] == 1 and result.stats["batchnorm_scale_shift"] == 1
    scale = model.graph.nodes[0].inputs[1].const.numpy()
    assert scale.shape == (8, 1, 1)


def test_refuses_non_constant_statistics():
    nodes = [helper.make_node("BatchNormalization", ["x", *BN], ["y"])]
    inits = [i for i in bn_params() if i[0] != "var"]
    proto = graph_model(nodes, [("x", [2, 8, 3, 3]), ("var", [8])], ["y"], inits)
    model, result = run_pass("batchnorm_to_scale_shift", proto)
    assert result.modified is False and ops(model) == ["BatchNormalization"]


def test_refuses_unknown_rank():
    nodes = [helper.make_node("BatchNormalization", ["x", *BN], ["y"])]
    proto = graph_model(nodes, [("x", None)], ["y"], bn_params())
    # no shape to draw feeds from: structure and invariants only
    model, result = run_pass("batchnorm_to_scale_shift", proto, seeds=())
    assert result.modified is False and ops(model) == ["BatchNormalization"]


def test_shufflenet_every_bn_becomes_scale_shift():
    path, feeds = light_model("shufflenet")
    passes = [*O1, "infer_shapes", "batchnorm_to_scale_shift"]
    model, result = run_pipeline(path, passes, feeds, rtol=1e-4)
    assert result.stats["applied"] == 49 and "BatchNormalization" not in ops(model)
