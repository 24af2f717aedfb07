"""Shared helpers for the Triton kernel tests: seeded data and a comparison naming the seed."""

from __future__ import annotations

import numpy as np
import torch

TOL = {
    # dtype: (atol, rtol) for O(1) data with reductions up to a few thousand terms
    "fp32": (2e-4, 2e-4),
    "tf32": (3e-2, 1e-2),
    "fp16": (3e-2, 2e-2),
    "bf16": (2e-1, 5e-2),
}
TORCH = {
    "fp32": torch.float32,
    "tf32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}


def randn(rng: np.random.Generator, *shape: int, scale: float = 1.0, shift: float = 0.0):
    """Standard normal float32 data (never all zeros or ones)."""
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def to_torch(array: np.ndarray, dtype: str = "fp32") -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(TORCH[dtype])


def rounded(array: np.ndarray, dtype: str) -> np.ndarray:
    """The data as the kernel sees it after rounding to ``dtype`` (for the reference)."""
    return to_torch(array, dtype).float().numpy()


def check(actual, expected, dtype: str, seed, what: str, tol=None) -> None:
    atol, rtol = tol or TOL[dtype]
    actual = actual.float().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (
        f"{what} seed={seed}: shape {actual.shape} != {expected.shape}"
    )
    err = np.abs(actual.astype(np.float64) - expected)
    bound = atol + rtol * np.abs(expected)
    bad = ~(err <= bound)
    assert not bad.any(), (
        f"{what} dtype={dtype} seed={seed}: {int(bad.sum())}/{bad.size} elements off, "
        f"max abs err {np.nanmax(err):.3g} (atol {atol:g}, rtol {rtol:g})"
    )
