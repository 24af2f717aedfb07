"""fuse_batchnorm: BatchNormalization (and per-channel Mul/Add constants) folded into the Conv,
Gemm or 2-D MatMul before it."""

from __future__ import annotations

import pytest
from onnx import helper
from passcheck import (
    bn_params,
    graph_model,
    light_model,
    o2_until,
    ops,
    rand,
    run_pass,
    run_pipeline,
)

from infopt.ir import model_to_proto

pytest.importorskip("onnxruntime")
BN = ["s", "t", "mu", "var"]


def _conv_bn(extra_outputs=(), stats_as_input=False, act=None):
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", *BN], ["n"], epsilon=1e-3),
    ]
    out = "n"
    if act:
        nodes.append(helper.make_node(act, ["n"], ["y"]))
        out = "y"
    inits = [("w", rand(8, 3, 3, 3, seed=0, scale=0.3)), ("b", rand(8, seed=4))] + bn_params()
    inputs = [("x", [1, 3, 8, 8])]
    if stats_as_input:
        inits = [i for i in inits if i[0] != "mu"]
        inputs.append(("mu", [8]))
    return graph_model(nodes, inputs, [out, *extra_outputs], inits)


def test_conv_bn_folds_into_conv_then_relu_fuses():
    model, result = run_pass("fuse_batchnorm", _conv_bn(act="Relu"))
    assert result.stats["conv_bn"] == 1 and result.stats["applied"] == 1
    assert ops(model) == ["Conv", "Relu"]
    model, result = run_pass("fuse_conv_activation", model_to_proto(model))
    assert ops(model) == ["infopt.FusedConvRelu"]


def test_conv_bn_refuses_second_user_and_non_constant_stats():
    model, result = run_pass("fuse_batchnorm", _conv_bn(extra_outputs=["c"]))
    assert result.modified is False
    model, result = run_pass("fuse_batchnorm", _conv_bn(stats_as_input=True))
    assert result.modified is False


def test_gemm_bn_and_matmul_bn():
    for op, kw, rule in (("Gemm", {"transB": 1}, "gemm_bn"), ("MatMul", {}, "matmul_bn")):
        w = rand(8, 5, seed=2) if op == "Gemm" else rand(5, 8, seed=2)
        nodes = [
            helper.make_node(op, ["x", "w"], ["g"], **kw),
            helper.make_node("BatchNormalization", ["g", *BN], ["y"]),
        ]
        proto = graph_model(nodes, [("x", [4, 5])], ["y"], [("w", w)] + bn_params())
        model, result = run_pass("fuse_batchnorm", proto)
        assert result.stats["applied"] == 1 and result.stats[rule] == 1
        assert "BatchNormalization" not in ops(model)


def test_matmul_bn_refuses_3d_activations():
    # BN normalizes axis 1; on a 3-D MatMul output that is not the weight's output axis
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["g"]),
        helper.make_node("BatchNormalization", ["g", *BN], ["y"]),
    ]
    inits = [("w", rand(5, 6, seed=2))] + bn_params(c=8)
    proto = graph_model(nodes, [("x", [2, 8, 5])], ["y"], inits)
    model, result = run_pass("fuse_batchnorm", proto)
    assert result.modified is False and ops(model) == ["MatMul", "BatchNormalization"]


def test_conv_mul_add_channel_constants_fold():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Mul", ["c", "k"], ["m"]),
        helper.make_node("Add", ["m", "d"], ["y"]),
    ]
    inits = [("w", rand(4, 3, 1, 1)), ("k", rand(4, 1, 1, seed=3)), ("d", rand(1, 4, 1, 1))]
    proto = graph_model(nodes, [("x", [1, 3, 5, 5])], ["y"], inits)
    model, result = run_pass("fuse_batchnorm", proto)
    assert result.stats["conv_mul"] == 1 and result.stats["conv_add_bias"] == 1
    assert result.stats["applied"] == 2 and ops(model) == ["Conv"]


def test_conv_mul_refuses_a_non_channel_constant():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Mul", ["c", "k"], ["y"]),
    ]
    inits = [("w", rand(4, 3, 1, 1)), ("k", rand(1, 4, 5, 1, seed=3))]  # varies along H
    proto = graph_model(nodes, [("x", [1, 3, 5, 5])], ["y"], inits)
    _, result = run_pass("fuse_batchnorm", proto)
    assert result.modified is False


def test_shufflenet_every_bn_folds():
    path, feeds = light_model("shufflenet")
    model, result = run_pipeline(path, o2_until("fuse_batchnorm"), feeds, rtol=1e-4)
    assert result.stats["applied"] == 49 and result.stats["conv_bn"] == 49
    assert "BatchNormalization" not in ops(model)


def _bn_then(scale_shape, shift_shape):
    """x -> BatchNormalization -> Mul(k) -> Add(c) -> Relu, as Caffe-converted DenseNets have."""
    nodes = [
        helper.make_node("BatchNormalization", ["x", *BN], ["n"], epsilon=1e-3),
        helper.make_node("Mul", ["k", "n"], ["m"]),
        helper.make_node("Add", ["m", "c"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    inits = bn_params() + [("k", rand(*scale_shape, seed=7)), ("c", rand(*shift_shape, seed=8))]
    return graph_model(nodes, [("x", [2, 8, 5, 5])], ["y"], inits)


def test_per_channel_scale_and_shift_fold_into_the_batchnorm():
    model, result = run_pass("fuse_batchnorm", _bn_then((8, 1, 1), (1, 8, 1, 1)))
    assert result.stats["bn_mul"] == 1 and result.stats["bn_add"] == 1
    assert ops(model) == ["BatchNormalization", "Relu"]


def test_scale_that_varies_over_space_stays():
    model, result = run_pass("fuse_batchnorm", _bn_then((8, 5, 5), (8, 1, 1)))
    # the Mul cannot fold (not per-channel), so the Add after it has no BN to fold into
    assert result.modified is False and ops(model) == ["BatchNormalization", "Mul", "Add", "Relu"]


def test_densenet_scale_layers_fold():
    path, feeds = light_model("densenet121")
    model, result = run_pipeline(path, o2_until("fuse_batchnorm"), feeds, rtol=1e-4)
    # 121 BN each followed by a scale (Mul) and shift (Add): 59 fold into the Conv before them,
    # the 62 after a Concat or pooling take their Mul/Add into the BN itself
    assert result.stats["conv_bn"] == 59 and result.stats["bn_mul"] == 62
    assert result.stats["bn_add"] == 62 and ops(model).count("BatchNormalization") == 62
