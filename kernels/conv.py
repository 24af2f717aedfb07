"""2-D convolution as an implicit GEMM, with the GEMM epilogue (bias, residual, activation).

    Y[n, co, p, q] = act(sum_{g-group ci, kh, kw} X[n, ci, p*sh - ph + kh*dh, q*sw - pw + kw*dw]
                         * W[co, ci, kh, kw] + bias[co] + R[n, co, p, q])

Tensors are logically NCHW (ONNX order) with any strides; channels-last (NHWC) storage is the
fast layout, and outputs are allocated channels-last. Per group the GEMM is
M = N*P*Q output pixels, N = C_out/groups, K = KH*KW*C_in/groups, with K ordered (kh, kw, ci)
so that consecutive K walk contiguous NHWC channels. ``prepack_weight`` reorders W once into
that [groups, K, C_out/groups] matrix. Depthwise convolutions (one input channel per group,
one output per group) use a direct kernel instead: an implicit GEMM with N = 1 wastes the MMA.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from ._activation import activation_reference, apply_activation, default_params, half_dot
from ._launch import act_code, cdiv, dot_code, interpret_tiles, interpreting

# (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages)
_TUNE = [
    (128, 128, 32, 8, 3),
    (128, 64, 32, 4, 4),
    (64, 128, 32, 4, 4),
    (64, 64, 32, 4, 4),
    (128, 32, 32, 4, 4),
    (32, 32, 32, 4, 2),
]
CONFIGS = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w, num_stages=s)
    for bm, bn, bk, w, s in _TUNE
]
_DW_BLOCK_P, _DW_BLOCK_C = 64, 32


@triton.jit
def _conv_kernel(
    x_ptr, w_ptr, bias_ptr, r_ptr, y_ptr,
    NB, C, H, W, CO, P, Q, CG, COG, KG,
    sxn, sxc, sxh, sxw,
    srn, src, srh, srw,
    syn, syc, syh, syw,
    KW, sh, sw, ph, pw, dh, dw, p0, p1,
    HAS_BIAS: tl.constexpr, HAS_RES: tl.constexpr, ACT: tl.constexpr, DOT: tl.constexpr,
    EMULATE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    g = tl.program_id(2)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    m_ok = rm < NB * P * Q
    n_ok = rn < COG
    # output pixel -> (n, p, q)
    q_idx = rm % Q
    p_idx = (rm // Q) % P
    n_idx = (rm // (P * Q)).to(tl.int64)
    h0 = p_idx * sh - ph
    w0 = q_idx * sw - pw
    x_base = x_ptr + n_idx * sxn + (g * CG).to(tl.int64) * sxc
    w_base = w_ptr + g.to(tl.int64) * KG * COG
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, KG, BLOCK_K):
        kk = k0 + rk
        k_ok = kk < KG
        ci = kk % CG
        tap = kk // CG
        kw = tap % KW
        kh = tap // KW
        hh = h0[:, None] + kh[None, :] * dh
        ww = w0[:, None] + kw[None, :] * dw
        inside = (hh >= 0) & (hh < H) & (ww >= 0) & (ww < W)
        a = tl.load(
            x_base[:, None] + ci[None, :] * sxc + hh * sxh + ww * sxw,
            mask=m_ok[:, None] & k_ok[None, :] & inside,
            other=0.0,
        )
        b = tl.load(
            w_base + kk[:, None] * COG + rn[None, :], mask=k_ok[:, None] & n_ok[None, :], other=0.0
        )
        if DOT == 0:
            acc = tl.dot(a, b, acc, input_precision="ieee")
        elif DOT == 1:
            acc = tl.dot(a, b, acc, input_precision="tf32")
        else:
            acc = half_dot(a, b, acc, DOT, EMULATE)
    co = g * COG + rn
    if HAS_BIAS:
        acc += tl.load(bias_ptr + co, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    mask = m_ok[:, None] & n_ok[None, :]
    if HAS_RES:
        r_off = n_idx * srn + p_idx * srh + q_idx * srw
        acc += tl.load(r_ptr + r_off[:, None] + co[None, :] * src, mask=mask, other=0.0).to(
            tl.float32
        )
    acc = apply_activation(acc, p0, p1, ACT)
    y_off = n_idx * syn + p_idx * syh + q_idx * syw
    tl.store(y_ptr + y_off[:, None] + co[None, :] * syc, acc.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _depthwise_kernel(
    x_ptr, w_ptr, bias_ptr, r_ptr, y_ptr,
    NB, C, H, W, P, Q,
    sxn, sxc, sxh, sxw,
    srn, src, srh, srw,
    syn, syc, syh, syw,
    KH, KW, sh, sw, ph, pw, dh, dw, p0, p1,
    HAS_BIAS: tl.constexpr, HAS_RES: tl.constexpr, ACT: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):  # fmt: skip
    pid_p = tl.program_id(0)
    pid_c = tl.program_id(1)
    rp = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    rc = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    p_ok = rp < NB * P * Q
    c_ok = rc < C
    q_idx = rp % Q
    p_idx = (rp // Q) % P
    n_idx = (rp // (P * Q)).to(tl.int64)
    acc = tl.zeros((BLOCK_P, BLOCK_C), dtype=tl.float32)
    for kh in range(0, KH):
        hh = p_idx * sh - ph + kh * dh
        for kw in range(0, KW):
            ww = q_idx * sw - pw + kw * dw
            inside = p_ok & (hh >= 0) & (hh < H) & (ww >= 0) & (ww < W)
            x = tl.load(
                x_ptr + (n_idx * sxn + hh * sxh + ww * sxw)[:, None] + rc[None, :] * sxc,
                mask=inside[:, None] & c_ok[None, :],
                other=0.0,
            ).to(tl.float32)
            wt = tl.load(w_ptr + (kh * KW + kw) * C + rc, mask=c_ok, other=0.0).to(tl.float32)
            acc += x * wt[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + rc, mask=c_ok, other=0.0).to(tl.float32)[None, :]
    mask = p_ok[:, None] & c_ok[None, :]
    if HAS_RES:
        r_off = n_idx * srn + p_idx * srh + q_idx * srw
        acc += tl.load(r_ptr + r_off[:, None] + rc[None, :] * src, mask=mask, other=0.0).to(
            tl.float32
        )
    acc = apply_activation(acc, p0, p1, ACT)
    y_off = n_idx * syn + p_idx * syh + q_idx * syw
    tl.store(y_ptr + y_off[:, None] + rc[None, :] * syc, acc.to(y_ptr.dtype.element_ty), mask=mask)


_conv_tuned = triton.autotune(configs=CONFIGS, key=["CO", "CG", "P", "Q", "KG", "DOT", "ACT"])(
    _conv_kernel
)


def prepack_weight(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """[C_out, C_in/groups, KH, KW] -> [groups, KH*KW*C_in/groups, C_out/groups] (K = kh, kw, ci);
    depthwise weights become [KH*KW, C]."""
    co, cg, kh, kw = weight.shape
    if cg == 1 and co == groups:
        return weight.reshape(co, kh * kw).t().contiguous()
    w = weight.reshape(groups, co // groups, cg, kh, kw).permute(0, 3, 4, 2, 1)
    return w.reshape(groups, kh * kw * cg, co // groups).contiguous()


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
    *,
    strides: tuple[int, int] = (1, 1),
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilations: tuple[int, int] = (1, 1),
    groups: int = 1,
    activation: str | None = None,
    act_params: tuple[float, float] | None = None,
    precision: str = "ieee",
    packed: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``act(conv2d(x, weight) + bias + residual)``; x is [N, C, H, W] (any strides, NHWC
    preferred), pads are ONNX order (top, left, bottom, right). ``packed`` is
    ``prepack_weight(weight, groups)``, computed here when not given."""
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(f"conv2d: x {list(x.shape)} and weight {list(weight.shape)} must be 4-D")
    NB, C, H, W = x.shape
    CO, CG, KH, KW = weight.shape
    if C != CG * groups or CO % groups:
        raise ValueError(
            f"conv2d: x has {C} channels, weight {list(weight.shape)}, groups {groups}"
        )
    sh, sw = strides
    dh, dw = dilations
    pt, pl, pb, pr = pads
    P = (H + pt + pb - dh * (KH - 1) - 1) // sh + 1
    Q = (W + pl + pr - dw * (KW - 1) - 1) // sw + 1
    if P <= 0 or Q <= 0:
        raise ValueError(f"conv2d: empty output {P}x{Q} for input {H}x{W}, kernel {KH}x{KW}")
    if out is None:
        out = torch.empty((NB, CO, P, Q), dtype=x.dtype, device=x.device).contiguous(
            memory_format=torch.channels_last
        )
    if residual is not None:
        try:
            residual = residual.expand(NB, CO, P, Q)
        except RuntimeError:
            raise ValueError(
                f"conv2d: residual {list(residual.shape)} != {[NB, CO, P, Q]}"
            ) from None
    r = residual if residual is not None else out
    p0, p1 = act_params if act_params is not None else default_params(activation)
    flags = dict(HAS_BIAS=bias is not None, HAS_RES=residual is not None, ACT=act_code(activation))
    bias_t = bias if bias is not None else out
    depthwise = CG == 1 and CO == groups
    if packed is None:
        packed = prepack_weight(weight, groups)
    if depthwise:
        grid = (cdiv(NB * P * Q, _DW_BLOCK_P), cdiv(C, _DW_BLOCK_C))
        _depthwise_kernel[grid](
            x, packed, bias_t, r, out, NB, C, H, W, P, Q,
            *x.stride(), *r.stride(), *out.stride(),
            KH, KW, sh, sw, pt, pl, dh, dw, float(p0), float(p1),
            **flags, BLOCK_P=_DW_BLOCK_P, BLOCK_C=_DW_BLOCK_C,
        )  # fmt: skip
        return out
    dot = dot_code(precision)
    if x.dtype == torch.bfloat16:
        dot = 2
    elif x.dtype == torch.float16:
        dot = 3
    COG = CO // groups
    KG = KH * KW * CG
    args = (
        x, packed, bias_t, r, out, NB, C, H, W, CO, P, Q, CG, COG, KG,
        *x.stride(), *r.stride(), *out.stride(),
        KW, sh, sw, pt, pl, dh, dw, float(p0), float(p1),
    )  # fmt: skip
    flags.update(DOT=dot, EMULATE=interpreting())
    if interpreting():
        meta = interpret_tiles(NB * P * Q, COG, KG)
        grid = (cdiv(NB * P * Q, meta["BLOCK_M"]), cdiv(COG, meta["BLOCK_N"]), groups)
        _conv_kernel[grid](*args, **flags, **meta)
    else:

        def grid(meta):
            return (cdiv(NB * P * Q, meta["BLOCK_M"]), cdiv(COG, meta["BLOCK_N"]), groups)

        _conv_tuned[grid](*args, **flags)
    return out


def conv2d_reference(
    x, weight, bias=None, residual=None, *, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1),
    groups=1, activation=None, act_params=None,
):  # fmt: skip
    """float64 numpy reference of ``conv2d`` (im2col per group)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(weight, np.float64)
    NB, C, H, W = x.shape
    CO, CG, KH, KW = w.shape
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    P = (H + pt + pb - dilations[0] * (KH - 1) - 1) // strides[0] + 1
    Q = (W + pl + pr - dilations[1] * (KW - 1) - 1) // strides[1] + 1
    y = np.zeros((NB, CO, P, Q))
    cog = CO // groups
    for g in range(groups):
        xs = xp[:, g * CG : (g + 1) * CG]
        for kh in range(KH):
            for kw in range(KW):
                h0, w0 = kh * dilations[0], kw * dilations[1]
                patch = xs[:, :, h0 : h0 + strides[0] * (P - 1) + 1 : strides[0],
                           w0 : w0 + strides[1] * (Q - 1) + 1 : strides[1]]  # fmt: skip
                wk = w[g * cog : (g + 1) * cog, :, kh, kw]
                y[:, g * cog : (g + 1) * cog] += np.einsum("ncpq,oc->nopq", patch, wk)
    if bias is not None:
        y += np.asarray(bias, np.float64).reshape(1, -1, 1, 1)
    if residual is not None:
        y += np.asarray(residual, np.float64)
    p0, p1 = act_params if act_params is not None else default_params(activation)
    return activation_reference(y, activation, p0, p1)


def _aot_specs():
    sig = {n: "i32" for n in _conv_kernel.arg_names}
    sig.update({"x_ptr": "*fp32", "w_ptr": "*fp32", "bias_ptr": "*fp32", "r_ptr": "*fp32",
                "y_ptr": "*fp32", "p0": "fp32", "p1": "fp32"})  # fmt: skip
    specs = []
    for cfg in CONFIGS:
        for dtype, dot in (("fp32", 1), ("fp32", 0), ("fp16", 3), ("bf16", 2)):
            s = dict(sig, x_ptr=f"*{dtype}", w_ptr=f"*{dtype}", y_ptr=f"*{dtype}")
            consts = dict(
                HAS_BIAS=True, HAS_RES=dot != 0, ACT=1, DOT=dot, EMULATE=False, **cfg.kwargs
            )
            opts = {"num_warps": cfg.num_warps, "num_stages": cfg.num_stages}
            specs.append((_conv_kernel, s, consts, opts))
    dsig = {n: "i32" for n in _depthwise_kernel.arg_names}
    dsig.update({"x_ptr": "*fp32", "w_ptr": "*fp32", "bias_ptr": "*fp32", "r_ptr": "*fp32",
                 "y_ptr": "*fp32", "p0": "fp32", "p1": "fp32"})  # fmt: skip
    for dtype in ("fp32", "fp16"):
        s = dict(dsig, x_ptr=f"*{dtype}", w_ptr=f"*{dtype}", y_ptr=f"*{dtype}")
        consts = dict(HAS_BIAS=True, HAS_RES=True, ACT=9, BLOCK_P=_DW_BLOCK_P, BLOCK_C=_DW_BLOCK_C)
        specs.append((_depthwise_kernel, s, consts, {"num_warps": 4}))
    return specs
