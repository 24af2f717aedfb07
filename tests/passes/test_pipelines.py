"""The pass pipelines as a whole (-O0, -O1, -O2) rather than one pass: light models through
-O1 against onnxruntime, -O0 round trip, custom-domain ops carried through -O2."""

from __future__ import annotations

import onnx
import pytest
from onnx import helper
from passcheck import graph_model, ort_session, rand

import infopt
from infopt.ir import serde
from infopt.testing.compare import relative_l2
from infopt.testing.inputs import random_feeds
from infopt.testing.models import LIGHT_MODELS, random_weight_model, resolve
from infopt.testing.oracle import ort_run

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_o1_on_light_models_matches_onnxruntime(name):
    # the big models (vgg19: 575 MB of weights) are read once here and once by onnxruntime
    path = random_weight_model(name, seed=11)
    model = infopt.load(path)
    outputs = [o.name for o in model.graph.outputs]
    x = random_feeds(model, seed=2)  # the data input only: the weights are initializers
    want = ort_session(str(path)).run(None, x)[0]
    model, report = infopt.compile(model, level=1, target="cpu")
    assert relative_l2(want, ort_run(model, x)[0]) <= 1e-4
    assert [o.name for o in model.graph.outputs] == outputs
    # the pipeline a second time finds nothing left to do
    _, second = infopt.compile(model, level=1, target="cpu")
    assert not any(r.modified for r in second.passes if r.name != "infer_shapes")


def test_unmodified_graph_round_trips_unchanged_through_o0():
    path = resolve("squeezenet")
    model, report = infopt.compile(str(path), level=0)
    assert report.passes == [] and report.nodes_after == report.nodes_before
    assert len(serde.to_bytes(model)) > 0
    onnx.checker.check_model(serde.model_to_proto(model))


def test_unknown_and_custom_domain_ops_are_carried_through():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("MyOp", ["c"], ["m"], domain="custom", flavour="x"),
        helper.make_node("Relu", ["m"], ["y"]),
    ]
    proto = graph_model(nodes, [("x", [1, 3, 6, 6])], ["y"], [("w", rand(4, 3, 3, 3))])
    proto.opset_import.append(helper.make_opsetid("custom", 1))
    model, report = infopt.compile(proto, level=2, target="onnx")
    custom = [n for n in model.graph.nodes if n.domain == "custom"]
    assert len(custom) == 1 and custom[0].attr("flavour") == "x"
    assert [n.op_type for n in model.graph.nodes] == ["Conv", "MyOp", "Relu"]


def test_onnx_target_skips_fusions_without_a_standard_op():
    from infopt.passes.pipelines import pipeline

    assert "fuse_attention" in pipeline(2, "cpu") and "fuse_gelu" in pipeline(2, "cpu")
    onnx17 = pipeline(2, "onnx", 17)
    assert "fuse_attention" not in onnx17 and "fuse_gelu" not in onnx17
    assert "fuse_layer_norm" in onnx17  # LayerNormalization is standard from opset 17
    assert "fuse_gelu" in pipeline(2, "onnx", 20)  # Gelu is standard from opset 20
