"""Shared pieces of the epilogue fusions: activation sub-patterns and their parameters.

``ACT_PATTERNS[name]`` lists pattern functions ``f(op, y)`` that match activation ``name``
applied to ``y`` (the node named ``act`` is the activation node, constants are ``lo``/``hi``);
``act_params(name, m)`` reads the fused op's float attributes from a match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..ir import Node
from ..rewrite import Match


def _single(op_type: str):
    return lambda op, y: getattr(op, op_type)(y, _name="act")


ACT_PATTERNS: dict[str, list[Callable[..., Any]]] = {
    "Relu": [_single("Relu")],
    "LeakyRelu": [_single("LeakyRelu")],
    "Sigmoid": [_single("Sigmoid")],
    "Tanh": [_single("Tanh")],
    "HardSigmoid": [_single("HardSigmoid")],
    "HardSwish": [_single("HardSwish")],
    "Clip": [
        lambda op, y: op.Clip(y, op.const(name="lo"), op.const(name="hi"), _name="act"),
        lambda op, y: op.Clip(y, _name="act"),  # opset < 11: min/max attributes
    ],
    "Silu": [lambda op, y: op.Mul(y, op.Sigmoid(y), _name="act")],
    "Gelu": [lambda op, y: op.Gelu(y, _domain="infopt", _name="act")],
    "GeluTanh": [lambda op, y: op.GeluTanh(y, _domain="infopt", _name="act")],
}


def prefixed(params: dict[str, float] | None, prefix: str = "activation_") -> dict[str, float]:
    """Activation attributes under FusedGemm/FusedMatMul's names (``activation_alpha``)."""
    return {prefix + k: v for k, v in (params or {}).items()}


def act_params(name: str, m: Match) -> dict[str, float] | None:
    """The fused op's activation attributes; None when they cannot be expressed (a Clip bound
    that is not a scalar constant)."""
    act: Node = m.node("act")
    if name == "LeakyRelu":
        return {"alpha": float(act.attr("alpha", 0.01))}
    if name == "HardSigmoid":
        return {"alpha": float(act.attr("alpha", 0.2)), "beta": float(act.attr("beta", 0.5))}
    if name == "Clip":
        if "lo" in m.values:
            lo, hi = m.const("lo"), m.const("hi")
            if lo is None or hi is None or lo.size != 1 or hi.size != 1:
                return None
            return {
                "min": float(np.asarray(lo).reshape(-1)[0]),
                "max": float(np.asarray(hi).reshape(-1)[0]),
            }
        if m.opset() >= 11:
            return None  # Clip without bounds at opset 11+ is an identity; leave it alone
        return {
            "min": float(act.attr("min", -3.4028234663852886e38)),
            "max": float(act.attr("max", 3.4028234663852886e38)),
        }
    return {}


def clip_check(name: str, m: Match) -> str | None:
    if act_params(name, m) is None:
        return f"activation %{m.node('act').outputs[0].name} has non-constant or missing bounds"
    return None
