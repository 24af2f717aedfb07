"""Row gather (the embedding lookup, ``table[ids]``) and GatherND, one launch each.

    gather_rows: out[i..., :] = table[ids[i...] + (V if ids[i...] < 0 else 0), :]
    gather_nd:   out[i..., :] = data[idx[i..., 0], ..., idx[i..., K-1], :]   (K <= 4)

``table`` is [V, ...] with any element type (rows are copied, never converted; bool is copied
as bytes); its trailing dims form a row of W elements. ``ids`` is an int32/int64 tensor of any
shape; the output is ids.shape + table.shape[1:]. An id outside [-V, V) yields a zero row:
ONNX leaves it undefined, and checking on the host would cost a device sync per call.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from ._launch import cdiv, interpreting, next_pow2

_INDEX = (torch.int32, torch.int64)


@triton.jit
def _gather_kernel(
    t_ptr, i_ptr, o_ptr,
    R, W, d0, d1, d2, d3, s0, s1, s2, s3, s_w,
    K: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_W: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_W + tl.arange(0, BLOCK_W)
    r_ok = rows < R
    w_ok = cols < W
    hit = r_ok
    offset = tl.zeros((BLOCK_R,), dtype=tl.int64)
    ids = i_ptr + rows.to(tl.int64) * K
    # K index components, one per leading table dim (K is 1 for Gather, up to 4 for GatherND)
    for j in tl.static_range(K):
        if j == 0:
            d, s = d0, s0
        elif j == 1:
            d, s = d1, s1
        elif j == 2:
            d, s = d2, s2
        else:
            d, s = d3, s3
        ix = tl.load(ids + j, mask=r_ok, other=0).to(tl.int64)
        ix = tl.where(ix < 0, ix + d, ix)
        hit = hit & (ix >= 0) & (ix < d)
        offset += ix * s
    vals = tl.load(
        t_ptr + offset[:, None] + cols[None, :] * s_w,
        mask=hit[:, None] & w_ok[None, :],
        other=0,
    )
    out = o_ptr + rows[:, None].to(tl.int64) * W + cols[None, :]
    tl.store(out, vals, mask=r_ok[:, None] & w_ok[None, :])


def _tiles(rows: int, width: int) -> tuple[int, int, int]:
    """(BLOCK_R, BLOCK_W, num_warps): a few rows per program on the GPU; few, large programs
    under the interpreter, where each program costs Python time."""
    if interpreting():
        return min(next_pow2(rows), 256), min(next_pow2(width), 4096), 1
    block_w = min(next_pow2(width), 1024)
    return (4 if block_w >= 256 else 16), block_w, 4


def _launch(table2: torch.Tensor, ids: torch.Tensor, k: int, dims, strides, out: torch.Tensor):
    """table2: the table with its K leading dims at element ``strides`` and rows of W
    elements at stride table2.stride(-1); ids: contiguous [R, K]."""
    rows = ids.numel() // k
    width = out.numel() // max(rows, 1)
    if rows == 0 or width == 0:
        return out
    o2 = out.view(rows, width)
    if table2.dtype == torch.bool:  # Triton's i1 pointers load bits; copy the bytes instead
        table2, o2 = table2.view(torch.uint8), o2.view(torch.uint8)
    dims = [*dims, 1, 1, 1][:4]
    strides = [*strides, 0, 0, 0][:4]
    block_r, block_w, warps = _tiles(rows, width)
    _gather_kernel[(cdiv(rows, block_r), cdiv(width, block_w))](
        table2, ids, o2, rows, width, *dims, *strides, table2.stride(-1),
        K=k, BLOCK_R=block_r, BLOCK_W=block_w, num_warps=warps,
    )  # fmt: skip
    return out


def _check(name: str, table, ids, shape, out):
    if ids.dtype not in _INDEX:
        raise ValueError(f"{name}: indices must be int32 or int64, got {ids.dtype}")
    if ids.device != table.device:
        raise ValueError(f"{name}: indices on {ids.device}, table on {table.device}")
    if out is None:
        return torch.empty(shape, dtype=table.dtype, device=table.device)
    if tuple(out.shape) != tuple(shape) or out.dtype != table.dtype or not out.is_contiguous():
        raise ValueError(
            f"{name}: out must be contiguous {table.dtype} {list(shape)}, "
            f"got {out.dtype} {list(out.shape)}"
        )
    return out


def gather_rows(
    table: torch.Tensor, ids: torch.Tensor, *, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``table[ids]`` along axis 0 (ONNX Gather with axis=0, negative ids wrap)."""
    if table.dim() < 1:
        raise ValueError("gather_rows: table must have at least one dim")
    out = _check("gather_rows", table, ids, (*ids.shape, *table.shape[1:]), out)
    if table.dim() != 2:
        table = table.reshape(table.shape[0], -1) if table.dim() > 1 else table.unsqueeze(1)
    ids = ids if ids.is_contiguous() else ids.contiguous()
    return _launch(table, ids, 1, [table.shape[0]], [table.stride(0)], out)


def gather_nd(
    data: torch.Tensor, indices: torch.Tensor, *, out: torch.Tensor | None = None
) -> torch.Tensor:
    """ONNX GatherND with batch_dims=0: ``out[i...] = data[indices[i..., 0], ...,
    indices[i..., K-1], ...]`` for K = indices.shape[-1] <= 4 (negative indices wrap)."""
    k = indices.shape[-1] if indices.dim() else 0
    if not 1 <= k <= min(4, data.dim()):
        raise ValueError(
            f"gather_nd: indices' last dim {k} must be in 1..{min(4, data.dim())} "
            f"for data {list(data.shape)}"
        )
    out = _check("gather_nd", data, indices, (*indices.shape[:-1], *data.shape[k:]), out)
    data = data if data.is_contiguous() else data.contiguous()
    width = int(np.prod(data.shape[k:], dtype=np.int64))
    dims = list(data.shape[:k])
    strides = [int(np.prod(dims[j + 1 :], dtype=np.int64)) * width for j in range(k)]
    table = data.reshape(-1, max(width, 1))
    indices = indices if indices.is_contiguous() else indices.contiguous()
    return _launch(table, indices, k, dims, strides, out)


def gather_rows_reference(table, ids) -> np.ndarray:
    """numpy reference of ``gather_rows`` (an out-of-range id gives a zero row)."""
    table, ids = np.asarray(table), np.asarray(ids, np.int64)
    V = table.shape[0]
    wrapped = np.where(ids < 0, ids + V, ids)
    ok = (wrapped >= 0) & (wrapped < V)
    rows = table[np.where(ok, wrapped, 0)]
    return np.where(ok.reshape(ok.shape + (1,) * (table.ndim - 1)), rows, np.zeros_like(rows))


def gather_nd_reference(data, indices) -> np.ndarray:
    """numpy reference of ``gather_nd`` (in-range indices)."""
    data, indices = np.asarray(data), np.asarray(indices, np.int64)
    k = indices.shape[-1]
    wrapped = np.where(indices < 0, indices + np.array(data.shape[:k]), indices)
    return data[tuple(np.moveaxis(wrapped, -1, 0))]


def _aot_specs():
    specs = []
    for dtype in ("fp32", "fp16", "bf16", "u8"):
        for index in ("i64", "i32"):
            for k, (block_r, block_w) in ((1, (4, 1024)), (1, (16, 128)), (2, (16, 32))):
                sig = {a: "i32" for a in _gather_kernel.arg_names}
                sig.update({"t_ptr": f"*{dtype}", "i_ptr": f"*{index}", "o_ptr": f"*{dtype}",
                            "s0": "i64", "s1": "i64", "s2": "i64", "s3": "i64"})  # fmt: skip
                consts = {"K": k, "BLOCK_R": block_r, "BLOCK_W": block_w}
                specs.append((_gather_kernel, sig, consts, {"num_warps": 4}))
    return specs
