"""fuse_gemm_activation: MatMul + bias -> Gemm, Gemm + residual, and Gemm/MatMul + bias +
activation -> infopt FusedGemm*/FusedMatMul*."""

from __future__ import annotations

import pytest
from onnx import helper
from passcheck import graph_model, hf_model, o2_until, ops, rand, run_pass, run_pipeline

import infopt
from infopt.ir import model_to_proto
from infopt.ops import ensure_function

pytest.importorskip("onnxruntime")


def _matmul_add_relu(bias_shape=(4,), outputs=("y",)):
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["bias", "m"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    inits = [("w", rand(5, 4)), ("bias", rand(*bias_shape))]
    return graph_model(nodes, [("x", [3, 5])], list(outputs), inits)


def test_matmul_add_becomes_gemm_then_fused_gemm_relu():
    model, result = run_pass("fuse_gemm_activation", _matmul_add_relu())
    assert ops(model) == ["infopt.FusedGemmRelu"]
    assert result.stats["matmul_add_to_gemm"] == 1 and result.stats["gemm_relu"] == 1
    assert result.stats["applied"] == 2


def test_column_bias_and_graph_output_intermediate_are_refused():
    _, result = run_pass("fuse_gemm_activation", _matmul_add_relu(bias_shape=(3, 1)))
    assert result.modified is False
    model, result = run_pass("fuse_gemm_activation", _matmul_add_relu(outputs=("y", "m")))
    assert result.modified is False and ops(model) == ["MatMul", "Add", "Relu"]


def test_gemm_plus_residual_takes_it_as_c():
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["g"], transB=1, alpha=0.5),
        helper.make_node("Add", ["g", "z"], ["y"]),
    ]
    proto = graph_model(nodes, [("x", [3, 5]), ("z", [3, 4])], ["y"], [("w", rand(4, 5))])
    model, result = run_pass("fuse_gemm_activation", proto)
    assert ops(model) == ["Gemm"] and result.stats["gemm_residual"] == 1
    assert [v.name for v in model.graph.nodes[0].inputs] == ["x", "w", "z"]


def test_gemm_residual_refuses_a_broadcast_residual():
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["g"]),
        helper.make_node("Add", ["g", "z"], ["y"]),
    ]
    proto = graph_model(nodes, [("x", [3, 5]), ("z", [1, 4])], ["y"], [("w", rand(5, 4))])
    _, result = run_pass("fuse_gemm_activation", proto)
    assert result.modified is False


def test_gemm_residual_refuses_a_gemm_that_has_its_c():
    nodes = [
        helper.make_node("Gemm", ["x", "w", "c"], ["g"]),
        helper.make_node("Add", ["g", "z"], ["y"]),
    ]
    inits = [("w", rand(5, 4)), ("c", rand(4, seed=3))]
    proto = graph_model(nodes, [("x", [3, 5]), ("z", [3, 4])], ["y"], inits)
    model, result = run_pass("fuse_gemm_activation", proto)
    assert result.modified is False and ops(model) == ["Gemm", "Add"]


def test_gemm_relu_keeps_alpha_and_beta():
    nodes = [
        helper.make_node("Gemm", ["x", "w", "c"], ["g"], alpha=0.5, beta=2.0, transB=1),
        helper.make_node("Relu", ["g"], ["y"]),
    ]
    inits = [("w", rand(4, 5)), ("c", rand(4, seed=3))]
    proto = graph_model(nodes, [("x", [3, 5])], ["y"], inits)
    model, result = run_pass("fuse_gemm_activation", proto)
    assert ops(model) == ["infopt.FusedGemmRelu"] and result.stats["gemm_relu"] == 1
    fused = model.graph.nodes[0]
    assert (fused.attr("alpha"), fused.attr("beta"), fused.attr("transB")) == (0.5, 2.0, 1)


def test_3d_matmul_bias_gelu_becomes_fused_matmul_and_non_constant_weight_does_not():
    def proto(const_w):
        nodes = [
            helper.make_node("MatMul", ["x", "w"], ["m"]),
            helper.make_node("Add", ["m", "bias"], ["a"]),
            helper.make_node("Gelu", ["a"], ["y"], domain="infopt"),
        ]
        inputs = [("x", [2, 3, 5])] + ([] if const_w else [("w", [5, 4])])
        inits = [("bias", rand(4))] + ([("w", rand(5, 4))] if const_w else [])
        p = graph_model(nodes, inputs, ["y"], inits, domains=["infopt"])
        model = infopt.load(p, check=False)
        ensure_function(model, "Gelu")
        return model_to_proto(model)

    model, result = run_pass("fuse_gemm_activation", proto(True))
    assert ops(model) == ["infopt.FusedMatMulGelu"] and result.stats["matmul_bias_gelu"] == 1
    _, result = run_pass("fuse_gemm_activation", proto(False))
    assert result.modified is False


def test_minilm_ffn_matmul_bias_gelu():
    path, feeds = hf_model("minilm")
    model, result = run_pipeline(path, o2_until("fuse_gemm_activation"), feeds, rtol=1e-5)
    # per layer: the FFN's MatMul + bias + GELU, and 5 projections (Q, K, V, attention output,
    # FFN output) whose bias goes into the GEMM write-back
    assert result.stats["applied"] == 36 and result.stats["matmul_bias_gelu"] == 6
    assert result.stats["matmul_bias"] == 30
    assert ops(model).count("infopt.FusedMatMulGelu") == 6
    assert ops(model).count("infopt.FusedMatMul") == 30 and "MatMul" not in ops(model)


def test_nd_matmul_bias_without_activation():
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["c", "m"], ["y"]),
    ]
    inits = [("w", rand(6, 5, seed=1)), ("c", rand(5, seed=2))]
    model, result = run_pass(
        "fuse_gemm_activation", graph_model(nodes, [("x", [2, 3, 6])], ["y"], inits)
    )
    assert result.stats["matmul_bias"] == 1 and ops(model) == ["infopt.FusedMatMul"]


def test_2d_matmul_bias_takes_gemm_not_fused_matmul():
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "c"], ["y"]),
    ]
    inits = [("w", rand(6, 5, seed=1)), ("c", rand(5, seed=2))]
    model, result = run_pass(
        "fuse_gemm_activation", graph_model(nodes, [("x", [3, 6])], ["y"], inits)
    )
    assert "matmul_bias" not in result.stats and ops(model) == ["Gemm"]
