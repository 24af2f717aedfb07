"""Fused attention (flash-style): one pass over the keys with an online softmax.

    O[b, h] = softmax(scale * Q[b, h] @ K[b, h]^T + mask[b, h] (+ causal)) @ V[b, h]

Q is [B, H, M, D], K and V are [B, H, N, D] (any strides; K/V heads may be shared, H_kv
dividing H). ``mask`` is additive and broadcasts to [B, H, M, N] (padding masks are
[B, 1, 1, N]); a boolean mask keeps the True positions. ``causal`` hides keys j > i + (N - M).
Head dims up to 256 (padded to a power of two inside the kernel). Rows whose every key is
masked give zeros.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import triton
import triton.language as tl

from ._activation import half_dot
from ._launch import cdiv, interpreting, next_pow2

# (BLOCK_M, BLOCK_N, num_warps, num_stages)
_TUNE = [(128, 64, 8, 3), (128, 32, 4, 3), (64, 64, 4, 3), (64, 32, 4, 2), (32, 32, 4, 2)]
CONFIGS = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
    for bm, bn, w, s in _TUNE
]
_INTERPRET_META = {"BLOCK_M": 32, "BLOCK_N": 32}


@triton.jit
def _attention_kernel(
    q_ptr, k_ptr, v_ptr, m_ptr, o_ptr,
    H, HKV, M, N, D, scale,
    sqb, sqh, sqm, sqd,
    skb, skh, skn, skd,
    svb, svh, svn, svd,
    smb, smh, smm, smn,
    sob, soh, som, sod,
    HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr, DOT: tl.constexpr, EMULATE: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    hk = h // (H // HKV)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rd = tl.arange(0, BLOCK_D)
    rn = tl.arange(0, BLOCK_N)
    m_ok = rm < M
    d_ok = rd < D
    q = tl.load(
        q_ptr + b * sqb + h * sqh + rm[:, None] * sqm + rd[None, :] * sqd,
        mask=m_ok[:, None] & d_ok[None, :],
        other=0.0,
    )
    k_base = k_ptr + b * skb + hk * skh
    v_base = v_ptr + b * svb + hk * svh
    m_base = m_ptr + b * smb + h * smh
    # log2 domain: exp2 is the fast path on the GPU
    qk_scale = scale * 1.4426950408889634
    m_i = tl.full((BLOCK_M,), float("-inf"), tl.float32)
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    hi = N
    if CAUSAL:
        hi = tl.minimum(N, (pid_m + 1) * BLOCK_M + (N - M))
    for start in range(0, hi, BLOCK_N):
        cols = start + rn
        n_ok = cols < N
        k = tl.load(
            k_base + cols[None, :] * skn + rd[:, None] * skd,
            mask=n_ok[None, :] & d_ok[:, None],
            other=0.0,
        )
        s = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        if DOT == 0:
            s = tl.dot(q, k, s, input_precision="ieee")
        elif DOT == 1:
            s = tl.dot(q, k, s, input_precision="tf32")
        else:
            s = half_dot(q, k, s, DOT, EMULATE)
        s = s * qk_scale
        if HAS_MASK:
            s += (
                tl.load(
                    m_base + rm[:, None] * smm + cols[None, :] * smn,
                    mask=m_ok[:, None] & n_ok[None, :],
                    other=0.0,
                ).to(tl.float32)
                * 1.4426950408889634
            )
        keep = n_ok[None, :]
        if CAUSAL:
            keep = keep & (cols[None, :] <= rm[:, None] + (N - M))
        s = tl.where(keep, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.exp2(s - m_safe[:, None])
        corr = tl.exp2(m_i - m_safe)
        l_i = l_i * corr + tl.sum(p, axis=1)
        acc = acc * corr[:, None]
        v = tl.load(
            v_base + cols[:, None] * svn + rd[None, :] * svd,
            mask=n_ok[:, None] & d_ok[None, :],
            other=0.0,
        )
        if DOT == 0:
            acc = tl.dot(p.to(v.dtype), v, acc, input_precision="ieee")
        elif DOT == 1:
            acc = tl.dot(p.to(v.dtype), v, acc, input_precision="tf32")
        else:
            acc = half_dot(p, v, acc, DOT, EMULATE)
        m_i = m_new
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    out = acc / l_safe[:, None]
    tl.store(
        o_ptr + b * sob + h * soh + rm[:, None] * som + rd[None, :] * sod,
        out.to(o_ptr.dtype.element_ty),
        mask=m_ok[:, None] & d_ok[None, :],
    )


_attention_tuned = triton.autotune(configs=CONFIGS, key=["M", "N", "BLOCK_D", "DOT", "CAUSAL"])(
    _attention_kernel
)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    causal: bool = False,
    scale: float | None = None,
    precision: str = "ieee",
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``softmax(scale * q @ k^T + mask [causal]) @ v`` per (batch, head); scale defaults to
    1/sqrt(D). ``precision`` (ieee|tf32|bf16|fp16) applies to fp32 inputs."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            f"attention: q, k, v must be 4-D [B, H, S, D], got {q.dim()}, {k.dim()}, {v.dim()}"
        )
    B, H, M, D = q.shape
    if k.shape != v.shape or k.shape[0] != B or k.shape[3] != D or H % k.shape[1]:
        raise ValueError(
            f"attention: q {list(q.shape)}, k {list(k.shape)}, v {list(v.shape)} mismatch"
        )
    if D > 256:
        raise ValueError(f"attention: head dim {D} > 256")
    N = k.shape[2]
    from ._launch import dot_code

    dot = dot_code(precision)
    if q.dtype == torch.bfloat16:
        dot = 2
    elif q.dtype == torch.float16:
        dot = 3
    if mask is not None:
        if mask.dtype == torch.bool:
            mask = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_fill(
                ~mask, float("-inf")
            )
        try:
            mask = mask.expand(B, H, M, N)
        except RuntimeError:
            raise ValueError(
                f"attention: mask {list(mask.shape)} does not broadcast to {[B, H, M, N]}"
            ) from None
        m_strides = mask.stride()
    else:
        mask, m_strides = q, (0, 0, 0, 0)
    if out is None:
        out = torch.empty((B, H, M, D), dtype=q.dtype, device=q.device)
    scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
    args = (
        q, k, v, mask, out, H, k.shape[1], M, N, D, scale,
        *q.stride(), *k.stride(), *v.stride(), *m_strides, *out.stride(),
    )  # fmt: skip
    flags = dict(
        HAS_MASK=mask is not q, CAUSAL=causal, DOT=dot, EMULATE=interpreting(),
        BLOCK_D=max(next_pow2(D), 16),
    )  # fmt: skip
    if interpreting():
        _attention_kernel[(cdiv(M, _INTERPRET_META["BLOCK_M"]), B * H)](
            *args, **flags, **_INTERPRET_META
        )
    else:
        _attention_tuned[lambda meta: (cdiv(M, meta["BLOCK_M"]), B * H)](*args, **flags)
    return out


def attention_reference(q, k, v, mask=None, *, causal=False, scale=None):
    """float64 numpy reference of ``attention`` (fully masked rows give zeros)."""
    q, k, v = (np.asarray(t, np.float64) for t in (q, k, v))
    rep = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = scale * q @ np.swapaxes(k, -1, -2)
    if mask is not None:
        mask = np.asarray(mask)
        s = s + (np.where(mask, 0.0, -np.inf) if mask.dtype == bool else mask.astype(np.float64))
    M, N = s.shape[-2:]
    if causal:
        s = np.where(np.arange(N)[None, :] <= np.arange(M)[:, None] + (N - M), s, -np.inf)
    top = s.max(axis=-1, keepdims=True)
    top = np.where(np.isinf(top), 0.0, top)
    p = np.exp(s - top)
    total = p.sum(axis=-1, keepdims=True)
    return (p / np.where(total == 0, 1.0, total)) @ v


def _aot_specs():
    sig = {n: "i32" for n in _attention_kernel.arg_names}
    sig.update({"q_ptr": "*fp32", "k_ptr": "*fp32", "v_ptr": "*fp32", "m_ptr": "*fp32",
                "o_ptr": "*fp32", "scale": "fp32"})  # fmt: skip
    specs = []
    for cfg in CONFIGS:
        for dtype, dot, d in (("fp32", 1, 64), ("fp16", 3, 128), ("bf16", 2, 32), ("fp32", 0, 64)):
            s = dict(sig)
            for name in ("q_ptr", "k_ptr", "v_ptr", "o_ptr"):
                s[name] = f"*{dtype}"
            consts = dict(
                HAS_MASK=True, CAUSAL=dot != 0, DOT=dot, EMULATE=False, BLOCK_D=d, **cfg.kwargs
            )
            opts = {"num_warps": cfg.num_warps, "num_stages": cfg.num_stages}
            specs.append((_attention_kernel, s, consts, opts))
    return specs
