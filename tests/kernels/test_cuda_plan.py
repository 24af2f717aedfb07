"""``runtime.cuda``: models lowered to Triton kernels, run under the interpreter, vs onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import infopt
from infopt.ir.serde import infer_types
from infopt.runtime.cuda import build_cuda_plan, cuda_unavailable_reason
from infopt.testing.compare import relative_l2
from infopt.testing.oracle import ort_run

pytest.importorskip("onnxruntime")


def _plan(proto: onnx.ModelProto):
    model = infopt.load(proto)
    infer_types(model)
    return build_cuda_plan(model)


def _compare(proto, feeds: dict, rtol: float, seed: int):
    plan = _plan(proto)
    got = plan.run([feeds[name] for name in plan.input_names])
    want = ort_run(proto, feeds)
    for name, w, g in zip(plan.output_names, want, got, strict=True):
        err = relative_l2(w, g)
        assert err <= rtol, f"{name} seed={seed}: relative L2 {err:.3g} > {rtol:g}"
    return plan


def test_interpreter_counts_as_available():
    assert cuda_unavailable_reason() is None


def _encoder_layer(seed: int, hidden=48, heads=3, ffn=80) -> onnx.ModelProto:
    """A BERT-style layer written as plain ONNX ops (what exporters emit), with its embedding
    Gather (the gather kernel) and mask math (the pointwise kernel)."""
    rng = np.random.default_rng(seed)
    d = hidden // heads

    def w(name, *shape, scale=None):
        scale = scale or 1.0 / np.sqrt(shape[0])
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), name
        )

    inits = [
        w("emb", 50, hidden, scale=1.0),
        w("wq", hidden, hidden),
        w("wk", hidden, hidden),
        w("wv", hidden, hidden),
        w("wo", hidden, hidden),
        w("w1", hidden, ffn),
        w("w2", ffn, hidden),
        w("bq", hidden, scale=0.1),
        w("bo", hidden, scale=0.1),
        w("b1", ffn, scale=0.1),
        w("gamma", hidden, scale=1.0),
        w("beta", hidden, scale=0.1),
        numpy_helper.from_array(np.array([0, 0, heads, d], np.int64), "split_shape"),
        numpy_helper.from_array(np.array([0, 0, hidden], np.int64), "merge_shape"),
        numpy_helper.from_array(np.array(np.sqrt(d), np.float32), "scale"),
        numpy_helper.from_array(np.array(-10000.0, np.float32), "neg"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array(1.4142135, np.float32), "sqrt2"),
        numpy_helper.from_array(np.array([1, 2], np.int64), "mask_axes"),
    ]  # fmt: skip
    n = helper.make_node
    nodes = [
        n("Gather", ["emb", "ids"], ["x"]),
        n("MatMul", ["x", "wq"], ["q0"]),
        n("Add", ["q0", "bq"], ["q1"]),
        n("MatMul", ["x", "wk"], ["k0"]),
        n("MatMul", ["x", "wv"], ["v0"]),
        n("Reshape", ["q1", "split_shape"], ["q2"]),
        n("Transpose", ["q2"], ["q"], perm=[0, 2, 1, 3]),
        n("Reshape", ["k0", "split_shape"], ["k2"]),
        n("Transpose", ["k2"], ["kt"], perm=[0, 2, 3, 1]),
        n("Reshape", ["v0", "split_shape"], ["v2"]),
        n("Transpose", ["v2"], ["v"], perm=[0, 2, 1, 3]),
        n("MatMul", ["q", "kt"], ["s0"]),
        n("Div", ["s0", "scale"], ["s1"]),
        n("Cast", ["attn_mask"], ["mf"], to=TensorProto.FLOAT),
        n("Sub", ["one", "mf"], ["mi"]),
        n("Mul", ["mi", "neg"], ["madd0"]),
        n("Unsqueeze", ["madd0", "mask_axes"], ["madd"]),
        n("Add", ["s1", "madd"], ["s2"]),
        n("Softmax", ["s2"], ["p"], axis=-1),
        n("MatMul", ["p", "v"], ["c0"]),
        n("Transpose", ["c0"], ["c1"], perm=[0, 2, 1, 3]),
        n("Reshape", ["c1", "merge_shape"], ["c2"]),
        n("MatMul", ["c2", "wo"], ["o0"]),
        n("Add", ["o0", "bo"], ["o1"]),
        n("Add", ["o1", "x"], ["o2"]),
        n("LayerNormalization", ["o2", "gamma", "beta"], ["h"], axis=-1, epsilon=1e-12),
        n("MatMul", ["h", "w1"], ["f0"]),
        n("Add", ["f0", "b1"], ["f1"]),
        n("Div", ["f1", "sqrt2"], ["g0"]),
        n("Erf", ["g0"], ["g1"]),
        n("Add", ["g1", "one"], ["g2"]),
        n("Mul", ["f1", "g2"], ["g3"]),
        n("Mul", ["g3", "half"], ["g4"]),
        n("MatMul", ["g4", "w2"], ["f2"]),
        n("Add", ["f2", "h"], ["y0"]),
        n("Relu", ["y0"], ["y1"]),
        n("ReduceMean", ["y1"], ["pooled"], axes=[1], keepdims=0),
        n("Concat", ["pooled", "pooled"], ["both"], axis=1),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "encoder",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attn_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [
            helper.make_tensor_value_info("y1", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("both", TensorProto.FLOAT, None),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("seed,batch,seq", [(0, 2, 7), (1, 1, 19)])
def test_encoder_layer_matches_onnxruntime(seed, batch, seq):
    rng = np.random.default_rng(seed)
    proto = _encoder_layer(seed)
    mask = (rng.random((batch, seq)) < 0.8).astype(np.int64)
    mask[:, 0] = 1
    feeds = {"ids": rng.integers(0, 50, (batch, seq)).astype(np.int64), "attn_mask": mask}
    plan = _compare(proto, feeds, 1e-5, seed)
    assert plan.fallback_ops == {}
    assert plan.native_ops["Gather"] == 1
    # the additive mask joins the scores GEMM's epilogue (or the softmax)
    assert "MatMul+Div+Add" in plan.fused or "Add+Softmax" in plan.fused
    assert any(k.startswith("MatMul+Div") for k in plan.fused)  # the scale became alpha
    assert "Div+Erf+Add+Mul+Mul" in plan.fused  # gelu as one generated kernel
    # second run reuses this signature's buffers
    again = plan.run([feeds[n] for n in plan.input_names])
    assert relative_l2(ort_run(proto, feeds)[0], again[0]) <= 1e-5


def test_conv_block_with_pool_and_fallback_reporting():
    rng = np.random.default_rng(3)
    n = helper.make_node

    def t(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3, name)

    var = numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "var")
    inits = [t("w1", 8, 3, 3, 3), t("b1", 8), t("s", 8), t("bb", 8), t("m", 8), var,
             t("w2", 8, 1, 3, 3), t("w3", 8, 8, 1, 1)]  # fmt: skip
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        n("BatchNormalization", ["c1", "s", "bb", "m", "var"], ["bn"]),
        n("Relu", ["bn"], ["r1"]),
        n("Conv", ["r1", "w2"], ["dw"], pads=[1, 1, 1, 1], group=8),
        n("Conv", ["dw", "w3"], ["pw"]),
        n("Add", ["pw", "r1"], ["sum"]),
        n("Clip", ["sum"], ["cl"], min=-1.0, max=1.0),
        n("MaxPool", ["cl"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        n("AveragePool", ["mp"], ["ap"], kernel_shape=[2, 2], ceil_mode=1),
        n("GlobalAveragePool", ["ap"], ["gp"]),
        n("Flatten", ["gp"], ["y"]),
        n("LpNormalization", ["y"], ["z"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes, "convs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 19, 17])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 8])],
        initializer=inits,
    )  # fmt: skip
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 10)])
    proto.ir_version = 8
    plan = _compare(proto, {"x": rng.standard_normal((2, 3, 19, 17)).astype(np.float32)}, 1e-5, 3)
    assert plan.fallback_ops == {"LpNormalization": 1}
    assert plan.fused.get("Conv+BatchNormalization+Relu") == 1
    assert plan.fused.get("Conv+Add+Clip") == 1


def test_resnet50_matches_onnxruntime():
    """ResNet-50 (random weights) end to end. The light model's final 7x7 AveragePool is made
    global so the interpreter can run a 32x32 image (the same computation at 224x224)."""
    from infopt.testing.models import random_weight_model

    proto = onnx.load(str(random_weight_model("resnet50")))
    for node in proto.graph.node:
        if node.op_type == "AveragePool":
            node.op_type = "GlobalAveragePool"
            del node.attribute[:]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = 32
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    plan = _compare(proto, {proto.graph.input[0].name: x}, 1e-4, 0)
    assert plan.fallback_ops == {}
    assert plan.native_ops["Conv"] == 53
    assert plan.fused["Conv+BatchNormalization+Sum+Relu"] == 16


def _chain(seed: int, widths=(9, 14, 5, 12, 7, 16, 6, 11, 8, 13)) -> onnx.ModelProto:
    """x -> 10 MatMuls of ragged widths; y3 (the 4th) is read again at the end, and y6 is also
    a graph output."""
    rng = np.random.default_rng(seed)
    n = helper.make_node
    inits, nodes, prev, width = [], [], "x", 10
    for i, w in enumerate(widths):
        weight = (rng.standard_normal((width, w)) / np.sqrt(width)).astype(np.float32)
        inits.append(numpy_helper.from_array(weight, f"w{i}"))
        nodes.append(n("MatMul", [prev, f"w{i}"], [f"y{i}"]))
        prev, width = f"y{i}", w
    back = (rng.standard_normal((width, widths[3])) / np.sqrt(width)).astype(np.float32)
    inits.append(numpy_helper.from_array(back, "wb"))
    nodes += [n("MatMul", [prev, "wb"], ["yb"]), n("Add", ["yb", "y3"], ["z"])]
    graph = helper.make_graph(
        nodes, "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 10])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("y6", TensorProto.FLOAT, None)],
        initializer=inits,
    )  # fmt: skip
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return proto


def test_buffer_plan_reuses_memory_without_clobbering():
    proto = _chain(5)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 10)).astype(np.float32)
    plan = _compare(proto, {"x": x}, 1e-5, 5)
    (stats,) = plan.buffer_stats.values()
    # 11 GEMM outputs (the last fused with the Add); y3 and y6 live long, the rest ping-pong
    assert stats["tensors"] == 11
    assert stats["slots"] <= 4, stats
    assert stats["planned_bytes"] < stats["naive_bytes"] / 2, stats
    # later runs write into the planned slots: a slot reused too early breaks these
    want = ort_run(proto, {"x": x})
    for _ in range(2):
        for w, g in zip(want, plan.run([x]), strict=True):
            assert relative_l2(w, g) <= 1e-5
    # another signature gets its own plan and the first one still holds
    x2 = rng.standard_normal((5, 10)).astype(np.float32)
    for w, g in zip(ort_run(proto, {"x": x2}), plan.run([x2]), strict=True):
        assert relative_l2(w, g) <= 1e-5
    assert len(plan.buffer_stats) == 2
    for w, g in zip(want, plan.run([x]), strict=True):
        assert relative_l2(w, g) <= 1e-5


def test_buffer_plan_keeps_graph_outputs_and_views_alive():
    """A graph output that is a view (Reshape) of a kernel's buffer, and an intermediate read
    through a Transpose view much later, must survive every later kernel."""
    rng = np.random.default_rng(8)
    n = helper.make_node

    def w(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    inits = [w("w0", 6, 6), w("w1", 6, 6), w("w2", 6, 6), w("w3", 6, 6),
             numpy_helper.from_array(np.array([-1], np.int64), "flat")]  # fmt: skip
    nodes = [
        n("MatMul", ["x", "w0"], ["a"]),
        n("Transpose", ["a"], ["at"], perm=[1, 0]),
        n("Reshape", ["a", "flat"], ["a_flat"]),
        n("MatMul", ["a", "w1"], ["b"]),
        n("Relu", ["b"], ["br"]),
        n("MatMul", ["br", "w2"], ["c"]),
        n("Sigmoid", ["c"], ["cs"]),
        n("MatMul", ["cs", "w3"], ["d"]),
        n("MatMul", ["at", "d"], ["e"]),
    ]
    graph = helper.make_graph(
        nodes, "views",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6, 6])],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("a_flat", TensorProto.FLOAT, None)],
        initializer=inits,
    )  # fmt: skip
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    x = rng.standard_normal((6, 6)).astype(np.float32)
    plan = _compare(proto, {"x": x}, 1e-5, 8)
    want = ort_run(proto, {"x": x})
    for w_, g in zip(want, plan.run([x]), strict=True):
        assert relative_l2(w_, g) <= 1e-5


def _fusable(seed: int) -> onnx.ModelProto:
    """Standard-op patterns that -O2 turns into infopt ops: FusedConv with HardSwish and with
    a residual + Clip, FusedMatMulGelu, LayerNorm (opset 14: below LayerNormalization),
    FusedGemm with LeakyRelu, Gelu on its own, Attention with a padding mask, RMSNorm."""
    rng = np.random.default_rng(seed)
    n = helper.make_node

    def t(name, *shape, scale=0.3):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32),
                                       name)  # fmt: skip

    def c(name, value, dtype=np.float32):
        return numpy_helper.from_array(np.array(value, dtype), name)

    inits = [
        t("cw1", 4, 3, 3, 3), t("cb1", 4), t("cw2", 4, 4, 1, 1), t("cb2", 4),
        t("w1", 20, 24), t("b1", 24), t("w2", 24, 20), t("b2", 20), t("g", 20), t("be", 20),
        t("gw", 7, 20), t("gb", 7), c("sqrt2", 1.4142135), c("one", 1.0), c("half", 0.5),
        c("zero6", 0.0), c("six", 6.0), c("eps", 1e-5), c("axes", [-1], np.int64),
        c("two", 2.0), c("scale", 0.5), c("qshape", [0, 0, 2, 10], np.int64),
    ]  # fmt: skip
    nodes = [
        # convolutions
        n("Conv", ["img", "cw1", "cb1"], ["c1"], pads=[1, 1, 1, 1]),
        n("HardSwish", ["c1"], ["c1a"]),
        n("Conv", ["c1a", "cw2", "cb2"], ["c2"]),
        n("Add", ["c2", "c1a"], ["c3"]),
        n("Clip", ["c3", "zero6", "six"], ["conv_out"]),
        # FFN + LayerNorm decomposition
        n("MatMul", ["x", "w1"], ["f0"]), n("Add", ["f0", "b1"], ["f1"]),
        n("Div", ["f1", "sqrt2"], ["e0"]), n("Erf", ["e0"], ["e1"]),
        n("Add", ["e1", "one"], ["e2"]),
        n("Mul", ["f1", "e2"], ["e3"]), n("Mul", ["e3", "half"], ["f2"]),
        n("MatMul", ["f2", "w2"], ["f3"]), n("Add", ["f3", "b2"], ["f4"]),
        n("Add", ["f4", "x"], ["h0"]),
        n("ReduceMean", ["h0"], ["mu"], axes=[-1]), n("Sub", ["h0", "mu"], ["d"]),
        n("Pow", ["d", "two"], ["d2"]), n("ReduceMean", ["d2"], ["var"], axes=[-1]),
        n("Add", ["var", "eps"], ["ve"]), n("Sqrt", ["ve"], ["sd"]), n("Div", ["d", "sd"], ["nrm"]),
        n("Mul", ["nrm", "g"], ["ng"]), n("Add", ["ng", "be"], ["ln"]),
        # attention over ln split into 2 heads of 10
        n("Reshape", ["ln", "qshape"], ["q0"]),
        n("Transpose", ["q0"], ["q"], perm=[0, 2, 1, 3]),
        n("Transpose", ["q0"], ["kt"], perm=[0, 2, 3, 1]),
        n("MatMul", ["q", "kt"], ["s0"]), n("Mul", ["s0", "scale"], ["s1"]),
        n("Add", ["s1", "mask"], ["s2"]), n("Softmax", ["s2"], ["p"], axis=-1),
        n("MatMul", ["p", "q"], ["attn"]),
        # Gemm + LeakyRelu on a 2-D slice, and a lone GELU
        n("Flatten", ["ln"], ["ln2"], axis=2),
        n("Gemm", ["ln2", "gw", "gb"], ["gm"], transB=1),
        n("LeakyRelu", ["gm"], ["gm_out"], alpha=0.2),
        n("Div", ["ln", "sqrt2"], ["u0"]), n("Erf", ["u0"], ["u1"]),
        n("Add", ["u1", "one"], ["u2"]),
        n("Mul", ["ln", "u2"], ["u3"]), n("Mul", ["u3", "half"], ["gelu_out"]),
        # RMSNorm of the input
        n("Pow", ["x", "two"], ["xx"]), n("ReduceMean", ["xx"], ["ms"], axes=[-1]),
        n("Add", ["ms", "eps"], ["mse"]), n("Sqrt", ["mse"], ["rms"]),
        n("Div", ["x", "rms"], ["xn"]), n("Mul", ["xn", "g"], ["rms_out"]),
    ]  # fmt: skip
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "fusable",
        [helper.make_tensor_value_info("img", f, [1, 3, 7, 9]),
         helper.make_tensor_value_info("x", f, [2, 5, 20]),
         helper.make_tensor_value_info("mask", f, [2, 1, 1, 5])],
        [helper.make_tensor_value_info(name, f, None)
         for name in ("conv_out", "attn", "gm_out", "gelu_out", "rms_out")],
        initializer=inits,
    )  # fmt: skip
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    proto.ir_version = 8
    return proto


def test_infopt_ops_lower_to_kernels():
    """-O2's infopt ops all become kernel steps (none falls back) and match onnxruntime on
    the original model. dtype fp32, relative L2 1e-5."""
    proto = _fusable(21)
    rng = np.random.default_rng(21)
    mask = np.where(rng.random((2, 1, 1, 5)) < 0.3, np.finfo(np.float32).min, 0.0)
    mask[..., 0] = 0.0
    feeds = {
        "img": rng.standard_normal((1, 3, 7, 9)).astype(np.float32),
        "x": rng.standard_normal((2, 5, 20)).astype(np.float32),
        "mask": mask.astype(np.float32),
    }
    model, _ = infopt.compile(proto, level=2, target="cuda")
    emitted = {n.qualified_op for n in model.graph.nodes if n.domain == "infopt"}
    expected = {"infopt.FusedConvHardSwish", "infopt.FusedConvAddClip",
                "infopt.FusedMatMulGelu", "infopt.LayerNorm", "infopt.Attention",
                "infopt.FusedGemmLeakyRelu", "infopt.Gelu", "infopt.RMSNorm",
                "infopt.FusedMatMul"}  # fmt: skip
    assert emitted == expected, emitted
    plan = build_cuda_plan(model)
    assert plan.fallback_ops == {}, plan.fallback_reasons
    # each a kernel step of its own (the lone Gelu is a generated pointwise kernel)
    assert expected - {"infopt.Gelu"} <= plan.native_ops.keys(), plan.native_ops
    assert "Gelu" in plan.steps
    got = plan.run([feeds[name] for name in plan.input_names])
    want = ort_run(proto, feeds)
    for name, w, g in zip(plan.output_names, want, got, strict=True):
        err = relative_l2(w, g)
        assert err <= 1e-5, f"{name} seed=21: relative L2 {err:.3g}"


_HF = [("minilm", "torchscript"), ("minilm", "dynamo"), ("gpt2", "torchscript"),
       ("gpt2", "dynamo")]  # fmt: skip


@pytest.mark.parametrize("name,exporter", _HF)
def test_hf_model_runs_on_device(name, exporter):
    """MiniLM (trained) and GPT-2 compiled -O2 for --target cuda, batch 2, sequence 8: within
    1e-4 relative L2 of onnxruntime; no infopt op and no float op on the host: only shape
    arithmetic (integers from Shape and constants) stays there."""
    from infopt.testing import hf_models

    if not hf_models.available():
        pytest.skip("torch, transformers or the model weights are missing")
    path = hf_models.model_path(name, exporter)
    model, _ = infopt.compile(path, level=2, target="cuda")
    session = infopt.InferenceSession(model, providers=["CUDAExecutionProvider"])
    feeds = hf_models.sentence_feeds(2, 8) if name == "minilm" else hf_models.decoder_feeds(2, 8)
    want = ort_run(path, feeds)
    for i, (w, g) in enumerate(zip(want, session.run(None, feeds), strict=True)):
        err = relative_l2(w, g)
        assert err <= 1e-4, f"{name}/{exporter} output {i}: relative L2 {err:.3g}"
    plan = build_cuda_plan(model)
    assert plan.fallback_ops == plan.shape_ops, {
        k: plan.fallback_reasons[k] for k in plan.fallback_ops if k not in plan.shape_ops
    }
    assert not any(k.startswith("infopt.") for k in plan.fallback_ops)
    for key in ("infopt.Attention", "Gather"):
        assert plan.native_ops.get(key, 0) >= 1, plan.native_ops


def _shape_graph(data_shaped: bool) -> onnx.ModelProto:
    """y = Reshape(x * 2, [Shape(x)[0] * Shape(x)[1], -1]); with ``data_shaped`` the tensor
    first goes through Compress(x, x[0, 0, :] > 0), whose output shape depends on values."""
    n = helper.make_node
    inits = [numpy_helper.from_array(np.array(v, np.int64), name)
             for name, v in (("i0", [0]), ("i1", [1]), ("minus1", [-1]), ("zero", 0))]  # fmt: skip
    inits.append(numpy_helper.from_array(np.array(2.0, np.float32), "two"))
    nodes = [n("Mul", ["x", "two"], ["x2"])]
    src = "x2"
    if data_shaped:
        nodes += [
            n("Gather", ["x", "zero"], ["row"], axis=0), n("Gather", ["row", "zero"], ["cell"]),
            n("Greater", ["cell", "two"], ["keep"]), n("Compress", ["x2", "keep"], ["xc"], axis=2),
        ]  # fmt: skip
        src = "xc"
    nodes += [
        n("Shape", [src], ["s"]),
        n("Gather", ["s", "i0"], ["d0"]), n("Gather", ["s", "i1"], ["d1"]),
        n("Mul", ["d0", "d1"], ["rows"]), n("Concat", ["rows", "minus1"], ["target"], axis=0),
        n("Reshape", [src, "target"], ["y"]),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "shapes",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["a", "b", "c"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=inits,
    )  # fmt: skip
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return proto


@pytest.mark.parametrize("data_shaped", [False, True])
def test_shape_arithmetic_runs_once_per_signature(data_shaped):
    """Shape arithmetic stays on the host; its results are reused for the same input shapes
    (and recomputed for new ones) unless some op's output shape depends on data."""
    proto = _shape_graph(data_shaped)
    plan = _plan(proto)
    assert set(plan.fallback_ops) <= set(plan.shape_ops) | {"Compress"}
    assert plan.shape_ops["Shape"] == 1 and plan.shape_ops["Concat"] == 1
    rng = np.random.default_rng(30)
    for shape in ((2, 3, 5), (2, 3, 5), (4, 1, 6), (2, 3, 5)):
        x = rng.standard_normal(shape).astype(np.float32)
        x[0, 0, :] = rng.choice([-3.0, 3.0], shape[2])  # Compress keeps a data-chosen subset
        (got,) = plan.run([x])
        (want,) = ort_run(proto, {"x": x})
        assert got.shape == want.shape and relative_l2(want, got) <= 1e-6, shape
    if data_shaped:
        assert plan._shape_results is None
    else:
        assert len(plan._shape_results) == 2  # one entry per input signature
