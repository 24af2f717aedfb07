"""fold_constants, remove_identity, eliminate_dead_code, freeze_initializer_inputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import infopt
from infopt.ir import serde, verify
from infopt.passes import create
from infopt.testing.compare import relative_l2
from infopt.testing.models import LIGHT_MODELS, resolve
from infopt.testing.oracle import ort_run

pytest.importorskip("onnxruntime")


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, shape=None, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def _run(name, proto_or_model):
    model = (
        proto_or_model
        if isinstance(proto_or_model, infopt.ir.Model)
        else infopt.load(proto_or_model)
    )
    result = create(name).run(model)
    verify(model)
    again = create(name).run(model)
    assert again.modified is False, f"{name} is not idempotent"
    return model, result


def test_fold_shape_chain_into_reshape_constant():
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((2, 6)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Shape", ["w"], ["s"]),
        helper.make_node(
            "Constant", [], ["idx"], value=helper.make_tensor("", TensorProto.INT64, [1], [1])
        ),
        helper.make_node("Gather", ["s", "idx"], ["d"], axis=0),
        helper.make_node("Concat", ["minus1", "d"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    minus1 = numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus1")
    proto = _model(nodes, [_vi("x", [4, 3])], [_vi("y")], [w, minus1])
    model, result = _run("fold_constants", proto)
    assert result.stats["folded"] == 4
    assert [n.op_type for n in model.graph.nodes] == ["Reshape"]
    shape_const = model.graph.nodes[0].inputs[1].const.numpy()
    np.testing.assert_array_equal(shape_const, [-1, 6])
    x = {"x": rng.standard_normal((4, 3)).astype(np.float32)}
    np.testing.assert_array_equal(ort_run(proto, x)[0], ort_run(model, x)[0])


def test_fold_refuses_to_expand_into_huge_tensor():
    nodes = [
        helper.make_node("Expand", ["one", "shape"], ["big"]),
        helper.make_node("Add", ["x", "big"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(1.5, dtype=np.float32), "one"),
        numpy_helper.from_array(np.array([1024, 1024], dtype=np.int64), "shape"),
    ]
    proto = _model(nodes, [_vi("x", [1024, 1024])], [_vi("y")], inits)
    model, result = _run("fold_constants", proto)
    assert result.modified is False and result.stats["skipped_size"] == 1
    assert [n.op_type for n in model.graph.nodes] == ["Expand", "Add"]


def test_fold_leaves_graph_input_initializers_alone():
    # IR v3 style: 'k' is an initializer but also an input, so callers may override it
    nodes = [helper.make_node("Neg", ["k"], ["nk"]), helper.make_node("Add", ["x", "nk"], ["y"])]
    k = numpy_helper.from_array(np.array([2.0], dtype=np.float32), "k")
    proto = _model(nodes, [_vi("x", [1]), _vi("k", [1])], [_vi("y")], [k])
    model, result = _run("fold_constants", proto)
    assert result.modified is False
    frozen, freeze_result = _run("freeze_initializer_inputs", model)
    assert freeze_result.stats == {"frozen": 1}
    folded, fold_result = _run("fold_constants", frozen)
    assert fold_result.stats["folded"] == 1


def test_remove_identity_and_dropout_keeps_output_names():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Dropout", ["r"], ["d"]),
        helper.make_node("Identity", ["d"], ["y"]),
    ]
    proto = _model(nodes, [_vi("x", [3, 5])], [_vi("y")])
    model, result = _run("remove_identity", proto)
    assert result.stats["removed"] == 2
    assert [n.op_type for n in model.graph.nodes] == ["Relu"]
    assert model.graph.outputs[0].name == "y"
    x = {"x": np.random.default_rng(1).standard_normal((3, 5)).astype(np.float32)}
    np.testing.assert_array_equal(ort_run(proto, x)[0], ort_run(model, x)[0])


def test_remove_identity_refuses_dropout_with_used_mask():
    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"])]
    proto = _model(nodes, [_vi("x", [3])], [_vi("d"), _vi("mask", dtype=TensorProto.BOOL)])
    _, result = _run("remove_identity", proto)
    assert result.modified is False


def test_identity_between_graph_input_and_output_stays():
    proto = _model([helper.make_node("Identity", ["x"], ["y"])], [_vi("x", [2])], [_vi("y")])
    _, result = _run("remove_identity", proto)
    assert result.modified is False


def test_dead_code_elimination():
    nodes = [
        helper.make_node("Relu", ["x"], ["y"]),
        helper.make_node("Neg", ["x"], ["unused"]),
        helper.make_node("Exp", ["unused"], ["unused2"]),
    ]
    inits = [numpy_helper.from_array(np.ones(3, dtype=np.float32) * 3, "lonely")]
    proto = _model(nodes, [_vi("x", [3])], [_vi("y")], inits)
    model, result = _run("eliminate_dead_code", proto)
    assert result.stats == {"nodes_removed": 2, "initializers_removed": 1}
    assert [n.op_type for n in model.graph.nodes] == ["Relu"]


def test_dead_code_keeps_everything_live():
    proto = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [3])], [_vi("y")])
    _, result = _run("eliminate_dead_code", proto)
    assert result.modified is False


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_o1_on_light_models_matches_onnxruntime(name):
    from infopt.testing.models import random_weight_model

    path = random_weight_model(name, seed=11)
    proto = onnx.load(str(path))
    model, report = infopt.compile(path, level=1, target="cpu")
    data = next(
        i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}
    )
    shape = [d.dim_value for d in data.type.tensor_type.shape.dim]
    x = {data.name: np.random.default_rng(2).standard_normal(shape).astype(np.float32)}
    assert relative_l2(ort_run(path, x)[0], ort_run(model, x)[0]) <= 1e-4
    assert [o.name for o in model.graph.outputs] == [o.name for o in proto.graph.output]
    # the pipeline a second time finds nothing left to do
    _, second = infopt.compile(model, level=1, target="cpu")
    assert not any(r.modified for r in second.passes if r.name != "infer_shapes")


def test_unmodified_graph_round_trips_unchanged_through_o0():
    path = resolve("squeezenet")
    model, report = infopt.compile(str(path), level=0)
    assert report.passes == [] and report.nodes_after == report.nodes_before
    assert len(serde.to_bytes(model)) > 0
    onnx.checker.check_model(serde.model_to_proto(model))
