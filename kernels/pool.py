"""2-D max and average pooling over NCHW-ordered tensors of any strides (NHWC preferred).

    max: Y[n, c, p, q] = max_{kh, kw} X[n, c, p*sh - ph + kh*dh, q*sw - pw + kw*dw]
    avg: Y[n, c, p, q] = sum_{in-bounds taps} X[...] / divisor

The divisor counts the in-bounds taps, or with ``count_include_pad`` the taps inside the padded
input (as onnxruntime does, so a ceil_mode window that overhangs the padding is not counted).
Global pooling is ``reduce.reduce(x, (2, 3), "mean" | "max", keepdims=True)``. Each program
handles a tile of output pixels x channels, channels fastest.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from ._launch import cdiv, interpreting, next_pow2


@triton.jit
def _pool_kernel(
    x_ptr, y_ptr, NB, C, H, W, P, Q,
    sxn, sxc, sxh, sxw, syn, syc, syh, syw,
    KH, KW, sh, sw, ph, pw, pb, pr, dh, dw,
    IS_MAX: tl.constexpr, INCLUDE_PAD: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):  # fmt: skip
    rp = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    rc = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    p_ok = rp < NB * P * Q
    c_ok = rc < C
    q_idx = rp % Q
    p_idx = (rp // Q) % P
    n_idx = (rp // (P * Q)).to(tl.int64)
    h0 = p_idx * sh - ph
    w0 = q_idx * sw - pw
    if IS_MAX:
        acc = tl.full((BLOCK_P, BLOCK_C), float("-inf"), tl.float32)
    else:
        acc = tl.zeros((BLOCK_P, BLOCK_C), dtype=tl.float32)
    count = tl.zeros((BLOCK_P,), dtype=tl.float32)
    for kh in range(0, KH):
        hh = h0 + kh * dh
        for kw in range(0, KW):
            ww = w0 + kw * dw
            inside = p_ok & (hh >= 0) & (hh < H) & (ww >= 0) & (ww < W)
            ptrs = x_ptr + (n_idx * sxn + hh * sxh + ww * sxw)[:, None] + rc[None, :] * sxc
            m = inside[:, None] & c_ok[None, :]
            if IS_MAX:
                x = tl.load(ptrs, mask=m, other=float("-inf")).to(tl.float32)
                acc = tl.maximum(acc, x)
            else:
                acc += tl.load(ptrs, mask=m, other=0.0).to(tl.float32)
                count += inside.to(tl.float32)
    if not IS_MAX:
        if INCLUDE_PAD:
            hend = tl.minimum(h0 + KH, H + pb)
            wend = tl.minimum(w0 + KW, W + pr)
            count = ((hend - h0) * (wend - w0)).to(tl.float32)
        acc = acc / tl.maximum(count, 1.0)[:, None]
    y_off = n_idx * syn + p_idx * syh + q_idx * syw
    tl.store(
        y_ptr + y_off[:, None] + rc[None, :] * syc,
        acc.to(y_ptr.dtype.element_ty),
        mask=p_ok[:, None] & c_ok[None, :],
    )


def _out_size(size, k, s, p0, p1, d, ceil_mode):
    span = size + p0 + p1 - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    # a ceil-mode window must start inside the input or the leading padding
    if ceil_mode and (out - 1) * s >= size + p0:
        out -= 1
    return out


def pool2d(
    x: torch.Tensor,
    kind: str,
    kernel: tuple[int, int],
    *,
    strides: tuple[int, int] = (1, 1),
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilations: tuple[int, int] = (1, 1),
    ceil_mode: bool = False,
    count_include_pad: bool = False,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """MaxPool (``kind="max"``) or AveragePool (``"avg"``) of a [N, C, H, W] tensor; pads are
    ONNX order (top, left, bottom, right). The output keeps x's memory format."""
    if x.dim() != 4 or kind not in ("max", "avg"):
        raise ValueError(f"pool2d: needs a 4-D x and kind max|avg, got {x.dim()}-D and {kind!r}")
    NB, C, H, W = x.shape
    KH, KW = kernel
    pt, pl, pb, pr = pads
    if kind == "avg" and tuple(dilations) != (1, 1):
        raise ValueError("pool2d: average pooling with dilations is not supported")
    P = _out_size(H, KH, strides[0], pt, pb, dilations[0], ceil_mode)
    Q = _out_size(W, KW, strides[1], pl, pr, dilations[1], ceil_mode)
    if P <= 0 or Q <= 0:
        raise ValueError(f"pool2d: empty output {P}x{Q} for input {H}x{W}, kernel {KH}x{KW}")
    if out is None:
        fmt = (
            torch.channels_last
            if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
            else torch.contiguous_format
        )
        out = torch.empty((NB, C, P, Q), dtype=x.dtype, device=x.device, memory_format=fmt)
    block_c = min(next_pow2(C), 64)
    block_p = 128 if interpreting() else max(16, 2048 // block_c // 4)
    grid = (cdiv(NB * P * Q, block_p), cdiv(C, block_c))
    _pool_kernel[grid](
        x, out, NB, C, H, W, P, Q, *x.stride(), *out.stride(),
        KH, KW, strides[0], strides[1], pt, pl, pb, pr, dilations[0], dilations[1],
        IS_MAX=kind == "max", INCLUDE_PAD=count_include_pad, BLOCK_P=block_p, BLOCK_C=block_c,
    )  # fmt: skip
    return out


def pool2d_reference(
    x, kind, kernel, *, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), ceil_mode=False,
    count_include_pad=False,
):  # fmt: skip
    """float64 numpy reference of ``pool2d`` (a loop over output pixels)."""
    x = np.asarray(x, np.float64)
    NB, C, H, W = x.shape
    KH, KW = kernel
    pt, pl, pb, pr = pads
    P = _out_size(H, KH, strides[0], pt, pb, dilations[0], ceil_mode)
    Q = _out_size(W, KW, strides[1], pl, pr, dilations[1], ceil_mode)
    y = np.zeros((NB, C, P, Q))
    for p in range(P):
        for q in range(Q):
            h0, w0 = p * strides[0] - pt, q * strides[1] - pl
            hs = [h0 + k * dilations[0] for k in range(KH)]
            ws = [w0 + k * dilations[1] for k in range(KW)]
            hs = [h for h in hs if 0 <= h < H]
            ws = [w for w in ws if 0 <= w < W]
            win = x[:, :, hs][:, :, :, ws]
            if kind == "max":
                y[:, :, p, q] = win.max(axis=(2, 3))
            else:
                div = len(hs) * len(ws)
                if count_include_pad:
                    div = (min(h0 + KH, H + pb) - h0) * (min(w0 + KW, W + pr) - w0)
                y[:, :, p, q] = win.sum(axis=(2, 3)) / div
    return y


def _aot_specs():
    sig = {n: "i32" for n in _pool_kernel.arg_names}
    sig.update({"x_ptr": "*fp32", "y_ptr": "*fp32"})
    specs = []
    for dtype in ("fp32", "fp16"):
        for is_max, inc in ((True, False), (False, False), (False, True)):
            s = dict(sig, x_ptr=f"*{dtype}", y_ptr=f"*{dtype}")
            consts = dict(IS_MAX=is_max, INCLUDE_PAD=inc, BLOCK_P=32, BLOCK_C=64)
            specs.append((_pool_kernel, s, consts, {"num_warps": 4}))
    return specs
