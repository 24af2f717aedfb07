"""The other fused infopt ops, each an ONNX function over standard ops.

* ``FusedGemm<Act>(A, B, C?)``: ``act(Gemm(A, B, C))``, Gemm attributes alpha, beta, transA,
  transB plus the activation's parameters. Native kernel: ``infopt.FusedGemm``.
* ``FusedMatMul<Act>(A, B, C?)``: ``act(MatMul(A, B) + C)`` for N-D ``A``, 2-D constant ``B``
  and a bias ``C`` broadcast over the last axis (the transformer FFN shape).
* ``LayerNorm(X, Scale, B)``: LayerNormalization over the last axis, for models below opset 17
  (attribute ``epsilon``); at opset 17 rewrites emit the standard op instead.
* ``RMSNorm(X, Scale)``: ``X / sqrt(mean(X^2, axis=-1) + epsilon) * Scale``.
* ``Gelu(X)``, ``GeluTanh(X)``: exact (erf) and tanh-approximated GELU.
* ``Attention(Q, Kt, V, Mask?)``: ``MatMul(Softmax(MatMul(Q, Kt) * scale + Mask), V)`` with
  ``Kt`` already transposed ([..., D, S]) and an additive mask broadcast to the scores.
* ``AttentionBshd(Q, K, V, Mask)``: the same on heads left interleaved: Q [B, Sq, H, D],
  K [B, Sk, H, D], V [B, Sk, H, Dv] -> Y [B, Sq, H, Dv] (the mask broadcast to [B, H, Sq, Sk]),
  so a transformer needs no per-head Transposes around its attention.
"""

from __future__ import annotations

from ..ir import Function, Model
from ._body import ACTIVATIONS, Body, act_attr_names, apply_activation

# FusedGemm/FusedMatMul name activation parameters with this prefix (activation_alpha...)
ACT_PREFIX = "activation_"

GEMM_ATTRS = ["alpha", "beta", "transA", "transB"]


def _gemm(activation: str | None):
    def build(model: Model) -> Function:
        body = Body(f"FusedGemm{activation or ''}")
        a, b, c = body.input("A"), body.input("B"), body.input("C")
        refs = {k: ("FLOAT" if k in ("alpha", "beta") else "INT", k) for k in GEMM_ATTRS}
        gemm = body.op("Gemm", a, b, c, refs=refs)
        y = apply_activation(body, gemm, activation, model.opset(""), ACT_PREFIX)
        return body.function(
            model,
            y,
            GEMM_ATTRS + act_attr_names(activation, ACT_PREFIX),
            f"Y = {activation}(Gemm(A, B, C))",
            min_opset=9,
        )

    return build


def _matmul(activation: str | None):
    def build(model: Model) -> Function:
        body = Body(f"FusedMatMul{activation or ''}")
        a, b, c = body.input("A"), body.input("B"), body.input("C")
        y = body.op("Add", body.op("MatMul", a, b), c)
        y = apply_activation(body, y, activation, model.opset(""), ACT_PREFIX)
        return body.function(
            model,
            y,
            act_attr_names(activation, ACT_PREFIX),
            f"Y = {activation}(MatMul(A, B) + C)",
            min_opset=9,
        )

    return build


def _layer_norm(model: Model) -> Function:
    body = Body("LayerNorm")
    x, scale, bias = body.input("X"), body.input("Scale"), body.input("B")
    mean = body.op("ReduceMean", x, axes=[-1])
    d = body.op("Sub", x, mean)
    var = body.op("ReduceMean", body.op("Mul", d, d), axes=[-1])
    eps = body.ref_const("epsilon")
    n = body.op("Div", d, body.op("Sqrt", body.op("Add", var, eps)))
    y = body.op("Add", body.op("Mul", n, scale), bias)
    return body.function(
        model, y, ["epsilon"], "Y = LayerNormalization(X, Scale, B, axis=-1)", min_opset=9
    )


def _rms_norm(model: Model) -> Function:
    body = Body("RMSNorm")
    x, scale = body.input("X"), body.input("Scale")
    if model.opset("") >= 18:
        axes = body.op("Constant", value_ints=[-1])
        ms = body.op("ReduceMean", body.op("Mul", x, x), axes)
    else:
        ms = body.op("ReduceMean", body.op("Mul", x, x), axes=[-1])
    rms = body.op("Sqrt", body.op("Add", ms, body.ref_const("epsilon")))
    y = body.op("Mul", body.op("Div", x, rms), scale)
    return body.function(
        model, y, ["epsilon"], "Y = X / sqrt(mean(X^2) + epsilon) * Scale", min_opset=9
    )


def _gelu(kind: str):
    def build(model: Model) -> Function:
        body = Body(kind)
        y = apply_activation(body, body.input("X"), kind, model.opset(""))
        return body.function(model, y, [], f"Y = {kind}(X)", min_opset=9)

    return build


def _attention(model: Model) -> Function:
    body = Body("Attention")
    q, kt, v, mask = body.input("Q"), body.input("Kt"), body.input("V"), body.input("Mask")
    scores = body.op("Mul", body.op("MatMul", q, kt), body.ref_const("scale"))
    probs = body.op("Softmax", body.op("Add", scores, mask), axis=-1)
    y = body.op("MatMul", probs, v)
    return body.function(
        model, y, ["scale"], "Y = Softmax(Q @ Kt * scale + Mask) @ V", min_opset=13
    )


def _attention_bshd(model: Model) -> Function:
    body = Body("AttentionBshd")
    q, k, v, mask = body.input("Q"), body.input("K"), body.input("V"), body.input("Mask")
    heads = [0, 2, 1, 3]  # [B, S, H, D] <-> [B, H, S, D]
    kt = body.op("Transpose", k, perm=[0, 2, 3, 1])
    scores = body.op(
        "Mul", body.op("MatMul", body.op("Transpose", q, perm=heads), kt), body.ref_const("scale")
    )
    probs = body.op("Softmax", body.op("Add", scores, mask), axis=-1)
    y = body.op(
        "Transpose", body.op("MatMul", probs, body.op("Transpose", v, perm=heads)), perm=heads
    )
    return body.function(
        model,
        y,
        ["scale"],
        "Y = Transpose(Softmax(Q' @ Kt * scale + Mask) @ V'), heads interleaved in Q, K, V, Y",
        min_opset=13,
    )


FUNCTIONS = {
    **{f"FusedGemm{a}": _gemm(a) for a in ACTIVATIONS},
    **{f"FusedMatMul{a or ''}": _matmul(a) for a in [None, *ACTIVATIONS]},
    "LayerNorm": _layer_norm,
    "RMSNorm": _rms_norm,
    "Gelu": _gelu("Gelu"),
    "GeluTanh": _gelu("GeluTanh"),
    "Attention": _attention,
    "AttentionBshd": _attention_bshd,
}
