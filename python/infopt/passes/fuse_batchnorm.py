"""Fold inference-mode BatchNormalization into the preceding Conv, Gemm or 2-D MatMul, and turn
a standalone one into a per-channel scale and shift (Mul + Add). A Conv followed by a Mul or Add
of a constant per-output-channel vector (explicit scale layers, or a scale-shift from this pass)
folds into the Conv's weight and bias too; one that follows a BatchNormalization folds into the
BN's scale and bias (``c * BN(y)`` is BN with ``scale * c``, ``bias * c``; ``BN(y) + c`` is BN
with ``bias + c``), the explicit scale layers after a BN of Caffe-converted models.

Identity relied on: ``BN(y) = y * s + t`` with ``s = scale / sqrt(var + eps)`` and ``t = bias -
mean * s``; for a linear producer ``y = W x + b`` this is ``(W * s) x + (b * s + t)`` with ``s``
applied along the output channel (Conv: W's axis 0; Gemm: B's output axis; MatMul: the last).
When the weight is not a constant (a ConstantOfShape fill left unfolded because it is large), the
scaled weight is emitted as ``Mul(W, s)``, a node with constant inputs that folding or the
runtime's once-per-session precomputation evaluates.
Refuses when a BN statistic is not constant, BN is in training mode (extra outputs used), the
Conv output has another user, or (MatMul) the output is not 2-D with a constant 2-D weight.
"""

from __future__ import annotations

import numpy as np

from ..ir import Model
from ..rewrite import Match, Rule, RuleSet, Tracer
from .base import Pass, PassResult


def _bn(op, y, scale, bias, mean, var):
    return op.BatchNormalization(y, scale, bias, mean, var, _name="bn", training_mode=(0, 0))


def _stats(m: Match) -> tuple[np.ndarray, np.ndarray] | None:
    arrays = [m.const(k) for k in ("scale", "bias", "mean", "var")]
    if any(a is None for a in arrays):
        return None
    scale, bias, mean, var = (a.astype(np.float64) for a in arrays)
    eps = float(m.node("bn").attr("epsilon", 1e-5))
    s = scale / np.sqrt(var + eps)
    return s, bias - mean * s


def _bn_check(m: Match) -> str | None:
    bn = m.node("bn")
    if any(o.name and (o.uses or m.graph.is_graph_output(o)) for o in bn.outputs[1:]):
        return f"BatchNormalization %{bn.outputs[0].name} has training outputs in use"
    for k in ("scale", "bias", "mean", "var"):
        if m.const(k) is None:
            return f"BatchNormalization input %{m[k].name} ({k}) is not constant"
        if m.const(k).ndim != 1:
            return f"BatchNormalization input %{m[k].name} ({k}) is not per-channel (1-D)"
    if bn.inputs[0].dtype not in (None, 1):
        return f"%{bn.inputs[0].name} is not float32"
    return None


def _scaled(b, weight, s: np.ndarray, shape: tuple[int, ...], dtype) -> object:
    """``weight * s`` (s reshaped to ``shape``): folded now when the weight is constant."""
    if weight.const is not None:
        return b.const((weight.const.numpy() * s.reshape(shape)).astype(dtype), weight.name)
    return b.op("Mul", weight, b.const(s.reshape(shape).astype(dtype), weight.name + "_bn_scale"))


def _conv_pattern(op, x, w, cb, scale, bias, mean, var):
    return _bn(op, op.Conv(x, w, cb, _optional=1, _name="conv"), scale, bias, mean, var)


def _conv_rewrite(m: Match, b):
    s, t = _stats(m)
    conv, w = m.node("conv"), m["w"]
    if w.shape is None or len(w.shape) < 3:
        return None
    shape = (-1,) + (1,) * (len(w.shape) - 1)
    new_w = _scaled(b, w, s, shape, np.float32)
    cb = m.const("cb") if m["cb"] is not None else np.zeros_like(s)
    if cb is None:
        return None
    new_b = b.const((cb * s + t).astype(np.float32), (m["cb"] or w).name + "_bn_bias")
    node_out = b.op("Conv", m["x"], new_w, new_b, _name=conv.name)
    b.copy_attrs(b.nodes[-1], conv)
    return node_out


def _gemm_pattern(op, a, w, c, scale, bias, mean, var):
    return _bn(op, op.Gemm(a, w, c, _optional=1, _name="gemm"), scale, bias, mean, var)


def _gemm_rewrite(m: Match, b):
    s, t = _stats(m)
    gemm = m.node("gemm")
    alpha, beta = float(gemm.attr("alpha", 1.0)), float(gemm.attr("beta", 1.0))
    shape = (-1, 1) if gemm.attr("transB", 0) else (1, -1)
    new_w = _scaled(b, m["w"], s, shape, np.float32)
    c = m.const("c") if m["c"] is not None else np.zeros(1)
    if c is None:
        return None
    new_c = b.const((beta * c * s + t).astype(np.float32), "gemm_bn_bias")
    return b.op(
        "Gemm",
        m["a"],
        new_w,
        new_c,
        alpha=alpha,
        beta=1.0,
        transA=gemm.attr("transA", 0),
        transB=gemm.attr("transB", 0),
    )


def _matmul_pattern(op, a, w, scale, bias, mean, var):
    return _bn(op, op.MatMul(a, w, _name="mm"), scale, bias, mean, var)


def _matmul_rewrite(m: Match, b):
    out = m.node("mm").outputs[0]
    w = m["w"]
    if out.shape is None or len(out.shape) != 2 or w.shape is None or len(w.shape) != 2:
        return None
    s, t = _stats(m)
    mm = b.op("MatMul", m["a"], _scaled(b, w, s, (1, -1), np.float32))
    return b.op("Add", mm, b.const(t.astype(np.float32), "mm_bn_bias"))


def _standalone_pattern(op, x, scale, bias, mean, var):
    return _bn(op, x, scale, bias, mean, var)


def _standalone_rewrite(m: Match, b):
    x = m["x"]
    if x.shape is None or len(x.shape) < 2:
        return None
    s, t = _stats(m)
    shape = (-1,) + (1,) * (len(x.shape) - 2)
    scaled = b.op("Mul", x, b.const(s.reshape(shape).astype(np.float32), "bn_scale"))
    return b.op("Add", scaled, b.const(t.reshape(shape).astype(np.float32), "bn_shift"))


def _channel_vector(m: Match) -> np.ndarray | None:
    """The constant ``c`` of ``Conv(...) op c`` as one value per output channel, if it is one."""
    c, w = m.const("c"), m["w"]
    if c is None or w.shape is None or not isinstance(w.shape[0], int):
        return None
    rank, channels = len(w.shape), w.shape[0]
    if c.ndim > rank:
        return None
    c = c.reshape((1,) * (rank - c.ndim) + c.shape)
    if c.shape[0] != 1 or any(d != 1 for d in c.shape[2:]) or c.shape[1] not in (1, channels):
        return None
    return np.broadcast_to(c.reshape(-1).astype(np.float64), (channels,))


def _affine_check(m: Match) -> str | None:
    if _channel_vector(m) is None:
        return f"%{m['c'].name} is not a constant per-output-channel vector"
    if m["cb"] is not None and m.const("cb") is None:
        return f"Conv bias %{m['cb'].name} is not constant"
    return None


def _conv_affine_rewrite(kind: str):
    def rewrite(m: Match, b):
        vec, conv, w = _channel_vector(m), m.node("conv"), m["w"]
        cb = m.const("cb") if m["cb"] is not None else np.zeros(vec.shape)
        if kind == "Mul":
            new_w = _scaled(b, w, vec, (-1,) + (1,) * (len(w.shape) - 1), np.float32)
            new_b = cb * vec
        else:
            new_w, new_b = w, cb + vec
        bias = b.const(new_b.astype(np.float32), (m["cb"] or w).name + "_folded")
        out = b.op("Conv", m["x"], new_w, bias, _name=conv.name)
        b.copy_attrs(b.nodes[-1], conv)
        return out

    return rewrite


def _bn_affine_pattern(kind: str):
    def pattern(op, x, scale, bias, mean, var, c):
        return getattr(op, kind)(_bn(op, x, scale, bias, mean, var), c)

    return pattern


def _bn_channel_vector(m: Match) -> np.ndarray | None:
    """The constant ``c`` of ``BN(x) op c`` as one value per channel (axis 1), if it is one."""
    c, x, scale = m.const("c"), m["x"], m.const("scale")
    if c is None or scale is None or x.shape is None or len(x.shape) < 2 or c.ndim > len(x.shape):
        return None
    channels, rank = scale.shape[0], len(x.shape)
    c = c.reshape((1,) * (rank - c.ndim) + c.shape)
    if c.shape[0] != 1 or any(d != 1 for d in c.shape[2:]) or c.shape[1] not in (1, channels):
        return None
    return np.broadcast_to(c.reshape(-1).astype(np.float64), (channels,))


def _bn_affine_check(m: Match) -> str | None:
    reason = _bn_check(m)
    if reason is None and _bn_channel_vector(m) is None:
        return f"%{m['c'].name} is not a constant per-channel vector"
    return reason


def _bn_affine_rewrite(kind: str):
    def rewrite(m: Match, b):
        vec = _bn_channel_vector(m)
        scale, bias = m.const("scale").astype(np.float64), m.const("bias").astype(np.float64)
        if kind == "Mul":
            scale, bias = scale * vec, bias * vec
        else:
            bias = bias + vec
        bn = m.node("bn")
        out = b.op(
            "BatchNormalization",
            m["x"],
            b.const(scale.astype(np.float32), m["scale"].name + "_folded"),
            b.const(bias.astype(np.float32), m["bias"].name + "_folded"),
            m["mean"],
            m["var"],
            _name=bn.name,
        )
        b.copy_attrs(b.nodes[-1], bn, ["epsilon", "momentum"])
        return out

    return rewrite


def _conv_affine_pattern(kind: str):
    def pattern(op, x, w, cb, c):
        return getattr(op, kind)(op.Conv(x, w, cb, _optional=1, _name="conv"), c)

    return pattern


RULES = RuleSet(
    [
        Rule("conv_bn", _conv_pattern, _conv_rewrite, check=_bn_check),
        Rule(
            "conv_mul",
            _conv_affine_pattern("Mul"),
            _conv_affine_rewrite("Mul"),
            check=_affine_check,
        ),
        Rule(
            "conv_add_bias",
            _conv_affine_pattern("Add"),
            _conv_affine_rewrite("Add"),
            check=_affine_check,
        ),
        Rule("gemm_bn", _gemm_pattern, _gemm_rewrite, check=_bn_check),
        Rule(
            "bn_mul", _bn_affine_pattern("Mul"), _bn_affine_rewrite("Mul"), check=_bn_affine_check
        ),
        Rule(
            "bn_add", _bn_affine_pattern("Add"), _bn_affine_rewrite("Add"), check=_bn_affine_check
        ),
        Rule("matmul_bn", _matmul_pattern, _matmul_rewrite, check=_bn_check),
    ]
)
# a separate pass: a standalone BN is one native op, its scale-shift two (not in -O2)
SCALE_SHIFT = RuleSet(
    [Rule("batchnorm_scale_shift", _standalone_pattern, _standalone_rewrite, check=_bn_check)]
)


class FuseBatchNorm(Pass):
    name = "fuse_batchnorm"
    description = "fold BatchNormalization into Conv/Gemm/MatMul, or into Mul+Add"

    def __init__(self, tracer: Tracer | None = None):
        self.tracer = tracer

    def run(self, model: Model) -> PassResult:
        stats = RULES.apply(model, self.tracer)
        return PassResult(model, stats["applied"] > 0, stats)


class BatchNormToScaleShift(Pass):
    name = "batchnorm_to_scale_shift"
    description = "standalone BatchNormalization -> Mul + Add"

    def __init__(self, tracer: Tracer | None = None):
        self.tracer = tracer

    def run(self, model: Model) -> PassResult:
        stats = SCALE_SHIFT.apply(model, self.tracer)
        return PassResult(model, stats["applied"] > 0, stats)
