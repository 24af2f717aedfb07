"""fuse_attention: MatMul(Softmax(MatMul(Q, Kt) * s [+ M]), V) -> infopt Attention."""

from __future__ import annotations

import math

import numpy as np
import pytest
from passcheck import (
    attention_core,
    graph_model,
    hf_model,
    o2_until,
    ops,
    run_pass,
    run_pipeline,
)

pytest.importorskip("onnxruntime")


def _attention(mask=True, scores_out=False, scale_input=False, softmax_axis=-1):
    nodes = attention_core("q", "kt", "v", "y", mask, softmax_axis)
    inputs = [("q", [2, 4, 5, 8]), ("kt", [2, 4, 8, 5]), ("v", [2, 4, 5, 8])]
    if mask:
        inputs.append(("mask", [2, 1, 1, 5]))
    inits = [("scale", np.array(math.sqrt(8), np.float32))]
    if scale_input:
        inputs.append(("scale", []))
        inits = []
    outputs = ["y", "s"] if scores_out else ["y"]
    return graph_model(nodes, inputs, outputs, inits)


@pytest.mark.parametrize("mask", [True, False])
def test_attention_core(mask):
    model, result = run_pass("fuse_attention", _attention(mask))
    assert ops(model) == ["infopt.Attention"] and result.stats["applied"] == 1
    assert result.stats["attention_div_mask" if mask else "attention_div"] == 1
    assert model.graph.nodes[0].attr("scale") == pytest.approx(1 / math.sqrt(8))


def test_attention_refuses_when_scores_are_an_output():
    _, result = run_pass("fuse_attention", _attention(scores_out=True))
    assert result.modified is False


@pytest.mark.parametrize(
    "kwargs", [{"scale_input": True}, {"softmax_axis": 2}], ids=["scale input", "softmax axis"]
)
def test_attention_refuses_non_constant_scale_and_other_softmax_axis(kwargs):
    model, result = run_pass("fuse_attention", _attention(**kwargs))
    assert result.modified is False and "infopt.Attention" not in ops(model)


def test_gpt2_attention():
    path, feeds = hf_model("gpt2")
    model, result = run_pipeline(path, o2_until("fuse_attention"), feeds, rtol=1e-5)
    assert result.stats["applied"] == 2 and result.stats["attention_mul_mask"] == 2
    assert ops(model).count("infopt.Attention") == 2 and "Softmax" not in ops(model)
