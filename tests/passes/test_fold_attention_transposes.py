"""fold_attention_transposes: per-head Transposes around infopt Attention -> AttentionBshd.

Numerics: every rewritten graph is compared with the original in onnxruntime (the infopt ops
as their ONNX function bodies) within 1e-5 relative L2 on random feeds (passcheck)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import helper
from passcheck import (
    attention_core,
    graph_model,
    hf_model,
    o2_until,
    ops,
    run_pass,
    run_pipeline,
)

from infopt.passes.pipelines import pipeline

pytest.importorskip("onnxruntime")

B, S, H, D = 2, 5, 4, 8


def _heads_attention(v_heads=False, attention_out=False, mask=True):
    """[B,S,H,D] q4/k4/v4 -> Transpose -> attention core -> Transpose back to [B,S,H,D];
    v_heads: V arrives as [B,H,S,D] already (no Transpose to fold)."""
    nodes = [
        helper.make_node("Transpose", ["q4"], ["q"], perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
        helper.make_node(
            "Identity" if v_heads else "Transpose",
            ["v4"],
            ["v"],
            **({} if v_heads else {"perm": [0, 2, 1, 3]}),
        ),
    ]
    nodes += attention_core("q", "kt", "v", "yh", mask)
    nodes.append(helper.make_node("Transpose", ["yh"], ["y"], perm=[0, 2, 1, 3]))
    inputs = [
        (n, [B, H, S, D] if v_heads and n == "v4" else [B, S, H, D]) for n in ("q4", "k4", "v4")
    ]
    if mask:
        inputs.append(("mask", [B, 1, 1, S]))
    outputs = ["y", "yh"] if attention_out else ["y"]
    return graph_model(nodes, inputs, outputs, [("scale", np.array(math.sqrt(D), np.float32))])


@pytest.mark.parametrize("mask", [True, False])
def test_heads_read_in_place(mask):
    model, result = run_pass(
        "fold_attention_transposes",
        _heads_attention(mask=mask),
        before=("infer_shapes", "fuse_attention"),
    )
    assert ops(model) == ["infopt.AttentionBshd"] and result.stats["applied"] == 1
    node = model.graph.nodes[0]
    assert node.attr("scale") == pytest.approx(1 / math.sqrt(D))
    assert [v.name for v in node.inputs[:3]] == ["q4", "k4", "v4"]


def test_refuses_when_attention_output_has_another_user():
    model, result = run_pass(
        "fold_attention_transposes",
        _heads_attention(attention_out=True),
        before=("infer_shapes", "fuse_attention"),
    )
    assert result.modified is False and "infopt.AttentionBshd" not in ops(model)


def test_refuses_values_already_split():
    model, result = run_pass(
        "fold_attention_transposes",
        _heads_attention(v_heads=True),
        before=("infer_shapes", "fuse_attention"),
    )
    assert result.modified is False and "infopt.Attention" in ops(model)


def test_cpu_target_only():
    assert "fold_attention_transposes" not in pipeline(2, "cuda")
    assert "fold_attention_transposes" not in pipeline(2, "onnx", 17)


@pytest.mark.parametrize("name,layers", [("minilm", 6), ("gpt2", 2)])
def test_transformer_attention(name, layers):
    path, feeds = hf_model(name)
    model, result = run_pipeline(path, o2_until("fold_attention_transposes"), feeds, rtol=1e-5)
    assert result.stats["applied"] == layers
    assert ops(model).count("infopt.AttentionBshd") == layers
    assert "infopt.Attention" not in ops(model)
