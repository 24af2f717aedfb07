"""Fuse Conv [+ residual Add] [+ activation] into one infopt ``FusedConv*`` op.

Identity relied on: ``act(Conv(X, W, B) + Z)`` computed in one kernel with the add and the
activation applied while the convolution's output tile is still in registers. Activations:
Relu, LeakyRelu, Sigmoid, Tanh, HardSigmoid, HardSwish, Clip (Relu6) with constant scalar bounds,
SiLU (``x * Sigmoid(x)``), and infopt Gelu/GeluTanh (from ``fuse_gelu``).
Refuses when an intermediate has a second user or is a graph output, when the residual's shape is
not provably the Conv output's shape (no broadcasting in the epilogue), or when a Clip bound is
not a constant scalar.
"""

from __future__ import annotations

from ..ir import Model
from ..ops.fused_conv import CONV_ATTRS, op_name
from ..rewrite import Match, Rule, RuleSet, Tracer
from ._epilogue import ACT_PATTERNS, act_params, clip_check
from .base import Pass, PassResult


def _conv_attrs(m: Match) -> dict:
    conv = m.node("conv")
    return {a: conv.attr(a) for a in CONV_ATTRS if a in conv.attrs}


def _add_pattern(op, x, w, b, z):
    return op.Add(op.Conv(x, w, b, _optional=1, _name="conv"), z, _alts=("Sum",), _name="add")


def _add_check(m: Match) -> str | None:
    z, out = m["z"], m.node("conv").outputs[0]
    if z is out:
        return f"residual %{z.name} is the Conv output itself"
    if z.shape is None or out.shape is None or tuple(z.shape) != tuple(out.shape):
        return f"residual %{z.name} shape {z.shape} is not the Conv output's {out.shape}"
    if not all(isinstance(d, int) for d in z.shape):
        return f"residual %{z.name} shape {z.shape} is not static"
    return None


def _add_rewrite(m: Match, b):
    return b.op(
        op_name(True, None),
        m["x"],
        m["w"],
        m["b"],
        m["z"],
        _domain="infopt",
        _name=m.node("conv").name,
        **_conv_attrs(m),
    )


def _act_rules(act: str) -> list[Rule]:
    rules = []
    for k, act_fn in enumerate(ACT_PATTERNS[act]):

        def plain(op, x, w, b, _f=act_fn):
            return _f(op, op.Conv(x, w, b, _optional=1, _name="conv"))

        def residual(op, x, w, b, z, _f=act_fn):
            return _f(
                op, op.FusedConvAdd(x, w, b, z, _domain="infopt", _optional=(2,), _name="conv")
            )

        for has_residual, fn in ((False, plain), (True, residual)):

            def rewrite(m: Match, b, _res=has_residual):
                inputs = [m["x"], m["w"], m["b"]] + ([m["z"]] if _res else [])
                return b.op(
                    op_name(_res, act),
                    *inputs,
                    _domain="infopt",
                    _name=m.node("conv").name,
                    **_conv_attrs(m),
                    **act_params(act, m),
                )

            rules.append(
                Rule(
                    f"conv{'_add' if has_residual else ''}_{act.lower()}{k or ''}",
                    fn,
                    rewrite,
                    check=lambda m: clip_check(act, m),
                )
            )
    return rules


RULES = RuleSet(
    [Rule("conv_add", _add_pattern, _add_rewrite, check=_add_check)]
    + [r for act in ACT_PATTERNS for r in _act_rules(act)]
)


class FuseConvActivation(Pass):
    name = "fuse_conv_activation"
    description = "Conv + residual Add + activation -> infopt FusedConv*"

    def __init__(self, tracer: Tracer | None = None):
        self.tracer = tracer

    def run(self, model: Model) -> PassResult:
        stats = RULES.apply(model, self.tracer)
        return PassResult(model, stats["applied"] > 0, stats)
