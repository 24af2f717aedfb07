"""fuse_gelu: GELU's erf and tanh forms -> infopt Gelu / GeluTanh; exp/sum -> Softmax."""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import helper
from passcheck import graph_model, hf_model, o2_until, ops, run_pass, run_pipeline

pytest.importorskip("onnxruntime")
SQRT2 = math.sqrt(2)


def _c(value):
    return np.array(value, dtype=np.float32)


def _gelu_erf(const=SQRT2, op="Div", outputs=("y",)):
    nodes = [
        helper.make_node(op, ["x", "r2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["p"]),
        helper.make_node("Mul", ["x", "p"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["y"]),
    ]
    inits = [("r2", _c(const)), ("one", _c(1.0)), ("half", _c(0.5))]
    return graph_model(nodes, [("x", [2, 7])], list(outputs), inits)


def test_gelu_erf_and_wrong_constant():
    model, result = run_pass("fuse_gelu", _gelu_erf())
    assert ops(model) == ["infopt.Gelu"]
    assert result.stats["applied"] == 1 and result.stats["gelu_erf0"] == 1
    _, result = run_pass("fuse_gelu", _gelu_erf(const=2.0))
    assert result.modified is False


def test_gelu_erf_as_multiplication_by_one_over_sqrt2():
    model, result = run_pass("fuse_gelu", _gelu_erf(const=1 / SQRT2, op="Mul"))
    assert ops(model) == ["infopt.Gelu"] and result.stats["gelu_erf3"] == 1


def test_gelu_erf_refuses_intermediate_graph_output():
    model, result = run_pass("fuse_gelu", _gelu_erf(outputs=("y", "e")))
    assert result.modified is False and len(ops(model)) == 5


def test_gelu_tanh():
    nodes = [
        helper.make_node("Mul", ["half", "x"], ["hx"]),
        helper.make_node("Pow", ["x", "three"], ["x3"]),
        helper.make_node("Mul", ["k", "x3"], ["kx3"]),
        helper.make_node("Add", ["x", "kx3"], ["inner"]),
        helper.make_node("Mul", ["c", "inner"], ["ci"]),
        helper.make_node("Tanh", ["ci"], ["t"]),
        helper.make_node("Add", ["one", "t"], ["p"]),
        helper.make_node("Mul", ["hx", "p"], ["y"]),
    ]
    inits = [
        ("half", _c(0.5)),
        ("three", _c(3.0)),
        ("k", _c(0.044715)),
        ("c", _c(math.sqrt(2 / math.pi))),
        ("one", _c(1.0)),
    ]
    model, result = run_pass("fuse_gelu", graph_model(nodes, [("x", [2, 7])], ["y"], inits))
    assert ops(model) == ["infopt.GeluTanh"]
    assert result.stats["applied"] == 1 and result.stats["gelu_tanh0"] == 1


def _softmax(axes=(-1,)):
    nodes = [
        helper.make_node("ReduceMax", ["x"], ["mx"], axes=list(axes)),
        helper.make_node("Sub", ["x", "mx"], ["d"]),
        helper.make_node("Exp", ["d"], ["e"]),
        helper.make_node("ReduceSum", ["e", "ax"], ["s"]),
        helper.make_node("Div", ["e", "s"], ["y"]),
    ]
    inits = [("ax", np.array(axes, dtype=np.int64))]
    return graph_model(nodes, [("x", [3, 4, 5])], ["y"], inits)


def test_exp_over_sum_becomes_softmax():
    model, result = run_pass("fuse_gelu", _softmax())
    assert ops(model) == ["Softmax"] and result.stats["softmax"] == 1


def test_exp_over_sum_of_another_axis_stays():
    model, result = run_pass("fuse_gelu", _softmax(axes=(1,)))
    assert result.modified is False and "Softmax" not in ops(model)


def test_gpt2_gelu_tanh():
    path, feeds = hf_model("gpt2")
    model, result = run_pipeline(path, o2_until("fuse_gelu"), feeds, rtol=1e-5)
    assert result.stats["applied"] == 2 and result.stats["gelu_tanh0"] == 2
    assert ops(model).count("infopt.GeluTanh") == 2 and "Tanh" not in ops(model)
