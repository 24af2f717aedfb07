"""Vectorised transcendental kernels (Exp, Sigmoid, Tanh, Erf, Gelu) against float64.

Tolerances: error measured in float32 ulps of the float64 result, over a dense sweep of the
whole finite range, where the result is a normal float32; <= 3 ulp for exp/sigmoid/tanh and
<= 4.5e-7 absolute for erf (a rational fit on [0, 3.92]; float32 rounding of its two
polynomials dominates) and <= 1e-6 relative / 3e-6 absolute for gelu.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from cpu_helpers import run_op

ERF = np.vectorize(math.erf)

X = np.concatenate(
    [
        np.linspace(-110.0, 100.0, 40001),
        np.linspace(-1.0, 1.0, 20001),
        np.geomspace(1e-30, 10.0, 2000),
        -np.geomspace(1e-30, 10.0, 2000),
    ]
).astype(np.float32)

REFS = {
    "Exp": np.exp,
    "Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "Tanh": np.tanh,
}


def _ulps(y: np.ndarray, ref: np.ndarray) -> float:
    m = (np.abs(ref) < 3.4e38) & (np.abs(ref) > 1.2e-38)
    sp = np.spacing(np.abs(ref[m]).astype(np.float32)).astype(np.float64)
    return float(np.max(np.abs(y[m].astype(np.float64) - ref[m]) / sp))


@pytest.mark.parametrize("op", list(REFS))
def test_ulp_error(isa, op):
    with np.errstate(over="ignore"):
        ref = REFS[op](X.astype(np.float64))
    y = run_op(op, [X], isa=isa)
    assert _ulps(y, ref) <= 3.0


def test_erf_gelu_abs_error(isa):
    x64 = X.astype(np.float64)
    np.testing.assert_allclose(run_op("Erf", [X], isa=isa), ERF(x64), rtol=0, atol=4.5e-7)
    xs = np.linspace(-12, 12, 10001).astype(np.float32)
    ref = 0.5 * xs * (1 + ERF(xs.astype(np.float64) / math.sqrt(2)))
    np.testing.assert_allclose(run_op("Gelu", [xs], isa=isa), ref, rtol=1e-6, atol=3e-6)
    t = np.tanh(math.sqrt(2 / math.pi) * (xs + 0.044715 * xs.astype(np.float64) ** 3))
    np.testing.assert_allclose(
        run_op("Gelu", [xs], {"approximate": "tanh"}, isa=isa),
        0.5 * xs * (1 + t),
        rtol=1e-6,
        atol=3e-6,
    )


@pytest.mark.parametrize("n", [1, 7, 8, 9, 15, 16, 17, 31, 33, 1000])
@pytest.mark.parametrize("op", ["Exp", "Sigmoid", "Tanh", "Erf", "Gelu"])
def test_sizes_and_specials(isa, rng, op, n):
    x = (rng.standard_normal(n) * 4).astype(np.float32)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32)
    x[: min(n, 5)] = special[: min(n, 5)]
    y = run_op(op, [x], isa=isa)
    scalar = run_op(op, [x], isa="scalar")
    assert y.shape == x.shape
    assert np.isnan(y[np.isnan(x)]).all()
    # the vector erf's absolute bound; gelu's (x/2)(1 + erf) carries it times |x|/2 where
    # erf is near -1, as in test_erf_gelu_abs_error
    atol = {"Erf": 4.5e-7, "Gelu": 3e-6}.get(op, 2e-7)
    np.testing.assert_allclose(y, scalar, rtol=1e-6, atol=atol)  # NaNs compare equal
    if n >= 5:
        exp = {
            "Exp": [np.inf, 0.0, 1.0, 1.0],
            "Sigmoid": [1.0, 0.0, 0.5, 0.5],
            "Tanh": [1.0, -1.0, 0.0, -0.0],
            "Erf": [1.0, -1.0, 0.0, -0.0],
            "Gelu": [np.inf, np.nan, 0.0, -0.0],
        }[op]
        got = y[1:5]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(exp))
        ok = ~np.isnan(exp)
        np.testing.assert_array_equal(got[ok], np.array(exp)[ok])


def test_softplus_sign(isa, rng):
    x = (rng.standard_normal(33) * 10).astype(np.float32)
    x[0] = 0.0
    np.testing.assert_allclose(
        run_op("Softplus", [x], isa=isa),
        np.logaddexp(0, x.astype(np.float64)),
        rtol=1e-6,
        atol=1e-6,
    )
    np.testing.assert_array_equal(run_op("Sign", [x], isa=isa), np.sign(x))


def test_pow_fast_exponents(isa, rng):
    x = rng.standard_normal(37).astype(np.float32)
    for e in (2.0, 3.0):
        y = run_op("Pow", [x, np.array(e, np.float32)], isa=isa)
        np.testing.assert_allclose(y, x.astype(np.float64) ** e, rtol=3e-7, atol=1e-30)
