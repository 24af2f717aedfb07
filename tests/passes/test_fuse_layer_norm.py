"""fuse_layer_norm: decomposed LayerNorm -> LayerNormalization (infopt LayerNorm below opset
17), decomposed RMSNorm -> infopt RMSNorm."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from passcheck import graph_model, hf_model, o2_until, ops, rand, run_pass, run_pipeline

pytest.importorskip("onnxruntime")


def _c(value):
    return np.array(value, dtype=np.float32)


def _layer_norm_proto(square="Pow", second_user=False, axes=(-1,), opset=17, beta_input=False):
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=list(axes)),
        helper.make_node("Sub", ["x", "mean"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["sq"])
        if square == "Pow"
        else helper.make_node("Mul", ["d", "d"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["var"], axes=list(axes)),
        helper.make_node("Add", ["var", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["std"]),
        helper.make_node("Div", ["d", "std"], ["n"]),
        helper.make_node("Mul", ["n", "g"], ["ng"]),
        helper.make_node("Add", ["ng", "beta"], ["y"]),
    ]
    inits = [("two", _c(2.0)), ("eps", _c(1e-5)), ("g", rand(6, seed=1))]
    inputs = [("x", [2, 3, 6])]
    if beta_input:
        inputs.append(("beta", [6]))
    else:
        inits.append(("beta", rand(6)))
    outputs = ["y", "d"] if second_user else ["y"]
    return graph_model(nodes, inputs, outputs, inits, opset=opset)


@pytest.mark.parametrize("square", ["Pow", "Mul"])
def test_layer_norm_from_decomposition(square):
    model, result = run_pass("fuse_layer_norm", _layer_norm_proto(square))
    assert ops(model) == ["LayerNormalization"] and result.stats["applied"] == 1
    assert result.stats[f"layer_norm_{square.lower()}"] == 1


def test_layer_norm_below_opset_17_is_the_infopt_op():
    model, result = run_pass("fuse_layer_norm", _layer_norm_proto(opset=13))
    assert ops(model) == ["infopt.LayerNorm"] and result.stats["applied"] == 1


def test_layer_norm_refuses_intermediate_graph_output():
    model, result = run_pass("fuse_layer_norm", _layer_norm_proto(second_user=True))
    # d = x - mean stays (a graph output); what follows it is exactly an RMSNorm of d
    assert "LayerNormalization" not in ops(model) and "layer_norm_pow" not in result.stats
    assert result.stats == {"applied": 1, "attempted": 17, "failed": 16, "rms_norm0": 1}


@pytest.mark.parametrize("axes", [(1,), (-2, -1)], ids=str)
def test_layer_norm_refuses_other_axes(axes):
    model, result = run_pass("fuse_layer_norm", _layer_norm_proto(axes=axes))
    assert result.modified is False and len(ops(model)) == 9


def test_non_constant_beta_stays_an_add_after_the_norm():
    model, result = run_pass("fuse_layer_norm", _layer_norm_proto(beta_input=True))
    assert result.stats["layer_norm_pow_scale"] == 1 and result.stats["applied"] == 1
    assert ops(model) == ["LayerNormalization", "Add"]


def _rms_proto(form="Div"):
    nodes = [
        helper.make_node("Pow", ["x", "two"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["ms"], axes=[-1]),
        helper.make_node("Add", ["ms", "eps"], ["me"]),
        helper.make_node("Sqrt", ["me"], ["r"]),
    ]
    if form == "Div":
        nodes.append(helper.make_node("Div", ["x", "r"], ["n"]))
    else:
        nodes.append(helper.make_node("Reciprocal", ["r"], ["inv"]))
        nodes.append(helper.make_node("Mul", ["x", "inv"], ["n"]))
    nodes.append(helper.make_node("Mul", ["g", "n"], ["y"]))
    inits = [("two", _c(2.0)), ("eps", _c(1e-6)), ("g", rand(6))]
    return graph_model(nodes, [("x", [2, 6])], ["y"], inits)


def test_rms_norm():
    model, result = run_pass("fuse_layer_norm", _rms_proto())
    assert ops(model) == ["infopt.RMSNorm"] and result.stats["rms_norm0"] == 1


def test_rms_norm_with_reciprocal():
    model, result = run_pass("fuse_layer_norm", _rms_proto("Reciprocal"))
    assert ops(model) == ["infopt.RMSNorm"] and result.stats["rms_norm1"] == 1


def _decomposed_layer_norms(path) -> tuple[onnx.ModelProto, int]:
    """The model with each LayerNormalization written out as the opset < 17 exporters emit it
    (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add), and how many there were."""
    proto = onnx.load(str(path))
    nodes, count = [], 0
    proto.graph.initializer.append(numpy_helper.from_array(_c(2.0), "ln_two"))
    for node in proto.graph.node:
        if node.op_type != "LayerNormalization":
            nodes.append(node)
            continue
        x, gamma, beta = node.input
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        p = f"ln{count}_"
        proto.graph.initializer.append(numpy_helper.from_array(_c(eps), p + "eps"))
        nodes += [
            helper.make_node("ReduceMean", [x], [p + "mean"], axes=[-1]),
            helper.make_node("Sub", [x, p + "mean"], [p + "d"]),
            helper.make_node("Pow", [p + "d", "ln_two"], [p + "sq"]),
            helper.make_node("ReduceMean", [p + "sq"], [p + "var"], axes=[-1]),
            helper.make_node("Add", [p + "var", p + "eps"], [p + "ve"]),
            helper.make_node("Sqrt", [p + "ve"], [p + "std"]),
            helper.make_node("Div", [p + "d", p + "std"], [p + "n"]),
            helper.make_node("Mul", [p + "n", gamma], [p + "ng"]),
            helper.make_node("Add", [p + "ng", beta], [node.output[0]]),
        ]
        count += 1
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return proto, count


def test_gpt2_with_decomposed_layer_norms():
    path, feeds = hf_model("gpt2")
    proto, count = _decomposed_layer_norms(path)
    assert count == 5  # two per block, one final
    model, result = run_pipeline(proto, o2_until("fuse_layer_norm"), feeds, rtol=1e-5)
    # GPT-2's random init has gamma = 1: -O1 removes that Mul as a no-op, the shift form fuses
    assert result.stats["applied"] == 5 and result.stats["layer_norm_pow_shift"] == 5
    assert ops(model).count("LayerNormalization") == 5 and "Sqrt" not in ops(model)
