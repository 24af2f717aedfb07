"""Fusion passes on hand-built graphs: each must rewrite its pattern (exact count), leave a
near-miss alone, keep the verifier happy and output names, change nothing on a second run, and
match onnxruntime (relative L2 1e-5: same arithmetic, regrouped)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from passcheck import ops, rand, run_pass

pytest.importorskip("onnxruntime")
F = TensorProto.FLOAT


def _m(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, F, None) for n in outputs],
        initializer=[numpy_helper.from_array(a, n) for n, a in inits],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _c(value):
    return np.array(value, dtype=np.float32)


def _bn_inits(c=8, seed=1):
    rng = np.random.default_rng(seed)
    return [
        ("s", rng.uniform(0.5, 1.5, c).astype(np.float32)),
        ("t", rand(c, seed=seed + 1)),
        ("mu", rand(c, seed=seed + 2)),
        ("var", rng.uniform(0.5, 1.5, c).astype(np.float32)),
    ]


def _conv_bn(extra_outputs=(), stats_as_input=False, act=None):
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "t", "mu", "var"], ["n"], epsilon=1e-3),
    ]
    out = "n"
    if act:
        nodes.append(helper.make_node(act, ["n"], ["y"]))
        out = "y"
    inits = [("w", rand(8, 3, 3, 3, seed=0, scale=0.3)), ("b", rand(8, seed=4))] + _bn_inits()
    inputs = [("x", [1, 3, 8, 8])]
    if stats_as_input:
        inits = [i for i in inits if i[0] != "mu"]
        inputs.append(("mu", [8]))
    return _m(nodes, inputs, [out, *extra_outputs], inits)


def test_conv_bn_folds_into_conv_then_relu_fuses():
    model, result = run_pass("fuse_batchnorm", _conv_bn(act="Relu"))
    assert result.stats["conv_bn"] == 1 and ops(model) == ["Conv", "Relu"]
    model, result = run_pass("fuse_conv_activation", onnx_of(model))
    assert ops(model) == ["infopt.FusedConvRelu"]


def onnx_of(model):
    from infopt.ir import model_to_proto

    return model_to_proto(model)


def test_conv_bn_refuses_second_user_and_non_constant_stats():
    model, result = run_pass("fuse_batchnorm", _conv_bn(extra_outputs=["c"]))
    assert result.modified is False
    model, result = run_pass("fuse_batchnorm", _conv_bn(stats_as_input=True))
    assert result.modified is False


def test_gemm_bn_and_matmul_bn():
    for op, kw in (("Gemm", {"transB": 1}), ("MatMul", {})):
        w = rand(8, 5, seed=2) if op == "Gemm" else rand(5, 8, seed=2)
        nodes = [
            helper.make_node(op, ["x", "w"], ["g"], **kw),
            helper.make_node("BatchNormalization", ["g", "s", "t", "mu", "var"], ["y"]),
        ]
        proto = _m(nodes, [("x", [4, 5])], ["y"], [("w", w)] + _bn_inits())
        model, result = run_pass("fuse_batchnorm", proto)
        assert result.stats["applied"] == 1 and "BatchNormalization" not in ops(model)


def test_conv_mul_add_channel_constants_fold():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Mul", ["c", "k"], ["m"]),
        helper.make_node("Add", ["m", "d"], ["y"]),
    ]
    inits = [("w", rand(4, 3, 1, 1)), ("k", rand(4, 1, 1, seed=3)), ("d", rand(1, 4, 1, 1))]
    model, result = run_pass("fuse_batchnorm", _m(nodes, [("x", [1, 3, 5, 5])], ["y"], inits))
    assert result.stats["conv_mul"] == 1 and result.stats["conv_add_bias"] == 1
    assert ops(model) == ["Conv"]


def test_standalone_bn_to_scale_shift():
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "t", "mu", "var"], ["y"])]
    proto = _m(nodes, [("x", [2, 8, 3, 3])], ["y"], _bn_inits())
    model, result = run_pass("batchnorm_to_scale_shift", proto)
    assert ops(model) == ["Mul", "Add"]


def test_pad_folds_into_conv_and_reflect_pad_does_not():
    def proto(mode):
        nodes = [
            helper.make_node("Pad", ["x", "pads"], ["p"], mode=mode),
            helper.make_node("Conv", ["p", "w"], ["y"], pads=[1, 0, 1, 0]),
        ]
        pads = np.array([0, 0, 1, 2, 0, 0, 3, 1], np.int64)
        return _m(nodes, [("x", [1, 3, 6, 6])], ["y"], [("w", rand(4, 3, 3, 3)), ("pads", pads)])

    model, result = run_pass("fuse_pad_conv", proto("constant"))
    assert ops(model) == ["Conv"] and model.graph.nodes[0].attr("pads") == [2, 2, 4, 1]
    _, result = run_pass("fuse_pad_conv", proto("reflect"))
    assert result.modified is False


@pytest.mark.parametrize(
    "act,attrs,extra",
    [
        ("Relu", {}, []),
        ("LeakyRelu", {"alpha": 0.1}, []),
        ("Sigmoid", {}, []),
        ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, []),
        ("HardSwish", {}, []),
        ("Clip", {}, ["lo", "hi"]),
    ],
)
def test_conv_activation_family(act, attrs, extra):
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"]),
        helper.make_node(act, ["c", *extra], ["y"], **attrs),
    ]
    inits = [("w", rand(4, 3, 3, 3)), ("b", rand(4)), ("lo", _c(0.0)), ("hi", _c(6.0))]
    inits = [i for i in inits if i[0] not in ("lo", "hi") or extra]
    model, result = run_pass("fuse_conv_activation", _m(nodes, [("x", [1, 3, 6, 6])], ["y"], inits))
    assert ops(model) == [f"infopt.FusedConv{act}"] and result.stats["applied"] == 1


def test_conv_silu():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Sigmoid", ["c"], ["g"]),
        helper.make_node("Mul", ["g", "c"], ["y"]),
    ]
    proto = _m(nodes, [("x", [1, 3, 6, 6])], ["y"], [("w", rand(4, 3, 3, 3))])
    model, _ = run_pass("fuse_conv_activation", proto)
    assert ops(model) == ["infopt.FusedConvSilu"]


def test_matmul_add_becomes_gemm_then_fused_gemm_relu():
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["bias", "m"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    proto = _m(nodes, [("x", [3, 5])], ["y"], [("w", rand(5, 4)), ("bias", rand(4))])
    model, result = run_pass("fuse_gemm_activation", proto)
    assert ops(model) == ["infopt.FusedGemmRelu"]
    assert result.stats["matmul_add_to_gemm"] == 1 and result.stats["gemm_relu"] == 1


def test_3d_matmul_bias_gelu_becomes_fused_matmul_and_non_constant_weight_does_not():
    def proto(const_w):
        nodes = [
            helper.make_node("MatMul", ["x", "w"], ["m"]),
            helper.make_node("Add", ["m", "bias"], ["a"]),
            helper.make_node("Gelu", ["a"], ["y"], domain="infopt"),
        ]
        inputs = [("x", [2, 3, 5])] + ([] if const_w else [("w", [5, 4])])
        inits = [("bias", rand(4))] + ([("w", rand(5, 4))] if const_w else [])
        p = _m(nodes, inputs, ["y"], inits)
        p.opset_import.append(helper.make_opsetid("infopt", 1))
        import infopt
        from infopt.ops import ensure_function

        model = infopt.load(p, check=False)
        ensure_function(model, "Gelu")
        return onnx_of(model)

    model, result = run_pass("fuse_gemm_activation", proto(True))
    assert ops(model) == ["infopt.FusedMatMulGelu"]
    _, result = run_pass("fuse_gemm_activation", proto(False))
    assert result.modified is False


def _layer_norm_proto(square="Pow", second_user=False):
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=[-1]),
        helper.make_node("Sub", ["x", "mean"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["sq"])
        if square == "Pow"
        else helper.make_node("Mul", ["d", "d"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["var"], axes=[-1]),
        helper.make_node("Add", ["var", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["std"]),
        helper.make_node("Div", ["d", "std"], ["n"]),
        helper.make_node("Mul", ["n", "g"], ["ng"]),
        helper.make_node("Add", ["ng", "beta"], ["y"]),
    ]
    inits = [("two", _c(2.0)), ("eps", _c(1e-5)), ("g", rand(6, seed=1)), ("beta", rand(6))]
    outputs = ["y", "d"] if second_user else ["y"]
    return _m(nodes, [("x", [2, 3, 6])], outputs, inits)


@pytest.mark.parametrize("square", ["Pow", "Mul"])
def test_layer_norm_from_decomposition(square):
    model, result = run_pass("fuse_layer_norm", _layer_norm_proto(square))
    assert ops(model) == ["LayerNormalization"] and result.stats["applied"] == 1


def test_layer_norm_refuses_intermediate_graph_output():
    model, result = run_pass("fuse_layer_norm", _layer_norm_proto(second_user=True))
    # d = x - mean stays (a graph output); what follows it is exactly an RMSNorm of d
    assert "LayerNormalization" not in ops(model) and "layer_norm_pow" not in result.stats
    assert result.stats == {"applied": 1, "attempted": 7, "failed": 6, "rms_norm0": 1}


def test_rms_norm():
    nodes = [
        helper.make_node("Pow", ["x", "two"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["ms"], axes=[-1]),
        helper.make_node("Add", ["ms", "eps"], ["me"]),
        helper.make_node("Sqrt", ["me"], ["r"]),
        helper.make_node("Div", ["x", "r"], ["n"]),
        helper.make_node("Mul", ["g", "n"], ["y"]),
    ]
    inits = [("two", _c(2.0)), ("eps", _c(1e-6)), ("g", rand(6))]
    model, _ = run_pass("fuse_layer_norm", _m(nodes, [("x", [2, 6])], ["y"], inits))
    assert ops(model) == ["infopt.RMSNorm"]


SQRT2 = math.sqrt(2)


def _gelu_erf(const=SQRT2):
    nodes = [
        helper.make_node("Div", ["x", "r2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["p"]),
        helper.make_node("Mul", ["x", "p"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["y"]),
    ]
    inits = [("r2", _c(const)), ("one", _c(1.0)), ("half", _c(0.5))]
    return _m(nodes, [("x", [2, 7])], ["y"], inits)


def test_gelu_erf_and_wrong_constant():
    model, _ = run_pass("fuse_gelu", _gelu_erf())
    assert ops(model) == ["infopt.Gelu"]
    _, result = run_pass("fuse_gelu", _gelu_erf(const=2.0))
    assert result.modified is False


def test_gelu_tanh():
    nodes = [
        helper.make_node("Mul", ["half", "x"], ["hx"]),
        helper.make_node("Pow", ["x", "three"], ["x3"]),
        helper.make_node("Mul", ["k", "x3"], ["kx3"]),
        helper.make_node("Add", ["x", "kx3"], ["inner"]),
        helper.make_node("Mul", ["c", "inner"], ["ci"]),
        helper.make_node("Tanh", ["ci"], ["t"]),
        helper.make_node("Add", ["one", "t"], ["p"]),
        helper.make_node("Mul", ["hx", "p"], ["y"]),
    ]
    inits = [
        ("half", _c(0.5)),
        ("three", _c(3.0)),
        ("k", _c(0.044715)),
        ("c", _c(math.sqrt(2 / math.pi))),
        ("one", _c(1.0)),
    ]
    model, _ = run_pass("fuse_gelu", _m(nodes, [("x", [2, 7])], ["y"], inits))
    assert ops(model) == ["infopt.GeluTanh"]


def _attention(mask=True, scores_out=False):
    nodes = [
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Div", ["s", "scale"], ["ss"]),
    ]
    last = "ss"
    if mask:
        nodes.append(helper.make_node("Add", ["ss", "mask"], ["sm"]))
        last = "sm"
    nodes += [
        helper.make_node("Softmax", [last], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["y"]),
    ]
    inputs = [("q", [2, 4, 5, 8]), ("kt", [2, 4, 8, 5]), ("v", [2, 4, 5, 8])]
    if mask:
        inputs.append(("mask", [2, 1, 1, 5]))
    outputs = ["y", "s"] if scores_out else ["y"]
    return _m(nodes, inputs, outputs, [("scale", _c(math.sqrt(8)))])


@pytest.mark.parametrize("mask", [True, False])
def test_attention_core(mask):
    model, result = run_pass("fuse_attention", _attention(mask))
    assert ops(model) == ["infopt.Attention"] and result.stats["applied"] == 1


def test_attention_refuses_when_scores_are_an_output():
    _, result = run_pass("fuse_attention", _attention(scores_out=True))
    assert result.modified is False


def test_unknown_and_custom_domain_ops_are_carried_through():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("MyOp", ["c"], ["m"], domain="custom", flavour="x"),
        helper.make_node("Relu", ["m"], ["y"]),
    ]
    proto = _m(nodes, [("x", [1, 3, 6, 6])], ["y"], [("w", rand(4, 3, 3, 3))])
    proto.opset_import.append(helper.make_opsetid("custom", 1))
    import infopt

    model, report = infopt.compile(proto, level=2, target="onnx")
    custom = [n for n in model.graph.nodes if n.domain == "custom"]
    assert len(custom) == 1 and custom[0].attr("flavour") == "x"
    assert [n.op_type for n in model.graph.nodes] == ["Conv", "MyOp", "Relu"]
