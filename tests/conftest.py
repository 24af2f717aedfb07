"""Suite-wide settings and small shared fixtures.

``INFOPT_VERIFY=1`` is set at import, before any test runs, so every pass manager created in the
test process (and every CLI subprocess, which inherits the environment) runs the IR verifier
after each pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import onnx
import pytest
from onnx import TensorProto, helper

os.environ["INFOPT_VERIFY"] = "1"


ValueSpec = tuple[str, int, Sequence[int | str | None]]


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[ValueSpec] = (("x", TensorProto.FLOAT, (2, 3)),),
    outputs: Sequence[ValueSpec] = (("y", TensorProto.FLOAT, (2, 3)),),
    *,
    initializers: Sequence[onnx.TensorProto] = (),
    opset: int = 17,
    name: str = "g",
) -> onnx.ModelProto:
    """A model built with onnx.helper; no checker run, so broken models can be made on purpose."""
    graph = helper.make_graph(
        list(nodes),
        name,
        [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in outputs],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


@pytest.fixture
def model_builder() -> Callable[..., onnx.ModelProto]:
    return make_model


@pytest.fixture
def tiny_model() -> onnx.ModelProto:
    """y = Relu(x + 1): two nodes, one initializer, valid."""
    return onnx.parser.parse_model(
        """
        <ir_version: 8, opset_import: ["" : 17]>
        tiny (float[2,3] x) => (float[2,3] y) <float[1] one = {1.0}> {
            s = Add(x, one)
            y = Relu(s)
        }
        """
    )
