"""LayerNormalization and RMSNorm from their decomposed patterns.

LayerNorm: ``(x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) * gamma + beta`` over the last
axis (the square as Pow(d, 2) or d * d) becomes the standard ``LayerNormalization`` at opset 17+,
and infopt ``LayerNorm`` (same semantics, defined by its decomposition) below it.
RMSNorm: ``x / sqrt(mean(x^2) + eps) * gamma`` (or ``x * Reciprocal(sqrt(...))``) becomes
infopt ``RMSNorm``.
Identity relied on: these are the definitions. Refuses when the reductions are not over the last
axis only (keepdims), eps is not a constant scalar, gamma/beta are not constants of the last
dim's size, or an intermediate has another user.
"""

from __future__ import annotations

import numpy as np

from ..ir import Model
from ..rewrite import Match, Rule, RuleSet, Tracer
from .base import Pass, PassResult


def _ln_pattern(square: str, affine: str):
    """``affine``: which of ``* gamma`` and ``+ beta`` follow the normalisation ("scale_shift",
    "scale", "shift", "none": a neutral gamma of ones is removed as a no-op by -O1)."""

    def pattern(op, x, eps, gamma, beta):
        mean = op.ReduceMean(x, _name="mean", _extra=True)
        d = op.Sub(x, mean)
        sq = op.Pow(d, op.const(2.0)) if square == "pow" else op.Mul(d, d)
        var = op.ReduceMean(sq, _name="var", _extra=True)
        y = op.Div(d, op.Sqrt(op.Add(var, eps)))
        if affine in ("scale_shift", "scale"):
            y = op.Mul(y, gamma)
        if affine in ("scale_shift", "shift"):
            y = op.Add(y, beta)
        return y

    return pattern


_AFFINE_PARAMS = {
    "scale_shift": ("gamma", "beta"),
    "scale": ("gamma",),
    "shift": ("beta",),
    "none": (),
}


def _reduces_last(m: Match, key: str, rank: int) -> bool:
    node = m.node(key)
    if node.attr("keepdims", 1) != 1:
        return False
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        c = node.inputs[1].const
        axes = None if c is None else [int(a) for a in c.numpy().reshape(-1)]
    else:
        axes = node.attr("axes")
    return axes is not None and [a % rank for a in axes] == [rank - 1]


def _scalar_eps(m: Match) -> float | None:
    eps = m.const("eps")
    return None if eps is None or eps.size != 1 else float(eps.reshape(-1)[0])


def _norm_check(m: Match, keys: tuple[str, ...], params: tuple[str, ...]) -> str | None:
    x = m["x"]
    if x.shape is None or not x.shape or not isinstance(x.shape[-1], int):
        return f"last dim of %{x.name} is unknown"
    if x.dtype not in (None, 1):
        return f"%{x.name} is not float32"
    for key in keys:
        if not _reduces_last(m, key, len(x.shape)):
            return f"%{m.node(key).outputs[0].name} does not reduce the last axis with keepdims"
    if _scalar_eps(m) is None:
        return f"epsilon %{m['eps'].name} is not a constant scalar"
    for p in params:
        c = m.const(p)
        if c is None or c.size != x.shape[-1] or c.ndim > 1 and any(d != 1 for d in c.shape[:-1]):
            return f"%{m[p].name} is not a constant of the last dim's size {x.shape[-1]}"
    return None


def _param(m: Match, b, key: str, fill: float):
    """The matched gamma/beta as a 1-D constant, or ``fill`` repeated when the pattern had none."""
    if m.values.get(key) is None:
        return b.const(np.full(m["x"].shape[-1], fill, np.float32), f"ln_{key}")
    return b.const(m.const(key).reshape(-1).astype(np.float32), m[key].name)


def _ln_rewrite(m: Match, b):
    gamma, beta = _param(m, b, "gamma", 1.0), _param(m, b, "beta", 0.0)
    eps = _scalar_eps(m)
    if m.opset() >= 17:
        return b.op("LayerNormalization", m["x"], gamma, beta, axis=-1, epsilon=eps)
    return b.op("LayerNorm", m["x"], gamma, beta, _domain="infopt", epsilon=eps)


def _rms_patterns():
    def ms(op, x, eps):
        sq = op.Pow(x, op.const(2.0))
        return op.Sqrt(op.Add(op.ReduceMean(sq, _name="ms", _extra=True), eps))

    def div(op, x, eps, gamma):
        return op.Mul(op.Div(x, ms(op, x, eps)), gamma)

    def recip(op, x, eps, gamma):
        return op.Mul(op.Mul(x, op.Reciprocal(ms(op, x, eps))), gamma)

    return [div, recip]


def _rms_rewrite(m: Match, b):
    gamma = b.const(m.const("gamma").reshape(-1).astype(np.float32), m["gamma"].name)
    return b.op("RMSNorm", m["x"], gamma, _domain="infopt", epsilon=_scalar_eps(m))


RULES = RuleSet(
    [
        Rule(
            f"layer_norm_{sq}" + ("" if affine == "scale_shift" else f"_{affine}"),
            _ln_pattern(sq, affine),
            _ln_rewrite,
            check=lambda m, params=params: _norm_check(m, ("mean", "var"), params),
        )
        for affine, params in _AFFINE_PARAMS.items()
        for sq in ("pow", "mul")
    ]
    + [
        Rule(f"rms_norm{i}", p, _rms_rewrite, check=lambda m: _norm_check(m, ("ms",), ("gamma",)))
        for i, p in enumerate(_rms_patterns())
    ]
)


class FuseLayerNorm(Pass):
    name = "fuse_layer_norm"
    description = "decomposed LayerNorm -> LayerNormalization; RMSNorm -> infopt RMSNorm"

    def __init__(self, tracer: Tracer | None = None):
        self.tracer = tracer

    def run(self, model: Model) -> PassResult:
        stats = RULES.apply(model, self.tracer)
        return PassResult(model, stats["applied"] > 0, stats)
