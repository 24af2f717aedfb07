"""The fallback evaluator, including where it replaces onnx's reference evaluator."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import infopt
from infopt.runtime.fallback import NodeEvaluator
from infopt.testing.oracle import ort_run

pytest.importorskip("onnxruntime")


def _single(op, inputs, opset=17, out_dtype=TensorProto.FLOAT, **attrs):
    names = [f"x{i}" for i in range(len(inputs))]
    graph = helper.make_graph(
        [helper.make_node(op, names, ["y"], **attrs)],
        "g",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in zip(names, inputs, strict=True)
        ],
        [helper.make_tensor_value_info("y", out_dtype, None)],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model = infopt.load(proto)
    return proto, NodeEvaluator(model.graph.nodes[0], model)


def test_gather_elements_where_the_reference_evaluator_fails():
    # the shape MiniLM's token-type lookup has: data [1, 512], indices [1, 8], axis 1
    data = np.random.default_rng(0).integers(-50, 50, size=(1, 512)).astype(np.int64)
    indices = np.array([[0, 3, -1, 7, 511, 2, -512, 9]], np.int64)
    proto, evaluator = _single(
        "GatherElements", [data, indices], out_dtype=TensorProto.INT64, axis=1
    )
    (got,) = evaluator([data, indices])
    np.testing.assert_array_equal(got, ort_run(proto, {"x0": data, "x1": indices})[0])


@pytest.mark.parametrize("op,attrs", [("LRN", {"size": 5}), ("Softmax", {})])
def test_overrides_match_onnxruntime(op, attrs):
    x = (np.random.default_rng(1).standard_normal((2, 7, 3, 3)) * 3).astype(np.float32)
    proto, evaluator = _single(op, [x], opset=9, **attrs)
    (got,) = evaluator([x])
    np.testing.assert_allclose(got, ort_run(proto, {"x0": x})[0], rtol=1e-5, atol=1e-6)
