"""Per-head Transposes around infopt ``Attention`` folded into ``AttentionBshd`` (CPU target).

Transformer exporters split each projection into heads as ``Reshape`` to [B, S, H, D] and
``Transpose`` to [B, H, S, D] (K to [B, H, D, S]), and merge the attention output back with a
``Transpose`` to [B, S, H, D] before a ``Reshape``. Matches

    Transpose(Attention(Transpose(q4, [0,2,1,3]), Transpose(k4, [0,2,3,1]),
                        Transpose(v4, [0,2,1,3]), mask), [0,2,1,3])

and replaces it with ``infopt.AttentionBshd(q4, k4, v4, mask)``, whose native kernel reads the
heads in place (row stride H * D): four copies of every activation through memory per layer are
gone (MiniLM: 24 Transposes, ~3% of a run). Identity relied on: Transpose(Transpose(x, p), p^-1)
is x, applied to the inputs and output of the same attention. Refuses when the attention's
output has another user (it would then be computed twice) or a value is not 4-D. The input
Transposes stay while something else reads them; dead ones go with dead-code elimination.
Only infopt's CPU runtime has the kernel, so other targets leave this pass out.
"""

from __future__ import annotations

import numpy as np

from ..ir import Model
from ..rewrite import Match, Rule, RuleSet, Tracer
from .base import Pass, PassResult

HEADS = [0, 2, 1, 3]  # [B, S, H, D] <-> [B, H, S, D]
KEYS_T = [0, 2, 3, 1]  # [B, S, H, D] -> [B, H, D, S]


def _pattern(op, q4, k4, v4, mask):
    q = op.Transpose(q4, perm=HEADS, _name="tq")
    kt = op.Transpose(k4, perm=KEYS_T, _name="tk")
    v = op.Transpose(v4, perm=HEADS, _name="tv")
    y = op.Attention(q, kt, v, mask, _domain="infopt", _optional=1, _name="attention")
    return op.Transpose(y, perm=HEADS, _name="ty")


def _check(m: Match) -> str | None:
    out = m.node("attention").outputs[0]
    if len(out.uses) != 1 or m.graph.is_graph_output(out):
        return f"attention output %{out.name} has other users"
    for key in ("q4", "k4", "v4"):
        shape = m[key].shape
        if shape is not None and len(shape) != 4:
            return f"%{m[key].name} is {len(shape)}-D, not [batch, seq, heads, head_dim]"
    return None


def _rewrite(m: Match, b):
    mask = m.values.get("mask")
    if mask is None:
        mask = b.const(np.zeros((), dtype=np.float32), "no_mask")
    attention = m.node("attention")
    y = b.op(
        "AttentionBshd",
        m["q4"],
        m["k4"],
        m["v4"],
        mask,
        _domain="infopt",
        _name=attention.name,
    )
    b.copy_attrs(y.producer, attention, ["scale"])
    return y


RULES = RuleSet([Rule("attention_heads_in_place", _pattern, _rewrite, check=_check)])


class FoldAttentionTransposes(Pass):
    name = "fold_attention_transposes"
    description = "Transposes into and out of infopt Attention -> infopt AttentionBshd"

    def __init__(self, tracer: Tracer | None = None):
        self.tracer = tracer

    def run(self, model: Model) -> PassResult:
        stats = RULES.apply(model, self.tracer)
        return PassResult(model, stats["applied"] > 0, stats)
