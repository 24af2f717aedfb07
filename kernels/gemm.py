"""Batched GEMM with a fused epilogue.

    C[b] = act(alpha * A[b] @ B[b] + bias + R[b])

A is [..., M, K], B is [..., K, N] (leading dims broadcast), bias is [N], R (the residual) is
broadcastable to C. Any strides are accepted, so transposed operands cost nothing. fp32 inputs
multiply exactly (``ieee``), as tf32, or rounded to bf16/fp16; fp16/bf16 inputs use their own
type. Accumulation is fp32 in every mode.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from ._activation import activation_reference, apply_activation, default_params, half_dot
from ._launch import act_code, cdiv, dot_code, interpret_tiles, interpreting

# (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages)
_TUNE = [
    (128, 128, 32, 8, 4, 4),
    (128, 256, 32, 8, 8, 3),
    (256, 128, 32, 8, 8, 3),
    (64, 128, 32, 8, 4, 4),
    (128, 64, 32, 8, 4, 4),
    (64, 64, 32, 8, 4, 4),
    (32, 64, 32, 8, 4, 4),
    (16, 64, 64, 8, 4, 3),
]
CONFIGS = [
    triton.Config(
        {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": g}, num_warps=w, num_stages=s
    )
    for bm, bn, bk, g, w, s in _TUNE
]


@triton.jit
def _gemm_kernel(
    a_ptr, b_ptr, bias_ptr, r_ptr, c_ptr,
    M, N, K,
    s_ab, s_am, s_ak,
    s_bb, s_bk, s_bn,
    s_rb, s_rm, s_rn,
    s_cb, s_cm, s_cn,
    alpha, p0, p1,
    HAS_BIAS: tl.constexpr, HAS_RES: tl.constexpr, ACT: tl.constexpr, DOT: tl.constexpr,
    EMULATE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    batch = tl.program_id(1).to(tl.int64)
    # grouped ordering: GROUP_M row-tiles share each column tile while it sits in L2
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(N, BLOCK_N)
    per_group = GROUP_M * num_n
    first_m = (pid // per_group) * GROUP_M
    group_rows = tl.minimum(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % group_rows
    pid_n = (pid % per_group) // group_rows

    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    m_ok = rm < M
    n_ok = rn < N
    a_ptrs = a_ptr + batch * s_ab + rm[:, None] * s_am + rk[None, :] * s_ak
    b_ptrs = b_ptr + batch * s_bb + rk[:, None] * s_bk + rn[None, :] * s_bn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k_ok = (k0 + rk) < K
        a = tl.load(a_ptrs, mask=m_ok[:, None] & k_ok[None, :], other=0.0)
        b = tl.load(b_ptrs, mask=k_ok[:, None] & n_ok[None, :], other=0.0)
        if DOT == 0:
            acc = tl.dot(a, b, acc, input_precision="ieee")
        elif DOT == 1:
            acc = tl.dot(a, b, acc, input_precision="tf32")
        else:
            acc = half_dot(a, b, acc, DOT, EMULATE)
        a_ptrs += BLOCK_K * s_ak
        b_ptrs += BLOCK_K * s_bk

    acc = acc * alpha
    if HAS_BIAS:
        acc += tl.load(bias_ptr + rn, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    mask = m_ok[:, None] & n_ok[None, :]
    if HAS_RES:
        r_ptrs = r_ptr + batch * s_rb + rm[:, None] * s_rm + rn[None, :] * s_rn
        acc += tl.load(r_ptrs, mask=mask, other=0.0).to(tl.float32)
    acc = apply_activation(acc, p0, p1, ACT)
    c_ptrs = c_ptr + batch * s_cb + rm[:, None] * s_cm + rn[None, :] * s_cn
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=mask)


_gemm_tuned = triton.autotune(configs=CONFIGS, key=["M", "N", "K", "DOT", "HAS_RES", "ACT"])(
    _gemm_kernel
)

_HALF = (torch.float16, torch.bfloat16)


def _as_3d(t: torch.Tensor, batch: tuple[int, ...]) -> torch.Tensor:
    t = t.expand(*batch, *t.shape[-2:])
    return t.reshape(-1, *t.shape[-2:])


def gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    bias: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
    *,
    activation: str | None = None,
    act_params: tuple[float, float] | None = None,
    alpha: float = 1.0,
    precision: str = "ieee",
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``act(alpha * a @ b + bias + residual)``; ``precision`` is ieee|tf32|bf16|fp16 for fp32
    inputs (half inputs always multiply in their own type). Returns a tensor of a's dtype."""
    if a.dim() < 2 or b.dim() < 2 or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"gemm: a {list(a.shape)} and b {list(b.shape)} do not multiply")
    if a.dtype != b.dtype or a.dtype not in (torch.float32, *_HALF):
        raise ValueError(f"gemm: a and b must share a float dtype, got {a.dtype} and {b.dtype}")
    if bias is not None and bias.numel() != b.shape[-1]:
        raise ValueError(f"gemm: bias has {bias.numel()} elements, N is {b.shape[-1]}")
    dot = dot_code(precision)
    if a.dtype == torch.bfloat16:
        dot = 2
    elif a.dtype == torch.float16:
        dot = 3
    batch = tuple(torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    out_shape = (*batch, M, N)
    if out is None:
        out = torch.empty(out_shape, dtype=a.dtype, device=a.device)
    elif tuple(out.shape) != out_shape:
        raise ValueError(f"gemm: out has shape {list(out.shape)}, expected {list(out_shape)}")
    a3, b3, c3 = _as_3d(a, batch), _as_3d(b, batch), _as_3d(out, batch)
    if c3.data_ptr() != out.data_ptr() or (out.dim() > 3 and not out.is_contiguous()):
        raise ValueError("gemm: out must be contiguous")
    if residual is not None:
        try:
            r3 = _as_3d(residual.expand(out_shape), batch)
        except RuntimeError:
            raise ValueError(
                f"gemm: residual {list(residual.shape)} does not broadcast to {list(out_shape)}"
            ) from None
        r_strides = r3.stride()
    else:
        r3, r_strides = c3, (0, 0, 0)
    bias_t = bias.reshape(-1) if bias is not None else c3
    p0, p1 = act_params if act_params is not None else default_params(activation)
    args = (
        a3, b3, bias_t, r3, c3, M, N, K,
        *a3.stride(), *b3.stride(), *r_strides, *c3.stride(),
        float(alpha), float(p0), float(p1),
    )  # fmt: skip
    flags = dict(
        HAS_BIAS=bias is not None,
        HAS_RES=residual is not None,
        ACT=act_code(activation),
        DOT=dot,
        EMULATE=interpreting(),
    )
    batches = c3.shape[0]
    if interpreting():
        meta = dict(interpret_tiles(M, N, K), GROUP_M=4)
        grid = (cdiv(M, meta["BLOCK_M"]) * cdiv(N, meta["BLOCK_N"]), batches)
        _gemm_kernel[grid](*args, **flags, **meta)
    else:

        def grid(meta):
            return (cdiv(M, meta["BLOCK_M"]) * cdiv(N, meta["BLOCK_N"]), batches)

        _gemm_tuned[grid](*args, **flags)
    return out


def gemm_reference(a, b, bias=None, residual=None, *, activation=None, act_params=None, alpha=1.0):
    """float64 numpy reference of ``gemm``."""
    y = alpha * np.matmul(np.asarray(a, np.float64), np.asarray(b, np.float64))
    if bias is not None:
        y = y + np.asarray(bias, np.float64).reshape(-1)
    if residual is not None:
        y = y + np.asarray(residual, np.float64)
    p0, p1 = act_params if act_params is not None else default_params(activation)
    return activation_reference(y, activation, p0, p1)


def _aot_specs():
    """(kernel, signature, constexprs, options) for every autotune config, for AOT tests."""
    sig = {n: "i32" for n in _gemm_kernel.arg_names}
    sig.update({"a_ptr": "*fp32", "b_ptr": "*fp32", "bias_ptr": "*fp32", "r_ptr": "*fp32",
                "c_ptr": "*fp32", "alpha": "fp32", "p0": "fp32", "p1": "fp32"})  # fmt: skip
    specs = []
    for cfg in CONFIGS:
        for dtype, dot in (("fp32", 1), ("fp32", 0), ("bf16", 2), ("fp16", 3)):
            s = dict(sig)
            s.update({"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "c_ptr": f"*{dtype}"})
            consts = dict(HAS_BIAS=True, HAS_RES=True, ACT=2, DOT=dot, EMULATE=False, **cfg.kwargs)
            opts = {"num_warps": cfg.num_warps, "num_stages": cfg.num_stages}
            specs.append((_gemm_kernel, s, consts, opts))
    return specs
