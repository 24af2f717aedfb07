"""MatMul/Gemm epilogue fusion: bias, residual and activation folded into one op.

Rewrites, in order: ``MatMul(A, W) + c`` with 2-D ``A``, constant 2-D ``W`` and a constant bias
that broadcasts along the output row becomes the standard ``Gemm(A, W, c)``; ``Gemm(A, B) + Z``
(no C, ``Z`` the output's static shape) becomes ``Gemm(A, B, Z)``; ``act(Gemm(...))`` becomes
infopt ``FusedGemm<Act>``; ``act(MatMul(A, W) + c)`` with N-D ``A`` (the transformer FFN)
becomes infopt ``FusedMatMul<Act>``, and ``MatMul(A, W) + c`` with N-D ``A`` and no activation
(the attention projections) infopt ``FusedMatMul``, the bias added in the GEMM's write-back.
Identity relied on: Gemm computes ``alpha * A' B' + beta * C`` with C broadcast to [M, N].
Refuses when the weight or bias is not constant, the bias does not broadcast along rows, shapes
are unknown, or an intermediate has another user.
"""

from __future__ import annotations

from ..ir import Model
from ..rewrite import Match, Rule, RuleSet, Tracer
from ._epilogue import ACT_PATTERNS, act_params, clip_check, prefixed
from .base import Pass, PassResult


def _row_bias(m: Match, out_key: str = "mm") -> str | None:
    w, c = m.const("w"), m.const("c")
    if w is None or w.ndim != 2:
        return f"weight %{m['w'].name} is not a constant 2-D tensor"
    if c is None:
        return f"bias %{m['c'].name} is not constant"
    n = w.shape[1]
    if (
        c.ndim > 2
        or (c.ndim >= 1 and c.shape[-1] not in (1, n))
        or (c.ndim == 2 and c.shape[0] != 1)
    ):
        return f"bias %{m['c'].name} shape {list(c.shape)} does not broadcast along rows of {n}"
    if m["a"].dtype not in (None, 1):
        return f"%{m['a'].name} is not float32"
    return None


def _mm_add(op, a, w, c):
    return op.Add(op.MatMul(a, w, _name="mm"), c, _name="add")


def _mm_add_check(m: Match) -> str | None:
    a = m["a"]
    if a.shape is None or len(a.shape) != 2:
        return f"%{a.name} is not 2-D (shape {a.shape})"
    return _row_bias(m)


def _mm_add_rewrite(m: Match, b):
    c = m.const("c").reshape(-1)
    bias = m["c"] if m.const("c").ndim == 1 else b.const(c, m["c"].name)
    return b.op("Gemm", m["a"], m["w"], bias, _name=m.node("mm").name)


def _nd_mm_add_check(m: Match) -> str | None:
    a = m["a"]
    if a.shape is None or len(a.shape) < 3:
        return f"%{a.name} is not N-D with N > 2 (shape {a.shape}); 2-D takes Gemm"
    return _row_bias(m)


def _nd_mm_add_rewrite(m: Match, b):
    bias = b.const(m.const("c").reshape(-1), m["c"].name)
    return b.op("FusedMatMul", m["a"], m["w"], bias, _domain="infopt", _name=m.node("mm").name)


def _gemm_residual(op, a, w, z):
    return op.Add(op.Gemm(a, w, _name="gemm"), z, _name="add")


def _gemm_residual_check(m: Match) -> str | None:
    z, out = m["z"], m.node("gemm").outputs[0]
    if z is out:
        return f"residual %{z.name} is the Gemm output itself"
    if z.shape is None or out.shape is None or tuple(z.shape) != tuple(out.shape):
        return f"residual %{z.name} shape {z.shape} is not the Gemm output's {out.shape}"
    if not all(isinstance(d, int) for d in z.shape):
        return f"residual %{z.name} shape is not static"
    return None


def _gemm_residual_rewrite(m: Match, b):
    gemm = m.node("gemm")
    out = b.op("Gemm", m["a"], m["w"], m["z"], _name=gemm.name)
    b.copy_attrs(b.nodes[-1], gemm)
    b.nodes[-1].set_attr("beta", 1.0)
    return out


def _act_rules(act: str) -> list[Rule]:
    rules = []
    for k, act_fn in enumerate(ACT_PATTERNS[act]):

        def gemm(op, a, w, c, _f=act_fn):
            return _f(op, op.Gemm(a, w, c, _optional=1, _name="gemm"))

        def gemm_rewrite(m: Match, b):
            g = m.node("gemm")
            # every attribute explicit: evaluators of the function need no defaults
            attrs = {
                "alpha": float(g.attr("alpha", 1.0)),
                "beta": float(g.attr("beta", 1.0)),
                "transA": int(g.attr("transA", 0)),
                "transB": int(g.attr("transB", 0)),
            }
            return b.op(
                f"FusedGemm{act}",
                m["a"],
                m["w"],
                m["c"],
                _domain="infopt",
                _name=g.name,
                **attrs,
                **prefixed(act_params(act, m)),
            )

        def matmul(op, a, w, c, _f=act_fn):
            return _f(op, op.Add(op.MatMul(a, w, _name="mm"), c, _name="add"))

        def matmul_check(m: Match) -> str | None:
            return _row_bias(m) or clip_check(act, m)

        def matmul_rewrite(m: Match, b):
            bias = b.const(m.const("c").reshape(-1), m["c"].name)
            return b.op(
                f"FusedMatMul{act}",
                m["a"],
                m["w"],
                bias,
                _domain="infopt",
                _name=m.node("mm").name,
                **prefixed(act_params(act, m)),
            )

        suffix = f"{act.lower()}{k or ''}"
        rules.append(Rule(f"gemm_{suffix}", gemm, gemm_rewrite, check=lambda m: clip_check(act, m)))
        rules.append(Rule(f"matmul_bias_{suffix}", matmul, matmul_rewrite, check=matmul_check))
    return rules


RULES = RuleSet(
    [
        Rule("matmul_add_to_gemm", _mm_add, _mm_add_rewrite, check=_mm_add_check),
        Rule("gemm_residual", _gemm_residual, _gemm_residual_rewrite, check=_gemm_residual_check),
    ]
    + [r for act in ACT_PATTERNS for r in _act_rules(act)]
    # after the activation rules: a bias Add followed by an activation takes the fused form
    + [Rule("matmul_bias", _mm_add, _nd_mm_add_rewrite, check=_nd_mm_add_check)]
)


class FuseGemmActivation(Pass):
    name = "fuse_gemm_activation"
    description = "MatMul+Add -> Gemm; Gemm/MatMul + bias + activation -> infopt FusedGemm*"

    def __init__(self, tracer: Tracer | None = None):
        self.tracer = tracer

    def run(self, model: Model) -> PassResult:
        stats = RULES.apply(model, self.tracer)
        return PassResult(model, stats["applied"] > 0, stats)
