"""InferenceSession with CUDAExecutionProvider, run on Triton's interpreter: the onnxruntime
surface over the GPU plan, matching onnxruntime's CPU outputs."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import infopt
from infopt.testing.compare import relative_l2
from infopt.testing.oracle import ort_run

pytest.importorskip("onnxruntime")


def _mlp():
    rng = np.random.default_rng(4)
    inits = [
        numpy_helper.from_array(rng.standard_normal((24, 40)).astype(np.float32) * 0.2, "w1"),
        numpy_helper.from_array(rng.standard_normal(40).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.standard_normal((40, 8)).astype(np.float32) * 0.2, "w2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["m"]),
        helper.make_node("Add", ["m", "b1"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["z"]),
        helper.make_node("Softmax", ["z"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 24])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_session_on_cuda_provider_matches_onnxruntime():
    proto = _mlp()
    model, _ = infopt.compile(proto, level=2, target="cuda")
    session = infopt.InferenceSession(model, providers=["CUDAExecutionProvider"])
    assert session.get_providers()[0] == "CUDAExecutionProvider"
    assert [i.name for i in session.get_inputs()] == ["x"]
    for batch in (1, 5):
        x = {"x": np.random.default_rng(batch).standard_normal((batch, 24)).astype(np.float32)}
        got = session.run(None, x)[0]
        assert isinstance(got, np.ndarray)
        assert relative_l2(ort_run(proto, x)[0], got) <= 1e-5
    with pytest.raises(infopt.InputError, match="input 'x' has dtype float64"):
        session.run(None, {"x": np.ones((2, 24))})


def test_cpu_layout_ops_fall_back_on_the_cuda_provider():
    """A .opt compiled for target cpu may carry the NCHWc layout (``layout_nchwc``), which the
    cuda target never writes: its ops run through their ONNX functions, correctly."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((16, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal((8, 16, 1, 1)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model, _ = infopt.compile(
        proto, passes=["infer_shapes", "fuse_conv_activation", "layout_nchwc"]
    )
    session = infopt.InferenceSession(model, providers=["CUDAExecutionProvider"])
    x = {"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)}
    assert relative_l2(ort_run(proto, x)[0], session.run(None, x)[0]) <= 1e-5
    assert "infopt.NchwcConvNchwRelu" in session.fallback_ops
