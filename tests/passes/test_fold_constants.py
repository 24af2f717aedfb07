"""fold_constants: constant subgraphs and static shape chains become initializers; size limits,
overridable inputs and symbolic dims are left alone."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from passcheck import graph_model, hf_model, o2_until, ops, rand, run_pass, run_pipeline

pytest.importorskip("onnxruntime")
F = TensorProto.FLOAT


def _i64(*v):
    return np.array(v, dtype=np.int64)


def test_fold_shape_chain_into_reshape_constant():
    nodes = [
        helper.make_node("Shape", ["w"], ["s"]),
        helper.make_node(
            "Constant", [], ["idx"], value=helper.make_tensor("", TensorProto.INT64, [1], [1])
        ),
        helper.make_node("Gather", ["s", "idx"], ["d"], axis=0),
        helper.make_node("Concat", ["minus1", "d"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = [("w", rand(2, 6)), ("minus1", _i64(-1))]
    proto = graph_model(nodes, [("x", [4, 3])], ["y"], inits)
    model, result = run_pass("fold_constants", proto, rtol=0.0)
    assert result.stats["folded"] == 4
    assert ops(model) == ["Reshape"]
    np.testing.assert_array_equal(model.graph.nodes[0].inputs[1].const.numpy(), [-1, 6])


def test_fold_refuses_to_expand_into_huge_tensor():
    nodes = [
        helper.make_node("Expand", ["one", "shape"], ["big"]),
        helper.make_node("Add", ["x", "big"], ["y"]),
    ]
    inits = [("one", np.array(1.5, dtype=np.float32)), ("shape", _i64(1024, 1024))]
    proto = graph_model(nodes, [("x", [1024, 1024])], ["y"], inits)
    model, result = run_pass("fold_constants", proto, rtol=0.0, seeds=(0,))
    assert result.modified is False and result.stats["skipped_size"] == 1
    assert ops(model) == ["Expand", "Add"]


def test_fold_leaves_graph_input_initializers_alone():
    # IR v3 style: 'k' is an initializer but also an input, so callers may override it
    nodes = [helper.make_node("Neg", ["k"], ["nk"]), helper.make_node("Add", ["x", "nk"], ["y"])]
    proto = graph_model(
        nodes, [("x", [1]), ("k", [1])], ["y"], [("k", np.array([2.0], np.float32))]
    )
    _, result = run_pass("fold_constants", proto)
    assert result.modified is False
    _, freeze_result = run_pass("freeze_initializer_inputs", proto)
    assert freeze_result.stats == {"frozen": 1}
    _, result = run_pass(
        "fold_constants", proto, before=("infer_shapes", "freeze_initializer_inputs")
    )
    assert result.stats["folded"] == 1


def test_fold_shape_of_static_and_gather_of_symbolic_dims():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i2"], ["d"], axis=0),
        helper.make_node("Concat", ["minus1", "d"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = [("i2", _i64(2)), ("minus1", _i64(-1))]
    proto = graph_model(nodes, [("x", ["batch", "seq", 8])], ["y"], inits)
    model, result = run_pass("fold_constants", proto)
    assert result.stats["folded"] == 2
    assert ops(model) == ["Shape", "Reshape"]  # the unread Shape is left to dead-code removal
    np.testing.assert_array_equal(model.graph.nodes[1].inputs[1].const.numpy(), [-1, 8])


def test_fold_keeps_symbolic_shape_dims():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["d"], axis=0),
        helper.make_node("Concat", ["d", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = [("i0", _i64(0)), ("minus1", _i64(-1))]
    proto = graph_model(nodes, [("x", ["batch", 8])], ["y"], inits)
    _, result = run_pass("fold_constants", proto)
    assert result.modified is False


def test_fold_cast_of_initializer():
    nodes = [
        helper.make_node("Cast", ["k"], ["kf"], to=F),
        helper.make_node("Add", ["x", "kf"], ["y"]),
    ]
    proto = graph_model(nodes, [("x", [3])], ["y"], [("k", np.arange(1, 4, dtype=np.int64))])
    model, result = run_pass("fold_constants", proto)
    assert ops(model) == ["Add"] and result.stats["folded"] == 1


def test_constant_graph_output_keeps_its_name():
    nodes = [
        helper.make_node("Neg", ["k"], ["y"]),
        helper.make_node("Add", ["x", "y"], ["z"]),
    ]
    proto = graph_model(nodes, [("x", [3])], ["y", "z"], [("k", rand(3, seed=2))])
    model, result = run_pass("fold_constants", proto, rtol=0.0)
    assert result.stats["folded"] == 1 and ops(model) == ["Add"]
    assert "y" in model.graph.initializers


def test_gpt2_shape_chains_fold():
    path, feeds = hf_model("gpt2")
    model, result = run_pipeline(path, o2_until("fold_constants"), feeds, rtol=1e-6)
    assert result.stats == {"folded": 239, "skipped_size": 0, "failed": 0}
    assert "Constant" not in ops(model)
