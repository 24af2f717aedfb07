"""LayerNormalization and RMSNorm over the trailing dims, with an optional fused residual add.

    h = x + r                                  (r optional)
    LayerNorm: y = (h - mean(h)) / sqrt(var(h) + eps) * w + b
    RMSNorm:   y = h / sqrt(mean(h^2) + eps) * w (+ b)

Statistics are fp32 (two passes over the row: mean first, then the centred variance, which
keeps precision for rows with a large mean). One program per row.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from ._launch import row_block, row_warps
from .pointwise import contiguous


@triton.jit
def _norm_kernel(
    x_ptr, r_ptr, w_ptr, b_ptr, y_ptr, N, eps,
    HAS_RES: tl.constexpr, HAS_BIAS: tl.constexpr, RMS: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0).to(tl.int64)
    x_ptr += row * N
    r_ptr += row * N
    y_ptr += row * N
    cols = tl.arange(0, BLOCK)
    mean = 0.0
    if not RMS:
        total = tl.zeros((BLOCK,), dtype=tl.float32)
        for start in range(0, N, BLOCK):
            m = start + cols < N
            h = tl.load(x_ptr + start + cols, mask=m, other=0.0).to(tl.float32)
            if HAS_RES:
                h += tl.load(r_ptr + start + cols, mask=m, other=0.0).to(tl.float32)
            total += h
        mean = tl.sum(total, axis=0) / N
    sq = tl.zeros((BLOCK,), dtype=tl.float32)
    for start in range(0, N, BLOCK):
        m = start + cols < N
        h = tl.load(x_ptr + start + cols, mask=m, other=0.0).to(tl.float32)
        if HAS_RES:
            h += tl.load(r_ptr + start + cols, mask=m, other=0.0).to(tl.float32)
        d = tl.where(m, h - mean, 0.0)
        sq += d * d
    inv = 1.0 / tl.sqrt(tl.sum(sq, axis=0) / N + eps)
    for start in range(0, N, BLOCK):
        m = start + cols < N
        h = tl.load(x_ptr + start + cols, mask=m, other=0.0).to(tl.float32)
        if HAS_RES:
            h += tl.load(r_ptr + start + cols, mask=m, other=0.0).to(tl.float32)
        w = tl.load(w_ptr + start + cols, mask=m, other=0.0).to(tl.float32)
        y = (h - mean) * inv * w
        if HAS_BIAS:
            y += tl.load(b_ptr + start + cols, mask=m, other=0.0).to(tl.float32)
        tl.store(y_ptr + start + cols, y.to(y_ptr.dtype.element_ty), mask=m)


def layer_norm(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    axis: int = -1,
    eps: float = 1e-5,
    rms: bool = False,
    residual: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Normalize ``x (+ residual)`` over dims ``axis..`` (LayerNorm, or RMSNorm with ``rms``);
    weight and bias have (or broadcast to) the normalized dims' shape."""
    axis = axis + x.dim() if axis < 0 else axis
    if not 0 <= axis < x.dim():
        raise ValueError(f"layer_norm: axis {axis} out of range for rank {x.dim()}")
    n = int(np.prod(x.shape[axis:], dtype=np.int64))
    if weight.numel() not in (1, n) or (bias is not None and bias.numel() not in (1, n)):
        raise ValueError(f"layer_norm: weight/bias must have {n} elements (dims {axis}..)")
    if residual is not None and residual.shape != x.shape:
        raise ValueError(f"layer_norm: residual {list(residual.shape)} != x {list(x.shape)}")
    x = contiguous(x)
    res = contiguous(residual) if residual is not None else x
    w = contiguous(weight.reshape(-1).expand(n))
    b = contiguous(bias.reshape(-1).expand(n)) if bias is not None else w
    if out is None:
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    rows = x.numel() // max(n, 1)
    if rows == 0 or n == 0:
        return out
    block = row_block(n)
    _norm_kernel[(rows,)](
        x, res, w, b, out, n, float(eps),
        HAS_RES=residual is not None, HAS_BIAS=bias is not None, RMS=rms, BLOCK=block,
        num_warps=row_warps(block),
    )  # fmt: skip
    return out


def layer_norm_reference(x, weight, bias=None, *, axis=-1, eps=1e-5, rms=False, residual=None):
    """float64 numpy reference of ``layer_norm``."""
    h = np.asarray(x, np.float64)
    if residual is not None:
        h = h + np.asarray(residual, np.float64)
    axis = axis + h.ndim if axis < 0 else axis
    axes = tuple(range(axis, h.ndim))
    norm_shape = h.shape[axis:]
    if rms:
        y = h / np.sqrt(np.mean(h * h, axis=axes, keepdims=True) + eps)
    else:
        mean = h.mean(axis=axes, keepdims=True)
        y = (h - mean) / np.sqrt(((h - mean) ** 2).mean(axis=axes, keepdims=True) + eps)
    y = y * np.broadcast_to(
        np.asarray(weight, np.float64).reshape(-1), (int(np.prod(norm_shape)),)
    ).reshape(norm_shape)
    if bias is not None:
        y = y + np.broadcast_to(
            np.asarray(bias, np.float64).reshape(-1), (int(np.prod(norm_shape)),)
        ).reshape(norm_shape)
    return y


def _aot_specs():
    sig = {"x_ptr": "*fp32", "r_ptr": "*fp32", "w_ptr": "*fp32", "b_ptr": "*fp32",
           "y_ptr": "*fp32", "N": "i32", "eps": "fp32"}  # fmt: skip
    specs = []
    for dtype in ("fp32", "fp16", "bf16"):
        for rms in (False, True):
            for block in (128, 1024, 4096):
                s = dict(sig, x_ptr=f"*{dtype}", r_ptr=f"*{dtype}", y_ptr=f"*{dtype}")
                consts = dict(HAS_RES=True, HAS_BIAS=not rms, RMS=rms, BLOCK=block)
                specs.append((_norm_kernel, s, consts, {"num_warps": row_warps(block)}))
    return specs
