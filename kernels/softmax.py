"""Row-wise softmax with an optional additive mask (online, single pass for the statistics).

    y[..., j] = exp(z_j - max_k z_k) / sum_k exp(z_k - max_k z_k),   z = x + mask

The mask broadcasts to x (for attention scores, a [B, 1, 1, S] padding mask or a [S, S] causal
one); it is read through stride-0 views, never materialized. ``log=True`` gives LogSoftmax.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from ._launch import row_block, row_warps
from .pointwise import contiguous


@triton.jit
def _softmax_kernel(
    x_ptr, m_ptr, y_ptr, N, D1, D2, sm0, sm1, sm2, sm3,
    HAS_MASK: tl.constexpr, LOG: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0).to(tl.int64)
    # the row index splits as (i0, i1, i2) over x's leading dims [D0, D1, D2]
    i2 = row % D2
    i1 = (row // D2) % D1
    i0 = row // (D1 * D2)
    x_ptr += row * N
    y_ptr += row * N
    m_ptr += i0 * sm0 + i1 * sm1 + i2 * sm2
    cols = tl.arange(0, BLOCK)
    run_max = tl.full((BLOCK,), float("-inf"), tl.float32)
    run_sum = tl.zeros((BLOCK,), dtype=tl.float32)
    for start in range(0, N, BLOCK):
        ok = start + cols < N
        z = tl.load(x_ptr + start + cols, mask=ok, other=float("-inf")).to(tl.float32)
        if HAS_MASK:
            z += tl.load(m_ptr + (start + cols) * sm3, mask=ok, other=0.0).to(tl.float32)
        new_max = tl.maximum(run_max, z)
        safe = tl.where(new_max == float("-inf"), 0.0, new_max)
        run_sum = run_sum * tl.exp(run_max - safe) + tl.exp(z - safe)
        run_max = new_max
    row_max = tl.max(run_max, axis=0)
    safe_max = tl.where(row_max == float("-inf"), 0.0, row_max)
    total = tl.sum(run_sum * tl.exp(run_max - safe_max), axis=0)
    for start in range(0, N, BLOCK):
        ok = start + cols < N
        z = tl.load(x_ptr + start + cols, mask=ok, other=float("-inf")).to(tl.float32)
        if HAS_MASK:
            z += tl.load(m_ptr + (start + cols) * sm3, mask=ok, other=0.0).to(tl.float32)
        if LOG:
            y = z - safe_max - tl.log(total)
        else:
            y = tl.exp(z - safe_max) / total
        tl.store(y_ptr + start + cols, y.to(y_ptr.dtype.element_ty), mask=ok)


def softmax(
    x: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    axis: int = -1,
    log: bool = False,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax (or LogSoftmax) of ``x + mask`` along ``axis``; mask broadcasts to x."""
    axis = axis + x.dim() if axis < 0 else axis
    if not 0 <= axis < x.dim():
        raise ValueError(f"softmax: axis {axis} out of range for rank {x.dim()}")
    if mask is not None:
        try:
            torch.broadcast_shapes(mask.shape, x.shape)
            if torch.broadcast_shapes(mask.shape, x.shape) != x.shape:
                raise RuntimeError
        except RuntimeError:
            raise ValueError(
                f"softmax: mask {list(mask.shape)} does not broadcast to x {list(x.shape)}"
            ) from None
    moved = axis != x.dim() - 1
    if moved:
        x = x.movedim(axis, -1)
        mask = (
            mask.expand(torch.broadcast_shapes(mask.shape, x.movedim(-1, axis).shape)).movedim(
                axis, -1
            )
            if mask is not None
            else None
        )
    xc = contiguous(x)
    shape = xc.shape
    n = shape[-1] if xc.dim() else 1
    lead = list(shape[:-1])
    while len(lead) < 3:
        lead.insert(0, 1)
    if len(lead) > 3:
        lead = [int(np.prod(lead[:-2], dtype=np.int64)), *lead[-2:]]
    if mask is not None:
        m = mask.expand(shape)
        try:
            m = m.view(*lead, n)
        except RuntimeError:
            m = contiguous(m).view(*lead, n)
        m_strides = m.stride()
    else:
        m, m_strides = xc, (0, 0, 0, 0)
    y = torch.empty(shape, dtype=xc.dtype, device=xc.device) if out is None or moved else out
    rows = xc.numel() // max(n, 1)
    if rows:
        block = row_block(n)
        _softmax_kernel[(rows,)](
            xc, m, y, n, lead[1], lead[2], *m_strides,
            HAS_MASK=mask is not None, LOG=log, BLOCK=block, num_warps=row_warps(block),
        )  # fmt: skip
    if moved:
        y = y.movedim(-1, axis)
        if out is not None:
            out.copy_(y)
            return out
    return y


def softmax_reference(x, mask=None, *, axis=-1, log=False):
    """float64 numpy reference of ``softmax``."""
    z = np.asarray(x, np.float64)
    if mask is not None:
        z = z + np.asarray(mask, np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    if log:
        return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _aot_specs():
    sig = {"x_ptr": "*fp32", "m_ptr": "*fp32", "y_ptr": "*fp32", "N": "i32", "D1": "i32",
           "D2": "i32", "sm0": "i64", "sm1": "i64", "sm2": "i64", "sm3": "i64"}  # fmt: skip
    specs = []
    for dtype in ("fp32", "fp16", "bf16"):
        for log in (False, True):
            for block in (128, 1024, 4096):
                s = dict(sig, x_ptr=f"*{dtype}", m_ptr=f"*{dtype}", y_ptr=f"*{dtype}")
                consts = dict(HAS_MASK=True, LOG=log, BLOCK=block)
                specs.append((_softmax_kernel, s, consts, {"num_warps": row_warps(block)}))
    return specs
