"""fuse_conv_activation: structure, refusals, numerics against onnxruntime, invariants."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import infopt
from infopt.ir import serde, verify
from infopt.passes import create
from infopt.testing.compare import relative_l2
from infopt.testing.models import resolve, with_random_weights
from infopt.testing.oracle import ort_run

pytest.importorskip("onnxruntime")
RTOL = 1e-5  # relative L2: same arithmetic, only the function inlining differs


def _conv_model(tail: list[onnx.NodeProto], extra_outputs=(), residual=True) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])]
    if residual:
        inputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 8, 10, 10]))
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv0"),
        *tail,
    ]
    outputs = [
        helper.make_tensor_value_info(tail[-1].output[0] if tail else "c", TensorProto.FLOAT, None)
    ]
    outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in extra_outputs]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=[w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _feeds(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((1, 3, 10, 10)).astype(np.float32),
        "r": rng.standard_normal((1, 8, 10, 10)).astype(np.float32),
    }


def _run_pass(proto):
    model = infopt.load(proto)
    create("infer_shapes").run(model)
    result = create("fuse_conv_activation").run(model)
    verify(model)
    return model, result


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
    model, result = _run_pass(proto)
    assert result.modified and result.stats["conv_add"] == 1 and result.stats["applied"] == 2
    assert [n.qualified_op for n in model.graph.nodes] == [f"infopt.FusedConvAdd{act}"]
    assert model.graph.outputs[0].name == "y"
    assert model.function("infopt", f"FusedConvAdd{act}") is not None
    feeds = _feeds()
    assert relative_l2(ort_run(proto, feeds)[0], ort_run(model, feeds)[0]) <= RTOL


def test_residual_on_the_left_and_sum():
    proto = _conv_model(
        [helper.make_node("Sum", ["r", "c"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    )
    model, result = _run_pass(proto)
    assert [n.op_type for n in model.graph.nodes] == ["FusedConvAddRelu"]
    feeds = _feeds(1)
    assert relative_l2(ort_run(proto, feeds)[0], ort_run(model, feeds)[0]) <= RTOL


def test_conv_relu_without_residual():
    proto = _conv_model([helper.make_node("Relu", ["c"], ["y"])], residual=False)
    model, result = _run_pass(proto)
    assert [n.op_type for n in model.graph.nodes] == ["FusedConvRelu"]
    assert result.stats["applied"] == 1 and result.stats["conv_relu"] == 1


def test_refuses_when_intermediate_has_second_user():
    proto = _conv_model(
        [helper.make_node("Relu", ["c"], ["y"])], extra_outputs=["c"], residual=False
    )
    model, result = _run_pass(proto)
    assert result.modified is False
    assert [n.op_type for n in model.graph.nodes] == ["Conv", "Relu"]


def test_refuses_broadcast_residual():
    proto = _conv_model([helper.make_node("Add", ["c", "r"], ["y"])], residual=False)
    proto.graph.input.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 8, 1, 1]))
    model, result = _run_pass(proto)
    assert result.modified is False


def test_second_run_changes_nothing():
    proto = _conv_model(
        [helper.make_node("Add", ["c", "r"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    )
    model, _ = _run_pass(proto)
    before = serde.to_bytes(model)
    again = create("fuse_conv_activation").run(model)
    assert again.modified is False and serde.to_bytes(model) == before


def test_squeezenet_fuses_every_conv_relu_and_matches_onnxruntime():
    proto = with_random_weights(resolve("squeezenet"), seed=3)
    model, report = infopt.compile(proto, level=2, target="cpu")
    assert report.op_counts_after.get("infopt.FusedConvRelu") == 26
    assert "Conv" not in report.op_counts_after
    rng = np.random.default_rng(5)
    for _ in range(2):
        feeds = {"data_0": rng.standard_normal((1, 3, 224, 224)).astype(np.float32)}
        assert relative_l2(ort_run(proto, feeds)[0], ort_run(model, feeds)[0]) <= 1e-4
