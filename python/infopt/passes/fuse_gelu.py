"""GELU from its decomposed forms into one infopt op, and Softmax from exp/sum.

* erf form: ``x * 0.5 * (1 + erf(x / sqrt(2)))`` in the operand orders exporters emit (the
  division may be a multiplication by 1/sqrt(2)) becomes ``infopt.Gelu``;
* tanh form: ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))`` (x^3 as Pow or as
  products) becomes ``infopt.GeluTanh``;
* ``Exp(x - ReduceMax(x)) / ReduceSum(Exp(...))`` over the last axis becomes ``Softmax``.
Identity relied on: these are the definitions. Refuses when a constant differs from the
definition's (relative 1e-3, exporters print constants to 4-8 digits) or an intermediate has
another user.
"""

from __future__ import annotations

import math

from ..ir import Model
from ..rewrite import Match, Rule, RuleSet, Tracer
from .base import Pass, PassResult

SQRT2 = math.sqrt(2.0)
TOL = 1e-3


def _erf_arg(op, x):
    return op.Erf(op.Div(x, op.const(SQRT2, rtol=TOL)), _name="erf")


def _erf_arg_mul(op, x):
    return op.Erf(op.Mul(x, op.const(1 / SQRT2, rtol=TOL)), _name="erf")


def _gelu_erf_patterns():
    pats = []
    for arg in (_erf_arg, _erf_arg_mul):

        def a(op, x, _arg=arg):  # (x * (1 + erf)) * 0.5
            one = op.Add(_arg(op, x), op.const(1.0))
            return op.Mul(op.Mul(x, one), op.const(0.5, rtol=TOL))

        def b(op, x, _arg=arg):  # (x * 0.5) * (1 + erf)
            one = op.Add(_arg(op, x), op.const(1.0))
            return op.Mul(op.Mul(x, op.const(0.5, rtol=TOL)), one)

        def c(op, x, _arg=arg):  # x * ((1 + erf) * 0.5)
            one = op.Add(_arg(op, x), op.const(1.0))
            return op.Mul(x, op.Mul(one, op.const(0.5, rtol=TOL)))

        pats += [a, b, c]
    return pats


def _tanh_inner(op, x, cube):
    inner = op.Add(x, op.Mul(cube, op.const(0.044715, rtol=TOL)))
    t = op.Tanh(op.Mul(inner, op.const(math.sqrt(2 / math.pi), rtol=TOL)))
    return op.Add(t, op.const(1.0))


def _gelu_tanh_patterns():
    cubes = [
        lambda op, x: op.Pow(x, op.const(3.0)),
        lambda op, x: op.Mul(op.Mul(x, x), x),
    ]
    pats = []
    for cube in cubes:

        def a(op, x, _c=cube):  # (0.5 * x) * (1 + tanh)
            return op.Mul(op.Mul(x, op.const(0.5, rtol=TOL)), _tanh_inner(op, x, _c(op, x)))

        def b(op, x, _c=cube):  # (x * (1 + tanh)) * 0.5
            return op.Mul(op.Mul(x, _tanh_inner(op, x, _c(op, x))), op.const(0.5, rtol=TOL))

        pats += [a, b]
    return pats


def _gelu(kind: str):
    return lambda m, b: b.op(kind, m["x"], _domain="infopt")


def _softmax_pattern(op, x):
    e = op.Exp(op.Sub(x, op.ReduceMax(x, _name="max", _extra=True)), _name="exp")
    return op.Div(e, op.ReduceSum(e, _name="sum", _extra=True))


def _softmax_check(m: Match) -> str | None:
    x = m["x"]
    if x.shape is None:
        return f"rank of %{x.name} is unknown"
    rank = len(x.shape)
    for key in ("max", "sum"):
        node = m.node(key)
        if node.attr("keepdims", 1) != 1:
            return f"%{node.outputs[0].name} does not keep dims"
        if len(node.inputs) > 1 and node.inputs[1] is not None:
            c = node.inputs[1].const
            axes = None if c is None else [int(a) for a in c.numpy().reshape(-1)]
        else:
            axes = node.attr("axes")
        if axes is None or [a % rank for a in axes] != [rank - 1]:
            return f"%{node.outputs[0].name} does not reduce over the last axis only"
    return None


def _softmax_rewrite(m: Match, b):
    if m.opset() < 13:
        return None
    return b.op("Softmax", m["x"], axis=-1)


RULES = RuleSet(
    [Rule(f"gelu_erf{i}", p, _gelu("Gelu")) for i, p in enumerate(_gelu_erf_patterns())]
    + [Rule(f"gelu_tanh{i}", p, _gelu("GeluTanh")) for i, p in enumerate(_gelu_tanh_patterns())]
    + [Rule("softmax", _softmax_pattern, _softmax_rewrite, check=_softmax_check)]
)


class FuseGelu(Pass):
    name = "fuse_gelu"
    description = "GELU (erf and tanh forms) -> infopt Gelu/GeluTanh; exp/sum -> Softmax"

    def __init__(self, tracer: Tracer | None = None):
        self.tracer = tracer

    def run(self, model: Model) -> PassResult:
        stats = RULES.apply(model, self.tracer)
        return PassResult(model, stats["applied"] > 0, stats)
