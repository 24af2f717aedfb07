"""Broadcasting binary ops, variadic ops and unary ops against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cpu_helpers import assert_close, randn, run_op

BINARY = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": np.divide,
}

BROADCASTS = [
    ((1,), (1,)),
    ((7,), (7,)),
    ((8,), (1,)),
    ((1,), (9,)),
    ((15,), ()),
    ((), (16,)),
    ((3, 17), (17,)),
    ((3, 31), (3, 1)),
    ((2, 3, 33, 5), (3, 1, 1)),
    ((2, 1, 4), (3, 1)),
    ((1, 100), (7, 1)),
    ((2, 3, 4, 5), (2, 3, 4, 5)),
    ((5, 1, 7), (1, 3, 1)),
    ((4, 64, 9, 9), (1, 64, 1, 1)),
]


@pytest.mark.parametrize("op", list(BINARY))
@pytest.mark.parametrize("sa,sb", BROADCASTS)
def test_binary_f32(isa, rng, op, sa, sb):
    a, b = randn(rng, *sa), randn(rng, *sb)
    if op == "Div":
        b = np.where(np.abs(b) < 0.1, 0.5, b).astype(np.float32)
    assert_close(run_op(op, [a, b], isa=isa), BINARY[op](a.astype(np.float64), b))


@pytest.mark.parametrize("threads", [1, 2])
def test_binary_large_threaded(isa, rng, threads):
    a, b = randn(rng, 3, 257, 129), randn(rng, 257, 1)
    assert_close(run_op("Mul", [a, b], isa=isa, threads=threads), a.astype(np.float64) * b)
    a2 = randn(rng, 100003)
    assert_close(run_op("Add", [a2, a2], isa=isa, threads=threads), 2.0 * a2)


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
@pytest.mark.parametrize("op", list(BINARY))
def test_binary_int(rng, op, dtype):
    a = rng.integers(-50, 50, size=(3, 17)).astype(dtype)
    b = rng.integers(1, 9, size=(17,)).astype(dtype) * rng.choice([-1, 1], size=17).astype(dtype)
    out = run_op(op, [a, b])
    if op == "Div":
        ref = np.trunc(a / b).astype(dtype)  # C++ / ONNX integer division truncates
    else:
        ref = BINARY[op](a, b)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, ref)


def test_int_division_by_zero_raises():
    with pytest.raises(ValueError, match="division by zero"):
        run_op("Div", [np.ones(3, np.int64), np.zeros(3, np.int64)])


def test_binary_f64(rng):
    a, b = rng.standard_normal((4, 5)), rng.standard_normal(5)
    np.testing.assert_allclose(run_op("Sub", [a, b]), a - b, rtol=1e-12)


def test_pow_max_min(isa, rng):
    a, b = np.abs(randn(rng, 3, 9)) + 0.1, randn(rng, 9)
    assert_close(run_op("Pow", [a, b], isa=isa), np.power(a.astype(np.float64), b), rtol=1e-4)
    assert_close(run_op("Max", [a, b], isa=isa), np.maximum(a, b))
    assert_close(run_op("Min", [a, b], isa=isa), np.minimum(a, b))


@pytest.mark.parametrize("op,fn", [("Sum", np.add), ("Max", np.maximum), ("Min", np.minimum)])
def test_variadic(isa, rng, op, fn):
    xs = [randn(rng, 3), randn(rng, 2, 1), randn(rng, 4, 1, 1), randn(rng, 1, 3)]
    ref = xs[0].astype(np.float64)
    for x in xs[1:]:
        ref = fn(ref, x)
    assert_close(run_op(op, xs, isa=isa), ref)
    assert_close(run_op(op, xs[:1], isa=isa), xs[0])


def test_mean(isa, rng):
    xs = [randn(rng, 5, 7) for _ in range(3)]
    assert_close(run_op("Mean", xs, isa=isa), np.mean(np.stack(xs).astype(np.float64), axis=0))


_erf = np.vectorize(math.erf)
UNARY = {
    "Relu": (lambda x: np.maximum(x, 0), {}),
    "Sigmoid": (lambda x: 1 / (1 + np.exp(-x)), {}),
    "Tanh": (np.tanh, {}),
    "LeakyRelu": (lambda x: np.where(x < 0, 0.2 * x, x), {"alpha": 0.2}),
    "Clip": (lambda x: np.clip(x, -0.3, 0.6), {"min": -0.3, "max": 0.6}),
    "Exp": (np.exp, {}),
    "Neg": (np.negative, {}),
    "Abs": (np.abs, {}),
    "Erf": (_erf, {}),
    "Floor": (np.floor, {}),
    "Ceil": (np.ceil, {}),
    "HardSigmoid": (lambda x: np.clip(0.3 * x + 0.4, 0, 1), {"alpha": 0.3, "beta": 0.4}),
    "HardSwish": (lambda x: x * np.clip(x / 6 + 0.5, 0, 1), {}),
}


@pytest.mark.parametrize("op", list(UNARY))
@pytest.mark.parametrize("n", [1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 70001])
def test_unary(isa, rng, op, n):
    fn, attrs = UNARY[op]
    x = randn(rng, n) * 3
    assert_close(run_op(op, [x], attrs, isa=isa, threads=2), fn(x.astype(np.float64)))


@pytest.mark.parametrize(
    "op,fn", [("Sqrt", np.sqrt), ("Log", np.log), ("Reciprocal", np.reciprocal)]
)
def test_unary_positive_domain(isa, rng, op, fn):
    x = np.abs(randn(rng, 3, 33)) + 0.05
    assert_close(run_op(op, [x], isa=isa), fn(x.astype(np.float64)))


def test_clip_defaults_and_inputs(isa, rng):
    x = randn(rng, 17)
    assert_close(run_op("Clip", [x], isa=isa), x)
    lo, hi = np.array(-0.1, np.float32), np.array(0.2, np.float32)
    assert_close(run_op("Clip", [x, lo, hi], isa=isa), np.clip(x, -0.1, 0.2))
    assert_close(run_op("Clip", [x, None, hi], isa=isa), np.minimum(x, 0.2))


SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.5, -2.5, np.nan, 3.0], np.float32)


@pytest.mark.parametrize(
    "op", ["Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip", "Exp", "Neg", "Abs", "Erf"]
)
def test_unary_special_values(isa, op):
    fn, attrs = UNARY[op]
    x = np.tile(SPECIAL, 3)  # 27 elements: vector body plus tail
    with np.errstate(all="ignore"):
        ref = fn(x.astype(np.float64))
    out = run_op(op, [x], attrs, isa=isa)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    finite = ~np.isnan(ref)
    np.testing.assert_allclose(out[finite], ref[finite], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", list(BINARY) + ["Max", "Min"])
def test_binary_special_values(isa, op):
    a = np.tile(SPECIAL, 2)
    b = np.roll(a, 3)
    fn = {"Max": np.maximum, "Min": np.minimum}.get(op) or BINARY[op]
    with np.errstate(all="ignore"):
        ref = fn(a.astype(np.float64), b.astype(np.float64))
    out = run_op(op, [a, b], isa=isa)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    finite = ~np.isnan(ref)
    np.testing.assert_allclose(out[finite], ref[finite], rtol=1e-6)


def test_sqrt_negative_is_nan(isa):
    out = run_op("Sqrt", [np.array([-1.0, 4.0], np.float32)], isa=isa)
    assert np.isnan(out[0]) and out[1] == 2.0


def test_elementwise_errors():
    with pytest.raises(ValueError, match=r"Add.*do not broadcast"):
        run_op("Add", [np.ones((2, 3), np.float32), np.ones((4,), np.float32)])
    with pytest.raises(ValueError, match="dtypes differ"):
        run_op("Add", [np.ones(3, np.float32), np.ones(3, np.int64)])
    with pytest.raises(ValueError, match="float32"):
        run_op("Relu", [np.ones(3, np.int64)])
    with pytest.raises(ValueError, match=r"LeakyRelu.*'beta'"):
        run_op("LeakyRelu", [np.ones(3, np.float32)], {"beta": 1.0})
