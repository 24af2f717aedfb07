"""Reductions (sum, mean, max, min, sum of squares) over any set of axes.

    y[kept] = op_{reduced axes} x

The host views x as [A, R, B] (A: kept dims before the reduced run, R: the reduced run, B: kept
dims after it), without a copy when the strides allow: GlobalAveragePool of a channels-last
[N, C, H, W] tensor is [N, H*W, C] with C contiguous. Each program reduces a [R, BLOCK_B] strip
in fp32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import triton
import triton.language as tl

from ._launch import cdiv, interpreting, next_pow2
from .pointwise import contiguous

OPS = {"sum": 0, "mean": 1, "max": 2, "min": 3, "sumsquare": 4}


@triton.jit
def _reduce_kernel(
    x_ptr, y_ptr, R, B, sa, sr, sb, scale,
    OP: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_B: tl.constexpr,
):  # fmt: skip
    a = tl.program_id(0).to(tl.int64)
    rb = tl.program_id(1) * BLOCK_B + tl.arange(0, BLOCK_B)
    rr = tl.arange(0, BLOCK_R)
    b_ok = rb < B
    base = x_ptr + a * sa + rb[None, :] * sb
    if OP == 2:
        acc = tl.full((BLOCK_R, BLOCK_B), float("-inf"), tl.float32)
    elif OP == 3:
        acc = tl.full((BLOCK_R, BLOCK_B), float("inf"), tl.float32)
    else:
        acc = tl.zeros((BLOCK_R, BLOCK_B), dtype=tl.float32)
    for start in range(0, R, BLOCK_R):
        r = start + rr
        m = (r < R)[:, None] & b_ok[None, :]
        if OP == 2:
            acc = tl.maximum(acc, tl.load(base + r[:, None] * sr, mask=m, other=float("-inf")))
        elif OP == 3:
            acc = tl.minimum(acc, tl.load(base + r[:, None] * sr, mask=m, other=float("inf")))
        else:
            v = tl.load(base + r[:, None] * sr, mask=m, other=0.0).to(tl.float32)
            if OP == 4:
                v = v * v
            acc += v
    if OP == 2:
        y = tl.max(acc, axis=0)
    elif OP == 3:
        y = tl.min(acc, axis=0)
    else:
        y = tl.sum(acc, axis=0) * scale
    tl.store(y_ptr + a * B + rb, y.to(y_ptr.dtype.element_ty), mask=b_ok)


def _merge(shape: Sequence[int], strides: Sequence[int]) -> tuple[int, int] | None:
    """(size, stride) of dims that one stride walks, or None when they do not merge."""
    dims = [(n, s) for n, s in zip(shape, strides, strict=True) if n != 1]
    if not dims:
        return 1, 0
    size, stride = dims[-1]
    for n, s in reversed(dims[:-1]):
        if s != stride * size:
            return None
        size *= n
    return size, stride


def reduce(
    x: torch.Tensor,
    axes: Sequence[int] | None,
    op: str = "sum",
    *,
    keepdims: bool = True,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reduce ``x`` over ``axes`` (None: all) with sum|mean|max|min|sumsquare."""
    if op not in OPS:
        raise ValueError(f"reduce: unknown op {op!r}; use one of {sorted(OPS)}")
    rank = x.dim()
    axes = sorted({a + rank if a < 0 else a for a in (range(rank) if axes is None else axes)})
    if any(not 0 <= a < rank for a in axes):
        raise ValueError(f"reduce: axes {axes} out of range for rank {rank}")
    kept = [d for d in range(rank) if d not in axes]
    out_shape = [1 if d in axes else x.shape[d] for d in range(rank)]
    final_shape = out_shape if keepdims else [x.shape[d] for d in kept]
    if axes and axes == list(range(axes[0], axes[-1] + 1)):
        groups = [list(range(axes[0])), axes, list(range(axes[-1] + 1, rank))]
        view = x
    else:
        view = x.permute(*kept, *axes)
        groups = [list(range(len(kept))), list(range(len(kept), rank)), []]
    merged = [_merge([view.shape[d] for d in g], [view.stride(d) for d in g]) for g in groups]
    if any(m is None for m in merged):
        view = contiguous(view)
        merged = [_merge([view.shape[d] for d in g], [view.stride(d) for d in g]) for g in groups]
    (A, sa), (R, sr), (B, sb) = merged
    if out is None:
        out = torch.empty(final_shape, dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    scale = 1.0 / R if op == "mean" else 1.0
    block_b = min(next_pow2(B), 64)
    cap = 1 << 14 if interpreting() else 4096
    block_r = max(1, min(next_pow2(R), cap // block_b))
    _reduce_kernel[(A, cdiv(B, block_b))](
        view, out, R, B, sa, sr, sb, scale, OP=OPS[op], BLOCK_R=block_r, BLOCK_B=block_b
    )
    return out


def reduce_reference(x, axes, op="sum", *, keepdims=True):
    """float64 numpy reference of ``reduce``."""
    x = np.asarray(x, np.float64)
    axes = tuple(range(x.ndim)) if axes is None else tuple(axes)
    fn = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}
    if op == "sumsquare":
        return np.sum(x * x, axis=axes, keepdims=keepdims)
    return fn[op](x, axis=axes, keepdims=keepdims)


def _aot_specs():
    sig = {"x_ptr": "*fp32", "y_ptr": "*fp32", "R": "i32", "B": "i32", "sa": "i64", "sr": "i64",
           "sb": "i64", "scale": "fp32"}  # fmt: skip
    specs = []
    for op in OPS.values():
        for block_r, block_b in ((64, 64), (4096, 1)):
            consts = dict(OP=op, BLOCK_R=block_r, BLOCK_B=block_b)
            specs.append((_reduce_kernel, sig, consts, {"num_warps": 4}))
    return specs
