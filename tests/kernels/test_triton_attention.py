"""Fused attention vs float64 numpy: head dims 32-128 (non powers of two too), causal and
padding masks, grouped K/V heads, ragged sequence lengths."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_helpers import check, randn, rounded, to_torch

from infopt.kernels.attention import attention, attention_reference

CASES = [  # (B, H, H_kv, M, N, D, causal, mask kind)
    (1, 1, 1, 1, 1, 32, False, None),
    (2, 3, 3, 37, 45, 48, False, "padding"),
    (1, 4, 2, 50, 50, 64, True, None),
    (1, 2, 2, 20, 70, 128, True, "padding"),
    (2, 2, 1, 33, 33, 80, False, "bool"),
    (1, 2, 2, 17, 29, 96, True, "full"),
]


@pytest.mark.parametrize("seed,case", list(enumerate(CASES)))
@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_attention(seed, case, dtype):
    rng = np.random.default_rng(seed)
    B, H, HK, M, N, D, causal, kind = case
    q, k, v = randn(rng, B, H, M, D), randn(rng, B, HK, N, D), randn(rng, B, HK, N, D)
    mask = None
    if kind == "padding":
        mask = np.where(rng.random((B, 1, 1, N)) < 0.25, -1e4, 0).astype(np.float32)
    elif kind == "bool":
        mask = rng.random((B, 1, M, N)) < 0.8
        mask[..., 0] = True  # keep every row non-empty
    elif kind == "full":
        mask = randn(rng, B, H, M, N)
    tm = (
        None
        if mask is None
        else (to_torch(mask) if mask.dtype != bool else __import__("torch").from_numpy(mask))
    )
    y = attention(to_torch(q, dtype), to_torch(k, dtype), to_torch(v, dtype), tm, causal=causal)
    ref = attention_reference(rounded(q, dtype), rounded(k, dtype), rounded(v, dtype), mask,
                              causal=causal)  # fmt: skip
    tol = {"fp32": (1e-4, 1e-4), "fp16": (1e-2, 1e-2), "bf16": (6e-2, 4e-2)}[dtype]
    check(y, ref, dtype, seed, f"attention {case}", tol=tol)


def test_attention_strided_inputs():
    """[B, S, H, D] tensors viewed as [B, H, S, D] (what a transpose-free export gives)."""
    rng = np.random.default_rng(9)
    q, k, v = (randn(rng, 2, 21, 3, 32) for _ in range(3))
    qt, kt, vt = (to_torch(t).transpose(1, 2) for t in (q, k, v))
    y = attention(qt, kt, vt, scale=0.3)
    ref = attention_reference(*(np.swapaxes(t, 1, 2) for t in (q, k, v)), scale=0.3)
    check(y, ref, "fp32", 9, "strided attention", tol=(1e-4, 1e-4))


def test_attention_tf32_mode():
    rng = np.random.default_rng(4)
    q, k, v = (randn(rng, 1, 2, 19, 64) for _ in range(3))
    y = attention(to_torch(q), to_torch(k), to_torch(v), precision="tf32")
    check(y, attention_reference(q, k, v), "tf32", 4, "attention tf32", tol=(1e-2, 1e-2))


def test_attention_rejects_bad_rank():
    import torch

    with pytest.raises(ValueError, match=r"^attention: q, k, v must be 4-D"):
        attention(torch.ones(2, 3, 4), torch.ones(2, 3, 4), torch.ones(2, 3, 4))


MASK_CASES = [  # (B, H, S, D, mask shape kind, causal) -- the shapes infopt.Attention passes
    (2, 3, 7, 32, "pad", False),  # [B, 1, 1, S]
    (2, 2, 13, 64, "pad", True),
    (1, 3, 9, 64, "square", False),  # [1, 1, S, S] (a causal mask written as values)
    (2, 2, 11, 32, "batch_square", False),  # [B, 1, S, S] (padding and causal combined)
    (2, 3, 5, 32, "heads", False),  # [1, H, S, S]
]


@pytest.mark.parametrize("seed,case", list(enumerate(MASK_CASES)))
def test_attention_large_negative_masks(seed, case):
    """HF-style additive masks at float32's lowest value (scaled by log2(e) in the kernel it
    overflows to -inf) or -1e9; Kt given transposed ([.., D, S]) and read through strides.
    dtype fp32, atol 1e-4, rtol 1e-4."""
    import torch

    rng = np.random.default_rng(100 + seed)
    B, H, S, D, kind, causal = case
    low = float(np.finfo(np.float32).min)
    q, kt, v = randn(rng, B, H, S, D), randn(rng, B, H, D, S), randn(rng, B, H, S, D)
    keep_cols = rng.random((B, 1, 1, S)) < 0.7
    keep_cols[..., 0] = True  # every row keeps a key (ONNX and the kernel differ otherwise)
    lower = np.tril(np.ones((S, S), bool))[None, None]
    mask = {
        "pad": np.where(keep_cols, 0.0, low),
        "square": np.where(lower, 0.0, -1e9),
        "batch_square": np.where(keep_cols & lower, 0.0, low),
        "heads": np.where(rng.random((1, H, S, S)) < 0.8, 0.0, low) * np.r_[1.0],
    }[kind].astype(np.float32)
    if kind == "heads":
        mask[..., 0] = 0.0
    k_view = to_torch(kt).transpose(-1, -2)
    y = attention(to_torch(q), k_view, to_torch(v), torch.from_numpy(mask), scale=0.37,
                  causal=causal)  # fmt: skip
    ref = attention_reference(q, np.swapaxes(kt, -1, -2), v, mask, scale=0.37, causal=causal)
    check(y, ref, "fp32", seed, f"attention mask {case}", tol=(1e-4, 1e-4))
