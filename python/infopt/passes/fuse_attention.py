"""Scaled dot-product attention core into one infopt ``Attention`` op.

Matches ``MatMul(Softmax(MatMul(Q, Kt) * s [+ M], axis=-1), V)`` (the scale as Mul or as Div by a
constant, mask optional and additive) — the chain both torch exporters emit for BERT- and
GPT-style eager attention after the per-head Reshape/Transpose — and replaces it with
``infopt.Attention(Q, Kt, V, M) {scale}``.
Identity relied on: the definition of attention. Refuses when the scale is not a constant scalar,
Softmax is not over the last axis (or the model is below opset 13, where Softmax flattens), a
value is not float32, or an intermediate (scores, probabilities) has another user.
"""

from __future__ import annotations

import numpy as np

from ..ir import Model
from ..rewrite import Match, Rule, RuleSet, Tracer
from .base import Pass, PassResult


def _scaled(op, q, kt, s, how):
    scores = op.MatMul(q, kt, _name="qk")
    return op.Mul(scores, s, _name="scale") if how == "mul" else op.Div(scores, s, _name="scale")


def _patterns():
    pats = []
    for how in ("mul", "div"):

        def masked(op, q, kt, v, s, mask, _how=how):
            probs = op.Softmax(op.Add(_scaled(op, q, kt, s, _how), mask), _name="softmax")
            return op.MatMul(probs, v, _name="pv")

        def plain(op, q, kt, v, s, _how=how):
            return op.MatMul(
                op.Softmax(_scaled(op, q, kt, s, _how), _name="softmax"), v, _name="pv"
            )

        pats += [(f"attention_{how}_mask", masked), (f"attention_{how}", plain)]
    return pats


def _check(m: Match) -> str | None:
    if m.opset() < 13:
        return "Softmax below opset 13 flattens its input; not attention's per-row softmax"
    s = m.const("s")
    if s is None or s.size != 1:
        return f"scale %{m['s'].name} is not a constant scalar"
    scores = m.node("qk").outputs[0]
    rank = None if scores.shape is None else len(scores.shape)
    axis = m.node("softmax").attr("axis", -1)
    if axis != -1 and (rank is None or axis != rank - 1):
        return f"Softmax %{m.node('softmax').outputs[0].name} is over axis {axis}, not the last"
    for key in ("q", "kt", "v"):
        if m[key].dtype not in (None, 1):
            return f"%{m[key].name} is not float32"
    if rank is not None and rank < 3:
        return f"scores %{scores.name} are {rank}-D, not per-head attention"
    return None


def _rewrite(m: Match, b):
    s = float(np.asarray(m.const("s")).reshape(-1)[0])
    scale = s if m.node("scale").op_type == "Mul" else 1.0 / s
    mask = m.values.get("mask")
    if mask is None:
        mask = b.const(np.zeros((), dtype=np.float32), "no_mask")
    return b.op(
        "Attention",
        m["q"],
        m["kt"],
        m["v"],
        mask,
        _domain="infopt",
        scale=scale,
        _name=m.node("pv").name,
    )


RULES = RuleSet([Rule(name, p, _rewrite, check=_check) for name, p in _patterns()])


class FuseAttention(Pass):
    name = "fuse_attention"
    description = "Q.Kt scale, mask add, Softmax, .V -> infopt Attention"

    def __init__(self, tracer: Tracer | None = None):
        self.tracer = tracer

    def run(self, model: Model) -> PassResult:
        stats = RULES.apply(model, self.tracer)
        return PassResult(model, stats["applied"] > 0, stats)
