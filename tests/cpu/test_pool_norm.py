"""Pooling, Softmax/LogSoftmax, BatchNormalization and LRN against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from cpu_helpers import assert_close, randn, ref_pool, run_op

POOLS = [
    ((1, 3, 8, 8), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ((2, 2, 9, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 2, 9, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    (
        (1, 2, 10, 10),
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
    ),
    ((1, 2, 11, 8), {"kernel_shape": [3, 2], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 2, 11, 8), {"kernel_shape": [4, 4], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 11, 8), {"kernel_shape": [3, 3], "auto_pad": "VALID", "strides": [2, 1]}),
    ((1, 2, 12, 12), {"kernel_shape": [3, 3], "dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    ((1, 3, 17), {"kernel_shape": [4], "strides": [3], "pads": [1, 2]}),
    (
        (1, 2, 5, 6, 7),
        {"kernel_shape": [2, 3, 2], "strides": [1, 2, 2], "pads": [0, 1, 1, 1, 0, 0]},
    ),
]


def _geo_kw(attrs):
    kw = {k: attrs[k] for k in ("strides", "pads", "dilations", "auto_pad") if k in attrs}
    kw["ceil_mode"] = bool(attrs.get("ceil_mode", 0))
    return kw


@pytest.mark.parametrize("xs,attrs", POOLS)
def test_maxpool(isa, rng, xs, attrs):
    x = randn(rng, *xs)
    ref = ref_pool(x, "max", attrs["kernel_shape"], **_geo_kw(attrs))
    assert_close(run_op("MaxPool", [x], dict(attrs, storage_order=0), isa=isa, threads=2), ref)


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("xs,attrs", POOLS)
def test_averagepool(isa, rng, xs, attrs, count_include_pad):
    x = randn(rng, *xs)
    ref = ref_pool(
        x, "avg", attrs["kernel_shape"], count_include_pad=bool(count_include_pad), **_geo_kw(attrs)
    )
    out = run_op("AveragePool", [x], dict(attrs, count_include_pad=count_include_pad), isa=isa)
    assert_close(out, ref)


def test_pool_ceil_mode_shape():
    # ONNX: in 9, k 3, s 2, ceil -> ceil((9-3)/2)+1 = 4; in 10 -> 5 but the 5th
    # window would start in the padding-free overhang only when pads allow it.
    x = np.arange(2 * 81, dtype=np.float32).reshape(1, 2, 9, 9)
    assert run_op(
        "MaxPool", [x], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}
    ).shape == (1, 2, 4, 4)
    x = np.zeros((1, 1, 4, 4), np.float32) + 1
    out = run_op(
        "MaxPool",
        [x],
        {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1, "pads": [1, 1, 1, 1]},
    )
    assert out.shape == (1, 1, 3, 3)


def test_maxpool_nan(isa):
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    out = run_op("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2]}, isa=isa)
    assert np.isnan(out[0, 0, 0, 0]) and out[0, 0, 1, 1] == 15


@pytest.mark.parametrize("xs", [(2, 3, 7, 9), (1, 33, 1, 1), (2, 5, 17), (1, 2, 3, 4, 5)])
def test_global_pools(isa, rng, xs):
    x = randn(rng, *xs)
    axes = tuple(range(2, x.ndim))
    assert_close(
        run_op("GlobalAveragePool", [x], isa=isa, threads=2),
        x.astype(np.float64).mean(axis=axes, keepdims=True),
    )
    assert_close(run_op("GlobalMaxPool", [x], isa=isa), x.max(axis=axes, keepdims=True))


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize(
    "shape,axis",
    [((7,), -1), ((3, 17), 1), ((2, 3, 33), -1), ((2, 3, 9), 1), ((4, 5, 6, 7), 0), ((2, 100), 0)],
)
def test_softmax_opset13(isa, rng, shape, axis):
    x = randn(rng, *shape) * 4
    ref = _softmax(x.astype(np.float64), axis)
    assert_close(run_op("Softmax", [x], {"axis": axis}, isa=isa), ref)
    assert_close(run_op("LogSoftmax", [x], {"axis": axis}, isa=isa), np.log(ref), atol=1e-4)


@pytest.mark.parametrize(
    "shape,axis", [((3, 17), 1), ((2, 3, 8), 1), ((2, 3, 4, 5), 2), ((2, 3, 4), 0)]
)
def test_softmax_legacy(isa, rng, shape, axis):
    x = randn(rng, *shape)
    n = int(np.prod(shape[:axis]))
    ref = _softmax(x.astype(np.float64).reshape(n, -1), 1).reshape(shape)
    assert_close(run_op("Softmax", [x], {"axis": axis, "legacy_coerce_2d": 1}, isa=isa), ref)
    out_default = run_op("Softmax", [x], {"legacy_coerce_2d": 1}, isa=isa)
    ref1 = _softmax(x.astype(np.float64).reshape(shape[0], -1), 1).reshape(shape)
    assert_close(out_default, ref1)


def test_softmax_special(isa):
    x = np.array([[1.0, np.nan, 2.0], [0.0, -np.inf, 1.0], [1000.0, 1000.0, -1000.0]], np.float32)
    out = run_op("Softmax", [x], {"axis": 1}, isa=isa)
    assert np.isnan(out[0]).all()
    np.testing.assert_allclose(out[1], [1 / (1 + np.e), 0.0, np.e / (1 + np.e)], rtol=1e-6)
    np.testing.assert_allclose(out[2], [0.5, 0.5, 0.0], atol=1e-7)


@pytest.mark.parametrize("n", [9, 33, 128])
def test_softmax_masked_rows(isa, rng, n):
    """Masked-out terms (-1e4, float32 min, -inf) in the vector body and the tail: the AVX2
    row flushes terms whose exp is below the normal range to 0 (exp(-87.3) is 1.2e-38), so
    those compare at atol 1e-30; terms just above the cut (-87, -80) keep their value; NaN in
    the vector body still makes the row NaN."""
    x = randn(rng, 4, n)
    x[:, 1::3] = -1e4
    x[1, 2::5] = np.finfo(np.float32).min
    x[2, -1] = -np.inf
    x[3, 0], x[3, 2] = x[3].max() - 87.0, x[3].max() - 80.0
    ref = _softmax(x.astype(np.float64), 1)
    out = run_op("Softmax", [x], {"axis": 1}, isa=isa)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-30)
    x64 = x.astype(np.float64)
    mx = x64.max(1, keepdims=True)
    log_ref = x64 - mx - np.log(np.exp(x64 - mx).sum(1, keepdims=True))  # finite where x is
    assert_close(run_op("LogSoftmax", [x], {"axis": 1}, isa=isa), log_ref)
    x[0, 5] = np.nan
    assert np.isnan(run_op("Softmax", [x], {"axis": 1}, isa=isa)[0]).all()


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 17), (3, 8, 9), (1, 4, 2, 3, 2)])
def test_batchnorm(isa, rng, shape):
    x = randn(rng, *shape)
    c = shape[1]
    scale, b, mean = randn(rng, c), randn(rng, c), randn(rng, c)
    var = np.abs(randn(rng, c)) + 0.1
    bshape = (1, c) + (1,) * (len(shape) - 2)
    ref = (x - mean.reshape(bshape)) / np.sqrt(
        var.reshape(bshape).astype(np.float64) + 1e-3
    ) * scale.reshape(bshape) + b.reshape(bshape)
    out = run_op(
        "BatchNormalization", [x, scale, b, mean, var], {"epsilon": 1e-3}, isa=isa, threads=2
    )
    assert_close(out, ref)


# beta 0.75 / 0.5 / 1 take the vector path (sqrt and division), others std::pow; inner sizes
# not a multiple of 8 leave a scalar tail, 4099 positions split into two runs.
@pytest.mark.parametrize(
    "xs,beta",
    [((2, 7, 4, 5), 0.75), ((1, 9, 61), 0.5), ((1, 6, 1, 4099), 1.0), ((2, 5, 3, 3), 0.6)],
)
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_lrn(isa, rng, size, xs, beta):
    x = randn(rng, *xs) * 3
    alpha, bias = 2e-3, 1.5
    sq = x.astype(np.float64) ** 2
    ref = np.empty_like(sq)
    c_dim = x.shape[1]
    for c in range(c_dim):
        # ONNX window: [c - floor((size-1)/2), c + ceil((size-1)/2)]
        lo = max(0, c - (size - 1) // 2)
        hi = min(c_dim - 1, c + -(-(size - 1) // 2))
        s = sq[:, lo : hi + 1].sum(axis=1)
        ref[:, c] = x[:, c] / (bias + alpha / size * s) ** beta
    attrs = {"alpha": alpha, "beta": beta, "bias": bias, "size": size}
    out = run_op("LRN", [x], attrs, isa=isa, threads=2)
    assert_close(out, ref)


def test_norm_errors():
    with pytest.raises(ValueError, match="training_mode"):
        run_op(
            "BatchNormalization",
            [np.ones((1, 2), np.float32)] + [np.ones(2, np.float32)] * 4,
            {"training_mode": 1},
        )
    with pytest.raises(ValueError, match=r"input_var.*C=2"):
        run_op(
            "BatchNormalization",
            [np.ones((1, 2), np.float32)] + [np.ones(2, np.float32)] * 3 + [np.ones(3, np.float32)],
        )
    with pytest.raises(ValueError, match="size"):
        run_op("LRN", [np.ones((1, 2, 2, 2), np.float32)])
