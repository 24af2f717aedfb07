"""infer_shapes: dtypes and shapes on every value, symbolic dims kept, advisory on unknown ops."""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper
from passcheck import graph_model, light_model, run_pass, run_pipeline

import infopt
from infopt.passes import create

pytest.importorskip("onnxruntime")
F = TensorProto.FLOAT


def _chain():
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
        helper.make_node("MatMul", ["t", "w"], ["m"]),
        helper.make_node("Relu", ["m"], ["y"]),
    ]
    return graph_model(nodes, [("x", ["batch", 3]), ("w", ["batch", 5])], ["y"])


def test_types_every_intermediate_and_keeps_symbolic_dims():
    model, result = run_pass("infer_shapes", _chain(), before=())
    assert result.stats == {"values_typed": 3, "dims_refined": 0}
    shapes = {
        n.outputs[0].name: (n.outputs[0].dtype, n.outputs[0].shape) for n in model.graph.nodes
    }
    assert shapes == {"t": (F, (3, "batch")), "m": (F, (3, 5)), "y": (F, (3, 5))}


def test_already_typed_graph_is_left_alone():
    proto = _chain()
    proto.graph.value_info.extend(
        [
            helper.make_tensor_value_info("t", F, [3, "batch"]),
            helper.make_tensor_value_info("m", F, [3, 5]),
        ]
    )
    proto.graph.output[0].type.tensor_type.shape.dim.add().dim_value = 3
    proto.graph.output[0].type.tensor_type.shape.dim.add().dim_value = 5
    _, result = run_pass("infer_shapes", proto, before=())
    assert result.modified is False and result.stats == {"values_typed": 0, "dims_refined": 0}


def test_stops_at_an_unknown_custom_op_without_failing():
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
        helper.make_node("MyOp", ["t"], ["m"], domain="custom"),
        helper.make_node("Relu", ["m"], ["y"]),
    ]
    model = infopt.load(graph_model(nodes, [("x", [2, 3])], ["y"], domains=["custom"]))
    result = create("infer_shapes").run(model)
    t, m, y = (n.outputs[0] for n in model.graph.nodes)
    assert result.stats == {"values_typed": 1, "dims_refined": 0} and t.shape == (3, 2)
    assert m.dtype is None and m.shape is None and y.shape is None
    assert create("infer_shapes").run(model).modified is False


def test_squeezenet_every_float_output_typed():
    path, feeds = light_model("squeezenet")
    model, result = run_pipeline(path, ["infer_shapes"], feeds[:1], rtol=0.0)
    assert result.stats == {"values_typed": 65, "dims_refined": 0}
    # the unused Dropout mask is the one output left untyped
    untyped = [
        (n.op_type, v.output_index)
        for n in model.graph.nodes
        for v in n.outputs
        if v.dtype != F or not v.shape
    ]
    assert untyped == [("Dropout", 1)]
