"""layout_nchwc: CNN regions -> NCHWc layout (block 8); exact structure of small graphs, the
cases where it refuses, numerics of the .opt (the ops' ONNX functions) in onnxruntime against
the original model on small random CNNs and on four light models, the runtime mapping."""

from __future__ import annotations

import numpy as np
import onnx
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

import infopt
from infopt import _C
from infopt.compiler import op_counts
from infopt.passes import create
from infopt.passes.pipelines import O2, native_nchwc, pipeline
from infopt.runtime.cpu import canonical_native_step
from infopt.testing.compare import relative_l2
from infopt.testing.oracle import ort_run

pytest.importorskip("onnxruntime")
RTOL = 1e-5  # relative L2 on small graphs: the same convolutions, only the layout moves
MODEL_RTOL = 1e-4  # relative L2 through ~120 layers of a light model (summation order differs)
TO, FROM = "infopt.ReorderToNchwc", "infopt.ReorderFromNchwc"
SS = "infopt.NchwcScaleShift"
KERNELS = "infopt.NchwcConv" in set(_C.native_ops())


def conv(x, w, y, **attrs):
    return helper.make_node("Conv", [x, w], [y], **attrs)


def run(proto, **kw):
    return run_pass("layout_nchwc", proto, rtol=RTOL, **kw)


def test_conv_chain_has_one_reorder_each_way():
    nodes = [
        conv("x", "w1", "c1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        conv("r1", "w2", "c2", strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["y"]),
    ]
    inits = [("w1", rand(16, 16, 3, 3, scale=0.3)), ("w2", rand(32, 16, 1, 1, seed=1))]
    model, result = run(graph_model(nodes, [("x", ["N", 16, 9, 9])], ["y"], inits))
    assert ops(model) == [TO, "infopt.NchwcConv", "Relu", "infopt.NchwcConv", "Relu", FROM]
    assert result.stats == {"reorder_to": 1, "reorder_from": 1, "conv": 2}
    out = model.graph.outputs[0]
    assert (
        out.name == "y" and out.shape == ("N", 32, 5, 5) and out.producer.op_type[:7] == "Reorder"
    )
    assert model.graph.nodes[1].outputs[0].shape == ("N", 2, 9, 9, 8)


def test_first_layer_reads_nchw_and_pools_stay_blocked():
    nodes = [
        conv("x", "w1", "c1", pads=[3, 3, 3, 3], strides=[2, 2]),
        helper.make_node("MaxPool", ["c1"], ["p"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("AveragePool", ["p"], ["a"], kernel_shape=[2, 2], pads=[1, 1, 0, 0]),
        helper.make_node("GlobalAveragePool", ["a"], ["g"]),
        helper.make_node("Flatten", ["g"], ["y"]),
    ]
    proto = graph_model(nodes, [("x", [2, 3, 20, 20])], ["y"], [("w1", rand(8, 3, 7, 7))])
    model, result = run(proto)
    assert ops(model) == [
        "infopt.NchwcConvNchw",
        "infopt.NchwcMaxPool",
        "infopt.NchwcAveragePool",
        "infopt.NchwcGlobalAveragePool",
        FROM,
        "Flatten",
    ]
    assert result.stats == {"reorder_to": 0, "reorder_from": 1, "conv_nchw_input": 1}


def test_concat_fused_conv_and_residual_stay_blocked():
    nodes = [
        conv("x", "w1", "a"),
        conv("x", "w2", "b", pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["a", "b"], ["cat"], axis=1),
        conv("cat", "w3", "c"),
        helper.make_node("Add", ["c", "r"], ["s"]),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    inits = [
        ("w1", rand(8, 3, 1, 1)),
        ("w2", rand(16, 3, 3, 3, seed=1)),
        ("w3", rand(16, 24, 1, 1, seed=2)),
    ]
    proto = graph_model(nodes, [("x", [1, 3, 6, 6]), ("r", [1, 16, 6, 6])], ["y"], inits)
    model, result = run_pass("layout_nchwc", proto, before=("infer_shapes", "fuse_conv_activation"))
    assert ops(model) == [
        "infopt.NchwcConvNchw",
        "infopt.NchwcConvNchw",
        "Concat",
        TO,  # the residual, a graph input
        "infopt.NchwcConvAddRelu",
        FROM,
    ]
    assert model.graph.nodes[2].attrs["axis"].value == 1
    assert result.stats["reorder_to"] == 1 and result.stats["reorder_from"] == 1


def test_batchnorm_and_channel_constants_are_relaid():
    nodes = [
        conv("x", "w", "c"),
        helper.make_node("BatchNormalization", ["c", "s", "t", "mu", "var"], ["bn"]),
        helper.make_node("Mul", ["bn", "k"], ["m"]),
        helper.make_node("Sub", ["q", "m"], ["d"]),
        helper.make_node("Div", ["d", "k"], ["y"]),
    ]
    inits = [("w", rand(16, 3, 3, 3)), ("k", rand(16, 1, 1, seed=4) + 3), ("q", rand(1, seed=5))]
    proto = graph_model(nodes, [("x", [1, 3, 7, 7])], ["y"], inits + bn_params(16))
    model, result = run(proto)
    assert ops(model) == ["infopt.NchwcConvNchw", SS, "Mul", "Sub", "Div", FROM]
    assert result.stats[SS[7:]] == 1
    affine = model.graph.nodes[1]
    assert [v.shape for v in affine.inputs[1:]] == [(16,), (16,)] and not affine.attrs
    s, t, mu, var = (a.astype(np.float64) for _, a in bn_params(16))
    scale = s / np.sqrt(var + 1e-5)
    np.testing.assert_array_equal(affine.inputs[1].const.numpy(), scale.astype(np.float32))
    np.testing.assert_array_equal(
        affine.inputs[2].const.numpy(), (t - mu * scale).astype(np.float32)
    )
    for node in model.graph.nodes[2:5]:
        consts = [v for v in node.inputs if v.const is not None]
        assert len(consts) == 1 and consts[0].shape == (2, 1, 1, 8)


def _densenet_block(c: int, act: tuple | None = None, seed: int = 0, opset: int = 17):
    """DenseNet's pattern: Concat of two convs -> BN -> activation -> 1x1 conv -> BN ->
    activation -> 3x3 conv; ``act`` = (op, attrs, extra inputs) of the activations."""
    op, attrs, extra = act or ("Relu", {}, [])
    nodes = [
        conv("x", "w0", "a", pads=[1, 1, 1, 1]),
        conv("x", "w1", "b"),
        helper.make_node("Concat", ["a", "b"], ["cat"], axis=1),
        helper.make_node("BatchNormalization", ["cat", "s", "t", "mu", "var"], ["bn1"]),
        helper.make_node(op, ["bn1", *extra], ["r1"], **attrs),
        conv("r1", "w2", "c2"),
        helper.make_node("BatchNormalization", ["c2", "s2", "t2", "mu2", "var2"], ["bn2"]),
        helper.make_node(op, ["bn2", *extra], ["r2"], **attrs),
        conv("r2", "w3", "y", pads=[1, 1, 1, 1]),
    ]
    inits = [
        ("w0", rand(16, 8, 3, 3, scale=0.3)),
        ("w1", rand(c - 16, 8, 1, 1, seed=1)),
        ("w2", rand(16, c, 1, 1, seed=2, scale=0.3)),
        ("w3", rand(8, 16, 3, 3, seed=3, scale=0.3)),
        ("lo", np.float32(-0.5)),
        ("hi", np.float32(1.5)),
        *bn_params(c, seed=seed),
        *[(k + "2", a) for k, a in bn_params(16, seed=seed + 7)],
    ]
    return graph_model(nodes, [("x", ["N", 8, 6, 7])], ["y"], inits, opset=opset)


@pytest.mark.parametrize(
    "act",
    [
        ("Relu", {}, []),
        ("Clip", {}, ["lo", "hi"]),
        ("LeakyRelu", {"alpha": 0.3}, []),
        ("Sigmoid", {}, []),
        ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, []),
    ],
)
def test_densenet_batchnorm_activation_becomes_one_scale_shift(act):
    model, result = run(_densenet_block(24, act))
    name = SS + act[0]
    assert ops(model) == [
        TO,
        "infopt.NchwcConv",
        "infopt.NchwcConv",
        "Concat",
        name,
        "infopt.NchwcConv",
        name,
        "infopt.NchwcConv",
        FROM,
    ]
    assert result.stats[name[7:]] == 2 and result.stats["conv"] == 4
    want = {"Clip": {"min": -0.5, "max": 1.5}, "Relu": {}, "Sigmoid": {}}.get(act[0], act[1])
    for node in (model.graph.nodes[4], model.graph.nodes[6]):
        assert {k: pytest.approx(a.value) for k, a in node.attrs.items()} == want


@pytest.mark.parametrize(
    "opset, act",
    [(9, ("Relu", {}, [])), (10, ("Clip", {"min": -0.5, "max": 1.5}, [])), (13, ("Tanh", {}, []))],
)
def test_scale_shift_functions_at_old_opsets(opset, act):
    """The ONNX function bodies (padding scale/shift to [Cb, 1, 1, 8]) at the opsets the other
    NCHWc functions support; run_pass runs them in onnxruntime."""
    model, _ = run(_densenet_block(16, act, opset=opset))
    assert op_counts(model)[SS + act[0]] == 2


@pytest.mark.skipif(not KERNELS, reason="infopt._C has no NCHWc kernels (infopt.NchwcConv)")
@pytest.mark.parametrize("op, bounds", [("Clip", ["lo", "hi"]), ("Relu", []), ("Sigmoid", [])])
def test_scale_shift_runs_natively(op, bounds):
    """12 channels (padded lanes): the native kernel through a session, against onnxruntime."""
    nodes = [
        conv("x", "w", "c"),
        helper.make_node("BatchNormalization", ["x", "s", "t", "mu", "var"], ["bn"]),
        helper.make_node(op, ["bn", *bounds], ["a"]),
        conv("a", "w", "y"),
    ]
    inits = [("w", rand(8, 12, 1, 1)), ("lo", np.float32(-0.5)), ("hi", np.float32(1.5))]
    proto = graph_model(nodes, [("x", [2, 12, 9, 7])], ["c", "y"], inits + bn_params(12))
    model, report = infopt.compile(proto, passes=["infer_shapes", "layout_nchwc"])
    assert report.op_counts_after[SS + (op if op != "Sigmoid" else "")] == 1
    sess = infopt.InferenceSession(model)
    assert sess.fallback_ops == {}, sess.fallback_reasons
    feeds = {"x": rand(2, 12, 9, 7, seed=3)}
    for want, got in zip(ort_run(proto, feeds), sess.run(None, feeds), strict=True):
        assert relative_l2(want, got) <= RTOL


def test_scale_shift_keeps_padded_lanes_zero():
    """x has 12 channels (4 padded lanes once a conv blocks it): Relu and Clip(-0.5, 1.5) fuse,
    Sigmoid and Clip(0.5, 1.5) (f(0) != 0 would reach the padded lanes in the ONNX function)
    stay separate nodes."""
    for op, bounds, fused in [
        ("Relu", [], True),
        ("Clip", ["lo", "hi"], True),
        ("Sigmoid", [], False),
        ("Clip", ["hi2", "hi"], False),
    ]:
        nodes = [
            conv("x", "w", "c"),
            helper.make_node("BatchNormalization", ["x", "s", "t", "mu", "var"], ["bn"]),
            helper.make_node(op, ["bn", *bounds], ["a"]),
            conv("a", "w", "y"),
        ]
        inits = [("w", rand(8, 12, 1, 1))] + bn_params(12)
        inits += [("lo", np.float32(-0.5)), ("hi", np.float32(1.5)), ("hi2", np.float32(0.5))]
        proto = graph_model(nodes, [("x", [1, 12, 4, 4])], ["c", "y"], inits)
        model, _ = run(proto)
        if fused:
            assert ops(model) == [TO, "infopt.NchwcConv", SS + op, "infopt.NchwcConv", FROM, FROM]
        else:  # the activation reads NCHW (it would fill padded lanes) and the conv reorders
            counts = op_counts(model)
            assert counts[SS] == 1 and counts[op] == 1 and counts[TO] == 2


def test_mul_add_by_channel_constants_becomes_scale_shift():
    nodes = [
        conv("x", "w", "c"),
        helper.make_node("Mul", ["k", "c"], ["m"]),
        helper.make_node("Add", ["m", "q"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Mul", ["r", "k"], ["m2"]),  # its reader is no Add: stays
        helper.make_node("Sub", ["m2", "q"], ["y"]),
    ]
    inits = [("w", rand(16, 8, 1, 1)), ("k", rand(16, 1, 1, seed=4)), ("q", rand(16, 1, 1, seed=5))]
    proto = graph_model(nodes, [("x", [2, 8, 5, 3])], ["y"], inits)
    model, _ = run(proto)
    assert ops(model) == [TO, "infopt.NchwcConv", SS + "Relu", "Mul", "Sub", FROM]
    affine = model.graph.nodes[2]
    np.testing.assert_array_equal(affine.inputs[1].const.numpy(), inits[1][1].reshape(-1))
    np.testing.assert_array_equal(affine.inputs[2].const.numpy(), inits[2][1].reshape(-1))


def test_batchnorm_with_another_reader_keeps_its_activation_apart():
    nodes = [
        conv("x", "w", "c"),
        helper.make_node("BatchNormalization", ["c", "s", "t", "mu", "var"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Add", ["r", "bn"], ["y"]),
    ]
    proto = graph_model(
        nodes, [("x", [1, 8, 4, 4])], ["y"], [("w", rand(8, 8, 1, 1))] + bn_params()
    )
    model, _ = run(proto)
    assert ops(model) == [TO, "infopt.NchwcConv", SS, "Relu", "Add", FROM]


def test_readers_of_nchw_get_one_shared_reorder():
    nodes = [
        conv("x", "w1", "c1"),
        helper.make_node("LRN", ["c1"], ["l"], size=3),
        conv("l", "w2", "c2"),
        helper.make_node("Relu", ["c1"], ["r"]),
        helper.make_node("Flatten", ["c2"], ["f"]),
        helper.make_node("Gemm", ["f", "g"], ["y"]),
    ]
    inits = [("w1", rand(8, 3, 3, 3)), ("w2", rand(8, 8, 1, 1, seed=1)), ("g", rand(128, 4))]
    proto = graph_model(nodes, [("x", [1, 3, 6, 6])], ["y", "r", "c1"], inits)
    model, result = run(proto)
    counts = op_counts(model)
    assert counts[FROM] == 3 and counts[TO] == 1  # c1 (LRN + output), c2 (Flatten), r (output)
    assert result.stats == {"reorder_to": 1, "reorder_from": 3, "conv_nchw_input": 1, "conv": 1}
    c1 = next(v for v in model.graph.outputs if v.name == "c1")
    assert c1.producer.op_type == "ReorderFromNchwc" and len(c1.uses) == 1


def test_refuses_grouped_and_odd_output_channels():
    nodes = [
        conv("x", "w1", "c1", group=2),
        conv("c1", "w2", "y"),
    ]
    inits = [("w1", rand(16, 8, 3, 3)), ("w2", rand(12, 16, 1, 1, seed=1))]
    proto = graph_model(nodes, [("x", [1, 16, 8, 8])], ["y"], inits)
    model, result = run(proto)
    assert result.modified is False and ops(model) == ["Conv", "Conv"]
    reasons = create("layout_nchwc")
    reasons.run(model)
    assert "grouped" in " ".join(reasons.reasons.values())
    assert "12 output channels" in " ".join(reasons.reasons.values())


def test_must_not_fire_without_convolutions():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2]),
    ]
    model, result = run(graph_model(nodes, [("x", [1, 16, 8, 8])], ["y"]))
    assert result.modified is False and ops(model) == ["Relu", "MaxPool"]


def test_refuses_weight_fed_at_run_time():
    proto = graph_model([conv("x", "w", "y")], [("x", [1, 8, 4, 4]), ("w", [8, 8, 1, 1])], ["y"])
    _, result = run(proto)
    assert result.modified is False


@pytest.mark.parametrize("opset,blocked", [(17, True), (11, False)])
def test_channels_not_a_multiple_of_8(opset, blocked):
    """C = 12: from opset 12 padded to 16 lanes (kept 0: Relu yes, Sigmoid no); below, the conv
    reads NCHW (ReorderFromNchwc's function could not drop the padding)."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        conv("r", "w", "c"),
        helper.make_node("Sigmoid", ["c"], ["y"]),
    ]
    proto = graph_model(
        nodes, [("x", [1, 12, 5, 5])], ["y"], [("w", rand(8, 12, 3, 3))], opset=opset
    )
    model, _ = run(proto)
    conv_op = "infopt.NchwcConv" if blocked else "infopt.NchwcConvNchw"
    assert ops(model) == ["Relu"] + ([TO] if blocked else []) + [conv_op, "Sigmoid", FROM]
    if blocked:
        assert model.graph.nodes[1].outputs[0].shape == (1, 2, 5, 5, 8)


def test_an_nchw_operand_that_is_not_constant_reads_nchw():
    nodes = [conv("x", "w", "c"), helper.make_node("Add", ["c", "x2"], ["y"])]
    proto = graph_model(
        nodes, [("x", [1, 16, 4, 4]), ("x2", [1, 16, 4, 4])], ["y"], [("w", rand(16, 16, 1, 1))]
    )
    model, _ = run(proto)
    assert ops(model) == [TO, "infopt.NchwcConv", FROM, "Add"]


def test_padded_lanes_only_see_ops_that_keep_zeros():
    """x has 12 channels (4 zero lanes once blocked): Relu and Div by a constant (its padded
    lanes 1) may run blocked, Sigmoid may not; the blocked values read back through a
    ReorderFromNchwc that drops the padding."""
    nodes = [
        conv("x", "w", "c"),
        helper.make_node("Sigmoid", ["x"], ["s"]),
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Div", ["r", "k"], ["d"]),
    ]
    inits = [("w", rand(8, 12, 1, 1)), ("k", rand(12, 1, 1, seed=2) + 3)]
    proto = graph_model(nodes, [("x", [1, 12, 4, 4])], ["c", "s", "d"], inits)
    model, _ = run(proto)
    assert ops(model) == [TO, "infopt.NchwcConv", "Sigmoid", "Relu", "Div", FROM, FROM]
    assert model.graph.outputs[2].producer.attrs["channels"].value == 12
    divisor = model.graph.nodes[4].inputs[1].const.numpy()
    assert divisor.shape == (2, 1, 1, 8) and (divisor[1, 0, 0, 4:] == 1).all()


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_auto_pad_becomes_explicit(auto_pad):
    nodes = [conv("x", "w", "y", auto_pad=auto_pad, strides=[2, 2])]
    proto = graph_model(nodes, [("x", [1, 3, 10, 9])], ["y"], [("w", rand(8, 3, 4, 4))])
    model, _ = run(proto)
    node = model.graph.nodes[0]
    assert "auto_pad" not in node.attrs and len(node.attr("pads")) == 4


def test_auto_pad_same_with_symbolic_size_is_refused():
    nodes = [conv("x", "w", "y", auto_pad="SAME_UPPER")]
    proto = graph_model(nodes, [("x", [1, 3, "H", 9])], ["y"], [("w", rand(8, 3, 3, 3))])
    _, result = run(proto)
    assert result.modified is False


@pytest.mark.parametrize("seed", range(4))
def test_random_cnn_matches_onnxruntime(seed):
    """A random stack of conv / pool / activation / BN / concat blocks with batch 2."""
    rng = np.random.default_rng(seed)
    nodes, inits, c, cur = [], [], 3, "x"
    for i in range(5):
        m = int(rng.choice([8, 16, 24]))
        k = int(rng.choice([1, 3]))
        inits.append((f"w{i}", rand(m, c, k, k, seed=seed * 10 + i, scale=1 / np.sqrt(c * k * k))))
        nodes.append(conv(cur, f"w{i}", f"c{i}", pads=[k // 2] * 4))
        kind = int(rng.integers(0, 4))
        if kind == 0:
            nodes.append(helper.make_node("Relu", [f"c{i}"], [f"o{i}"]))
        elif kind == 1:
            nodes.append(
                helper.make_node(
                    "MaxPool", [f"c{i}"], [f"o{i}"], kernel_shape=[2, 2], pads=[0, 0, 1, 1]
                )
            )
        elif kind == 2:
            inits += [(n + str(i), a) for n, a in bn_params(m, seed=i)]
            names = [f"c{i}"] + [n + str(i) for n in ("s", "t", "mu", "var")]
            nodes.append(helper.make_node("BatchNormalization", names, [f"o{i}"]))
        else:
            nodes.append(helper.make_node("Concat", [f"c{i}", f"c{i}"], [f"o{i}"], axis=1))
            m *= 2
        cur, c = f"o{i}", m
    nodes.append(helper.make_node("GlobalAveragePool", [cur], ["y"]))
    model, result = run(graph_model(nodes, [("x", [2, 3, 11, 11])], ["y"], inits))
    assert result.stats["conv"] + result.stats["conv_nchw_input"] == 5
    assert result.stats["reorder_to"] == 0 and result.stats["reorder_from"] == 1


def _random_cnn(seed: int) -> onnx.ModelProto:
    """Blocks drawn at random: conv (odd M, strides, dilations, auto_pad, epilogues), pools,
    BN, per-channel and scalar constants, residual adds, concats; some values are also graph
    outputs."""
    rng = np.random.default_rng(seed)
    nodes, inits, outputs = [], [], []
    c_in = c = int(rng.choice([3, 8, 12, 16]))
    size, cur = 13, "x"

    def add(op, inputs, **attrs):
        name = f"v{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [name], **attrs))
        return name

    def const(array):
        inits.append((f"k{len(inits)}", np.asarray(array, np.float32)))
        return inits[-1][0]

    def conv_block(x, c, m, k=1, stride=1, dilation=1):
        w = const(rand(m, c, k, k, seed=len(inits), scale=1 / np.sqrt(c * k * k)))
        ins = [x, w] + ([const(rand(m, seed=len(inits)))] if rng.random() < 0.5 else [])
        attrs = {"strides": [stride] * 2, "dilations": [dilation] * 2}
        if rng.random() < 0.3 and dilation == 1:  # onnxruntime has no SAME with dilations
            attrs["auto_pad"] = str(rng.choice(["SAME_UPPER", "SAME_LOWER"]))
        else:
            attrs["pads"] = [(k // 2) * dilation] * 4
        return add("Conv", ins, **attrs)

    for _ in range(int(rng.integers(4, 9))):
        kind = int(rng.integers(0, 8))
        if kind <= 1:
            m = int(rng.choice([8, 16, 24, 12]))
            stride = 2 if size >= 6 and rng.random() < 0.3 else 1
            k = int(rng.choice([1, 3]))
            cur = conv_block(cur, c, m, k, stride, int(rng.choice([1, 2])) if k == 3 else 1)
            c, size = m, -(-size // stride)
            act = rng.choice(["", "Relu", "LeakyRelu", "Sigmoid", "Clip", "HardSwish", "Tanh"])
            if act == "Clip":
                cur = add("Clip", [cur, const(0.0), const(6.0)])
            elif act:
                cur = add(str(act), [cur])
        elif kind == 2 and size >= 4:
            ceil = int(rng.integers(0, 2))
            cur = add("MaxPool", [cur], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=ceil)
            size = (size - 3 + (1 if ceil else 0)) // 2 + 1
        elif kind == 3:
            include = int(rng.integers(0, 2))
            cur = add(
                "AveragePool", [cur], kernel_shape=[3, 3], pads=[1] * 4, count_include_pad=include
            )
        elif kind == 4:
            names = [const(a) for _, a in bn_params(c, seed=len(inits))]
            cur = add("BatchNormalization", [cur, *names])
        elif kind == 5:
            op = str(rng.choice(["Mul", "Add", "Sub", "Div", "Max"]))
            k = rand(c, 1, 1, seed=len(inits)) if rng.random() < 0.7 else rand(1, seed=3)
            cur = add(op, [cur, const(np.abs(k) + 0.5 if op == "Div" else k)])
        elif kind == 6:
            cur = add("Relu", [add("Add", [conv_block(cur, c, c), cur])])
        else:
            cur = add("Concat", [cur, conv_block(cur, c, 8)], axis=1)
            c += 8
        if rng.random() < 0.2:
            outputs.append(cur)
    outputs = [o for o in dict.fromkeys(outputs) if o != cur]
    return graph_model(nodes, [("x", ["N", c_in, 13, 13])], [cur, *outputs], inits)


@pytest.mark.parametrize("chunk", range(4))
def test_random_cnns_through_o2_match_onnxruntime(chunk):
    """-O2 with layout_nchwc on 15 random CNNs per chunk, batch 2; the .opt (functions and all)
    in onnxruntime against the original. Seeds where the pass fires are counted."""
    fired = 0
    for seed in range(chunk, 60, 4):
        proto = _random_cnn(seed)
        model, report = infopt.compile(proto, passes=O2)
        fired += next(r for r in report.passes if r.name == "layout_nchwc").modified
        feeds = {
            "x": rand(
                2,
                *[d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim][1:],
                seed=seed,
            )
        }
        wants = ort_run(proto, feeds)
        runs = {"onnxruntime": ort_run(model, feeds)}
        if KERNELS:  # the native kernels on the same graphs
            runs["infopt"] = infopt.InferenceSession(model).run(None, feeds)
        for where, gots in runs.items():
            for i, (want, got) in enumerate(zip(wants, gots, strict=True)):
                err = relative_l2(want, got)
                assert err <= MODEL_RTOL, f"seed {seed} {where}, output {i}: rel. L2 {err:.3g}"
    assert fired >= 10


def test_symbolic_batch_and_size():
    nodes = [conv("x", "w1", "c1", pads=[1, 1, 1, 1]), conv("c1", "w2", "y")]
    inits = [("w1", rand(8, 3, 3, 3)), ("w2", rand(16, 8, 1, 1, seed=1))]
    proto = graph_model(nodes, [("x", ["N", 3, "H", "W"])], ["y"], inits)
    model, _ = run(proto)
    assert model.graph.nodes[1].outputs[0].shape[:2] == ("N", 2)
    feeds = {"x": rand(3, 3, 7, 5, seed=9)}
    assert relative_l2(ort_run(proto, feeds)[0], ort_run(model, feeds)[0]) <= RTOL


# name -> (NchwcConv* over NCHWc input, NchwcConvNchw*, pools, ReorderTo, ReorderFrom)
LIGHT = {
    "resnet50": (52, 1, 2, 0, 1),
    "squeezenet": (25, 1, 4, 0, 1),
    "densenet121": (120, 1, 5, 0, 1),
    "inception_v1": (56, 1, 13, 2, 3),
}


@pytest.mark.parametrize("name", LIGHT)
def test_light_model(name, tmp_path):
    path, feeds = light_model(name)
    model, result = run_pipeline(path, o2_until("layout_nchwc"), feeds, rtol=MODEL_RTOL)
    counts = op_counts(model)
    blocked_convs = sum(
        v for k, v in counts.items() if k.startswith("infopt.NchwcConv") and "Nchw" not in k[16:]
    )
    plain_convs = sum(v for k, v in counts.items() if k.startswith("infopt.NchwcConvNchw"))
    pools = sum(v for k, v in counts.items() if "Pool" in k and k.startswith("infopt.Nchwc"))
    assert (blocked_convs, plain_convs, pools, counts.get(TO, 0), counts.get(FROM, 0)) == LIGHT[
        name
    ]
    assert "Conv" not in counts and not any(k.startswith("infopt.FusedConv") for k in counts)
    # DenseNet's 62 BatchNormalization + Relu pairs: one NchwcScaleShiftRelu each
    assert counts.get(SS + "Relu", 0) == (62 if name == "densenet121" else 0)
    assert not {"BatchNormalization", "Mul", "Add", "Relu", SS} & set(counts)
    out = tmp_path / f"{name}.opt"
    infopt.save(model, out)
    onnx.checker.check_model(str(out), full_check=True)


def test_pipeline_has_the_pass_only_for_cpu_with_kernels():
    assert "layout_nchwc" not in pipeline(2, "cuda") and "layout_nchwc" not in pipeline(
        2, "onnx", 17
    )
    assert ("layout_nchwc" in pipeline(2, "cpu")) == native_nchwc() == KERNELS
    assert "layout_nchwc" not in pipeline(1, "cpu")


def test_runtime_maps_to_native_ops():
    """The mapping to native ops, whether or not this build has the kernels."""
    nodes = [
        conv("x", "w1", "c1", pads=[1, 1, 1, 1]),
        helper.make_node("LeakyRelu", ["c1"], ["a"], alpha=0.2),
        conv("a", "w2", "c2"),
        helper.make_node("Add", ["c2", "a"], ["s"]),
        helper.make_node("Clip", ["s", "lo", "hi"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2], storage_order=0),
    ]
    inits = [
        ("w1", rand(8, 3, 3, 3)),
        ("w2", rand(8, 8, 1, 1)),
        ("lo", np.float32(0)),
        ("hi", np.float32(6)),
    ]
    proto = graph_model(nodes, [("x", [1, 3, 6, 6])], ["y"], inits)
    model, _ = run_pass(
        "layout_nchwc", proto, before=("infer_shapes", "fold_constants", "fuse_conv_activation")
    )
    native = {f"infopt.{n}" for n in ("NchwcConv", "NchwcMaxPool", "ReorderFromNchwc")}
    steps = [canonical_native_step(n, 17, {}, native) for n in model.graph.nodes]
    assert [s[0] for s in steps] == [
        "infopt.NchwcConv",
        "infopt.NchwcConv",
        "infopt.NchwcMaxPool",
        "infopt.ReorderFromNchwc",
    ]
    assert steps[0][2] == {
        "pads": [1, 1, 1, 1],
        "activation": "LeakyRelu",
        "activation_params": [pytest.approx(0.2)],
    }
    assert steps[1][2]["activation"] == "Clip" and steps[1][2]["activation_params"] == [0.0, 6.0]
    assert steps[1][1][3] is model.graph.nodes[0].outputs[0]  # residual Z, NCHWc
    assert steps[2][2] == {"kernel_shape": [2, 2], "pads": [0, 0, 0, 0]} and steps[3][2] == {
        "channels": 8
    }


def test_runtime_maps_scale_shift_to_the_native_op():
    proto = _densenet_block(16, ("Clip", {}, ["lo", "hi"]))
    model, _ = run_pass("layout_nchwc", proto)
    native = {"infopt.NchwcConv", "infopt.NchwcScaleShift", FROM}
    op, inputs, attrs = canonical_native_step(model.graph.nodes[4], 17, {}, native)
    assert op == SS and attrs == {"activation": "Clip", "activation_params": [-0.5, 1.5]}
    assert [v.shape for v in inputs] == [("N", 2, 6, 7, 8), (16,), (16,)]


def test_session_runs_the_layout_with_or_without_kernels():
    """Without the native kernels the ops fall back to their ONNX functions; with them, no
    fallback."""
    nodes = [
        conv("x", "w1", "c1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r"]),
        conv("r", "w2", "y"),
    ]
    inits = [("w1", rand(16, 3, 3, 3)), ("w2", rand(8, 16, 3, 3, seed=1))]
    proto = graph_model(nodes, [("x", [2, 3, 9, 9])], ["y"], inits)
    model, _ = infopt.compile(
        proto, passes=["infer_shapes", "fuse_conv_activation", "layout_nchwc"]
    )
    sess = infopt.InferenceSession(model)
    feeds = {"x": rand(2, 3, 9, 9, seed=3)}
    assert relative_l2(ort_run(proto, feeds)[0], sess.run(None, feeds)[0]) <= RTOL
    if KERNELS:
        assert sess.fallback_ops == {}, sess.fallback_reasons
    else:
        assert "infopt.NchwcConvNchwRelu" in sess.fallback_ops


@pytest.mark.skipif(not KERNELS, reason="infopt._C has no NCHWc kernels (infopt.NchwcConv)")
@pytest.mark.parametrize("name", LIGHT)
def test_light_model_runs_natively(name):
    path, feeds = light_model(name)
    model, report = infopt.compile(path, level=2, target="cpu")
    assert any(k.startswith("infopt.Nchwc") for k in report.op_counts_after)
    sess = infopt.InferenceSession(model)
    assert sess.fallback_ops == {}, sess.fallback_reasons
    for f in feeds:
        assert relative_l2(ort_run(path, f)[0], sess.run(None, f)[0]) <= MODEL_RTOL
