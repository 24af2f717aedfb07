"""fuse_conv_activation: Conv [+ residual Add] [+ activation] -> one infopt FusedConv* op;
structure, refusals, numerics against onnxruntime, invariants (``run_pass``)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from passcheck import graph_model, light_model, o2_until, ops, rand, run_pass, run_pipeline

import infopt
from infopt.testing.compare import relative_l2
from infopt.testing.models import resolve, with_random_weights
from infopt.testing.oracle import ort_run

pytest.importorskip("onnxruntime")
RTOL = 1e-5  # relative L2: same arithmetic, only the function inlining differs


def _conv_model(tail: list[onnx.NodeProto], extra_outputs=(), residual=True) -> onnx.ModelProto:
    inputs = [("x", [1, 3, 10, 10])] + ([("r", [1, 8, 10, 10])] if residual else [])
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv0"),
        *tail,
    ]
    outputs = [tail[-1].output[0] if tail else "c", *extra_outputs]
    inits = [("w", rand(8, 3, 3, 3)), ("b", rand(8, seed=1))]
    return graph_model(nodes, inputs, outputs, inits)


@pytest.mark.parametrize(
    "act,attrs",
    [
        ("Relu", {}),
        ("LeakyRelu", {"alpha": 0.2}),
        ("Sigmoid", {}),
        ("Tanh", {}),
        ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
    ],
)
def test_conv_add_activation_becomes_one_node(act, attrs):
    proto = _conv_model(
        [helper.make_node("Add", ["c", "r"], ["s"]), helper.make_node(act, ["s"], ["y"], **attrs)]
    )
    model, result = run_pass("fuse_conv_activation", proto, rtol=RTOL)
    assert result.modified and result.stats["conv_add"] == 1 and result.stats["applied"] == 2
    assert ops(model) == [f"infopt.FusedConvAdd{act}"]
    assert model.function("infopt", f"FusedConvAdd{act}") is not None


def test_residual_on_the_left_and_sum():
    proto = _conv_model(
        [helper.make_node("Sum", ["r", "c"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    )
    model, result = run_pass("fuse_conv_activation", proto, rtol=RTOL)
    assert ops(model) == ["infopt.FusedConvAddRelu"] and result.stats["applied"] == 2


def test_conv_relu_without_residual():
    proto = _conv_model([helper.make_node("Relu", ["c"], ["y"])], residual=False)
    model, result = run_pass("fuse_conv_activation", proto, rtol=RTOL)
    assert ops(model) == ["infopt.FusedConvRelu"]
    assert result.stats["applied"] == 1 and result.stats["conv_relu"] == 1


def test_refuses_when_intermediate_has_second_user():
    proto = _conv_model(
        [helper.make_node("Relu", ["c"], ["y"])], extra_outputs=["c"], residual=False
    )
    model, result = run_pass("fuse_conv_activation", proto)
    assert result.modified is False
    assert ops(model) == ["Conv", "Relu"]


def test_refuses_broadcast_residual():
    proto = _conv_model([helper.make_node("Add", ["c", "r"], ["y"])], residual=False)
    proto.graph.input.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 8, 1, 1]))
    _, result = run_pass("fuse_conv_activation", proto)
    assert result.modified is False


def test_refuses_clip_with_a_non_constant_bound():
    proto = _conv_model([helper.make_node("Clip", ["c", "lo", "hi"], ["y"])], residual=False)
    proto.graph.input.append(helper.make_tensor_value_info("hi", TensorProto.FLOAT, []))
    proto.graph.initializer.append(onnx.numpy_helper.from_array(np.array(0.0, np.float32), "lo"))
    model, result = run_pass("fuse_conv_activation", proto)
    assert result.modified is False and ops(model) == ["Conv", "Clip"]


def test_second_run_changes_nothing():
    # run_pass checks this for every test; here on the two-rewrite residual case explicitly
    proto = _conv_model(
        [helper.make_node("Add", ["c", "r"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    )
    model, _ = run_pass("fuse_conv_activation", proto)
    again = infopt.passes.create("fuse_conv_activation").run(model)
    assert again.modified is False and again.stats["applied"] == 0


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
    inits = [("w", rand(4, 3, 3, 3)), ("b", rand(4))]
    if extra:
        inits += [("lo", np.array(0.0, np.float32)), ("hi", np.array(6.0, np.float32))]
    proto = graph_model(nodes, [("x", [1, 3, 6, 6])], ["y"], inits)
    model, result = run_pass("fuse_conv_activation", proto)
    assert ops(model) == [f"infopt.FusedConv{act}"] and result.stats["applied"] == 1


def test_conv_silu():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Sigmoid", ["c"], ["g"]),
        helper.make_node("Mul", ["g", "c"], ["y"]),
    ]
    proto = graph_model(nodes, [("x", [1, 3, 6, 6])], ["y"], [("w", rand(4, 3, 3, 3))])
    model, result = run_pass("fuse_conv_activation", proto)
    assert ops(model) == ["infopt.FusedConvSilu"] and result.stats["conv_silu"] == 1


def test_squeezenet_fuses_every_conv_relu_and_matches_onnxruntime():
    proto = with_random_weights(resolve("squeezenet"), seed=3)
    # -O2 up to this pass: for target cpu, layout_nchwc may carry the fusions on into NCHWc
    model, report = infopt.compile(proto, passes=o2_until("fuse_conv_activation"))
    assert report.op_counts_after.get("infopt.FusedConvRelu") == 26
    assert "Conv" not in report.op_counts_after
    rng = np.random.default_rng(5)
    for _ in range(2):
        feeds = {"data_0": rng.standard_normal((1, 3, 224, 224)).astype(np.float32)}
        assert relative_l2(ort_run(proto, feeds)[0], ort_run(model, feeds)[0]) <= 1e-4


def test_shufflenet_residual_adds_fuse():
    path, feeds = light_model("shufflenet")
    model, result = run_pipeline(path, o2_until("fuse_conv_activation"), feeds, rtol=1e-4)
    stats = {k: v for k, v in result.stats.items() if k not in ("attempted", "failed")}
    assert stats == {"applied": 43, "conv_add": 13, "conv_relu": 17, "conv_add_relu": 13}
    # 13 + 17 of the 49 Convs took an epilogue; the other 19 feed a Conv or a Concat directly
    assert ops(model).count("infopt.FusedConvAddRelu") == 13 and ops(model).count("Conv") == 19
