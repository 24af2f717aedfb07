"""Numeric comparison with the error measure the project states tolerances in."""

from __future__ import annotations

import numpy as np


def relative_l2(expected: np.ndarray, actual: np.ndarray) -> float:
    """||actual - expected|| / ||expected|| in float64 (absolute norm if expected is zero).
    Shape or dtype-kind mismatches and NaN placement differences give inf."""
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    if expected.shape != actual.shape:
        return float("inf")
    if expected.dtype.kind in "biuU" or actual.dtype.kind in "biuU":
        return 0.0 if np.array_equal(expected, actual) else float("inf")
    e = expected.astype(np.float64)
    a = actual.astype(np.float64)
    if not np.array_equal(np.isnan(e), np.isnan(a)):
        return float("inf")
    mask = ~np.isnan(e)
    diff = np.linalg.norm((a - e)[mask])
    norm = np.linalg.norm(e[mask])
    return float(diff / norm) if norm > 0 else float(diff)


def assert_numerically_equal(expected, actual, rtol: float, names=None) -> None:
    for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
        err = relative_l2(e, a)
        label = names[i] if names else f"output {i}"
        assert err <= rtol, f"{label}: relative L2 error {err:.3g} > {rtol:g}"
