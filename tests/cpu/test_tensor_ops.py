"""New native ops against float64 / numpy references: reductions, LayerNormalization, Softmax
rows, comparisons and logic, Where, Cast, Expand, Tile, Split, Pad, Trilu, ConstantOfShape,
Range and Resize."""

from __future__ import annotations

import numpy as np
import pytest
from cpu_helpers import assert_close, randn, run_op

SIZES = [1, 7, 8, 9, 15, 16, 17, 31, 33]

# ----------------------------------------------------------------------------- reductions

REDUCE = {
    "ReduceSum": lambda x, a, k: np.sum(x, axis=a, keepdims=k),
    "ReduceMean": lambda x, a, k: np.mean(x, axis=a, keepdims=k),
    "ReduceMax": lambda x, a, k: np.max(x, axis=a, keepdims=k),
    "ReduceMin": lambda x, a, k: np.min(x, axis=a, keepdims=k),
    "ReduceProd": lambda x, a, k: np.prod(x, axis=a, keepdims=k),
    "ReduceL1": lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k),
    "ReduceL2": lambda x, a, k: np.sqrt(np.sum(x * x, axis=a, keepdims=k)),
    "ReduceSumSquare": lambda x, a, k: np.sum(x * x, axis=a, keepdims=k),
    "ReduceLogSumExp": lambda x, a, k: np.log(np.sum(np.exp(x), axis=a, keepdims=k)),
}
AXES = [None, (0,), (-1,), (1,), (0, 2), (1, 2), (0, 1, 2)]


@pytest.mark.parametrize("op", list(REDUCE))
@pytest.mark.parametrize("axes", AXES)
@pytest.mark.parametrize("keep", [0, 1])
def test_reduce_attr_and_input(rng, op, axes, keep):
    x = randn(rng, 3, 5, 17)
    if op == "ReduceProd":
        x = (1 + 0.1 * x).astype(np.float32)
    ref = REDUCE[op](x.astype(np.float64), axes, bool(keep))
    attrs = {"keepdims": keep}
    if axes is not None:
        attrs["axes"] = list(axes)
    assert_close(run_op(op, [x], attrs), ref)
    # opset-18 form: axes as input 1
    inputs = [x] + ([np.array(axes, np.int64)] if axes is not None else [])
    assert_close(run_op(op, inputs, {"keepdims": keep}), ref)


@pytest.mark.parametrize("n", SIZES + [1000])
def test_reduce_sizes_threads(rng, n):
    x = randn(rng, 4, n)
    for threads in (1, 2):
        assert_close(
            run_op("ReduceMean", [x], {"axes": [-1]}, threads=threads),
            x.mean(-1, keepdims=True, dtype=np.float64),
        )
        assert_close(
            run_op("ReduceSum", [x], {"axes": [0], "keepdims": 0}, threads=threads),
            x.sum(0, dtype=np.float64),
        )


def test_reduce_special_cases(rng):
    x = randn(rng, 2, 3)
    # noop_with_empty_axes
    np.testing.assert_array_equal(
        run_op("ReduceSum", [x, np.zeros(0, np.int64)], {"noop_with_empty_axes": 1}), x
    )
    assert_close(
        run_op("ReduceSum", [x, np.zeros(0, np.int64)]), x.sum(keepdims=True, dtype=np.float64)
    )
    # NaN propagates through max/min; ints reduce exactly
    xn = x.copy()
    xn[1, 1] = np.nan
    out = run_op("ReduceMax", [xn], {"axes": [1], "keepdims": 0})
    assert np.isnan(out[1]) and not np.isnan(out[0])
    xi = rng.integers(-1000, 1000, (4, 6)).astype(np.int64)
    np.testing.assert_array_equal(
        run_op("ReduceSum", [xi], {"axes": [1]}), xi.sum(1, keepdims=True)
    )
    np.testing.assert_array_equal(
        run_op("ReduceMax", [xi], {"axes": [0], "keepdims": 0}), xi.max(0)
    )
    # empty reduction gives the identity
    e = np.zeros((0, 3), np.float32)
    np.testing.assert_array_equal(
        run_op("ReduceSum", [e], {"axes": [0], "keepdims": 0}), np.zeros(3)
    )
    with pytest.raises(ValueError, match="repeated"):
        run_op("ReduceSum", [x], {"axes": [1, -1]})


# ----------------------------------------------------------------------------- LayerNorm, Softmax


def ref_layernorm(x, s, b, axis, eps):
    x = x.astype(np.float64)
    axes = tuple(range(axis % x.ndim, x.ndim))
    m = x.mean(axes, keepdims=True)
    v = ((x - m) ** 2).mean(axes, keepdims=True)
    y = (x - m) / np.sqrt(v + eps) * s
    return y + b if b is not None else y, m, 1 / np.sqrt(v + eps)


@pytest.mark.parametrize("n", SIZES + [384, 1000])
def test_layernorm_last_axis(isa, rng, n):
    x, s, b = randn(rng, 3, n) * 3 + 1, randn(rng, n), randn(rng, n)
    y, m, inv = run_op("LayerNormalization", [x, s, b], {"epsilon": 1e-5}, isa=isa, n_outputs=3)
    ry, rm, rinv = ref_layernorm(x, s, b, -1, 1e-5)
    assert_close(y, ry, rtol=1e-4, atol=1e-4)
    assert_close(m, rm, atol=1e-5)
    assert_close(inv, rinv, rtol=1e-4)


def test_layernorm_axis_and_no_bias(isa, rng):
    x, s = randn(rng, 2, 3, 4, 5), randn(rng, 4, 5)
    assert_close(
        run_op("LayerNormalization", [x, s], {"axis": 2, "epsilon": 1e-3}, isa=isa),
        ref_layernorm(x, s, None, 2, 1e-3)[0],
        atol=1e-4,
    )
    with pytest.raises(ValueError, match="Scale"):
        run_op("LayerNormalization", [x, randn(rng, 3)], {"axis": 2})


@pytest.mark.parametrize("n", SIZES + [1000])
def test_softmax_rows(isa, rng, n):
    x = randn(rng, 5, n) * 4
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(-1, keepdims=True))
    assert_close(
        run_op("Softmax", [x], {"axis": -1}, isa=isa),
        e / e.sum(-1, keepdims=True),
        rtol=1e-5,
        atol=1e-7,
    )
    ls = x64 - x64.max(-1, keepdims=True) - np.log(e.sum(-1, keepdims=True))
    assert_close(run_op("LogSoftmax", [x], {"axis": -1}, isa=isa), ls, rtol=1e-5, atol=1e-5)


def test_softmax_special(isa):
    x = np.array([[0.0, -np.inf, 1.0], [np.nan, 1.0, 2.0], [1e30, 1e30, -1e30]], np.float32)
    y = run_op("Softmax", [x], {"axis": -1}, isa=isa)
    e = np.exp(np.array([0.0, 1.0]) - 1)
    np.testing.assert_allclose(y[0], [e[0] / e.sum(), 0.0, e[1] / e.sum()], rtol=1e-6)
    assert np.isnan(y[1]).all()
    np.testing.assert_allclose(y[2], [0.5, 0.5, 0.0])


# ------------------------------------------------------------ compare, logic, Where, Cast

CMP = {
    "Equal": np.equal,
    "Less": np.less,
    "Greater": np.greater,
    "LessOrEqual": np.less_equal,
    "GreaterOrEqual": np.greater_equal,
}


@pytest.mark.parametrize("op", list(CMP))
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32, np.float64])
def test_compare(rng, op, dtype):
    a = rng.integers(-3, 3, (2, 3, 17)).astype(dtype)
    b = rng.integers(-3, 3, (3, 1)).astype(dtype)
    out = run_op(op, [a, b], threads=2)
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, CMP[op](a, b))


def test_compare_nan_and_logic(rng):
    a = np.array([np.nan, 1.0, 2.0], np.float32)
    np.testing.assert_array_equal(run_op("Equal", [a, a]), [False, True, True])
    np.testing.assert_array_equal(run_op("Less", [a, np.float32(1.5)]), [False, True, False])
    p, q = rng.random((4, 9)) > 0.5, rng.random(9) > 0.5
    np.testing.assert_array_equal(run_op("And", [p, q]), p & q)
    np.testing.assert_array_equal(run_op("Or", [p, q]), p | q)
    np.testing.assert_array_equal(run_op("Xor", [p, q]), p ^ q)
    np.testing.assert_array_equal(run_op("Not", [p]), ~p)
    np.testing.assert_array_equal(run_op("Equal", [p, q]), p == q)
    x = np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)
    np.testing.assert_array_equal(run_op("IsNaN", [x]), np.isnan(x))
    np.testing.assert_array_equal(
        run_op("IsInf", [x], {"detect_negative": 0}), [False, True, False, False]
    )
    with pytest.raises(ValueError, match="bool"):
        run_op("And", [a, a])


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_, np.float16, np.uint8])
def test_where(rng, dtype):
    c = rng.random((2, 1, 9)) > 0.5
    x = rng.integers(0, 5, (3, 9)).astype(dtype)
    y = rng.integers(0, 5, (2, 3, 1)).astype(dtype)
    np.testing.assert_array_equal(run_op("Where", [c, x, y], threads=2), np.where(c, x, y))


DTYPES = {
    1: np.float32,
    2: np.uint8,
    3: np.int8,
    5: np.int16,
    6: np.int32,
    7: np.int64,
    9: np.bool_,
    10: np.float16,
    11: np.float64,
    4: np.uint16,
    12: np.uint32,
    13: np.uint64,
}


@pytest.mark.parametrize("src", [1, 3, 6, 7, 9, 10, 11, 2])
@pytest.mark.parametrize("dst", list(DTYPES))
def test_cast(rng, src, dst):
    vals = rng.integers(0, 100, 33).astype(np.float64)
    if DTYPES[src] in (np.float32, np.float64, np.float16):
        vals = (
            vals / 4.0 - 3.0
            if DTYPES[dst] not in (np.uint8, np.uint16, np.uint32, np.uint64)
            else vals / 4.0
        )
    x = vals.astype(DTYPES[src])
    out = run_op("Cast", [x], {"to": dst})
    assert out.dtype == DTYPES[dst]
    np.testing.assert_array_equal(out, x.astype(DTYPES[dst]))


def test_cast_half_rounding_and_specials():
    x = np.array(
        [0.1, 65504, 65520, 1e-7, 6e-8, 2.98e-8, -0.0, np.inf, -np.inf, 1 / 3, 1e-5], np.float32
    )
    with np.errstate(over="ignore"):
        ref = x.astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(run_op("Cast", [x], {"to": 10}).view(np.uint16), ref)
    assert np.isnan(run_op("Cast", [np.array([np.nan], np.float32)], {"to": 10}))[0]
    h = np.arange(0, 65536, 7, dtype=np.uint16).view(np.float16)
    h = h[np.isfinite(h)]
    np.testing.assert_array_equal(run_op("Cast", [h], {"to": 1}), h.astype(np.float32))


# ----------------------------------------------------------------------------- layout ops


@pytest.mark.parametrize(
    "xs,shape",
    [((3, 1), (2, 1, 6)), ((1,), (7,)), ((2, 3), (2, 3)), ((4, 1, 5), (1, 3, 1)), ((), (2, 9))],
)
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_, np.int8])
def test_expand(rng, xs, shape, dtype):
    x = rng.integers(0, 2, xs).astype(dtype)
    ref = (
        x * np.ones(shape, dtype=dtype)
        if dtype != np.bool_
        else np.broadcast_to(x, np.broadcast_shapes(xs, shape))
    )
    np.testing.assert_array_equal(run_op("Expand", [x, np.array(shape, np.int64)], threads=2), ref)


def test_tile(rng):
    x = randn(rng, 2, 3, 4)
    np.testing.assert_array_equal(
        run_op("Tile", [x, np.array([2, 1, 3], np.int64)]), np.tile(x, (2, 1, 3))
    )
    xi = np.arange(5, dtype=np.int64)
    np.testing.assert_array_equal(run_op("Tile", [xi, np.array([3], np.int64)]), np.tile(xi, 3))


def test_split(rng):
    x = randn(rng, 4, 10, 3)
    outs = run_op("Split", [x, np.array([3, 7], np.int64)], {"axis": 1}, n_outputs=2)
    for o, r in zip(outs, np.split(x, [3], axis=1), strict=True):
        np.testing.assert_array_equal(o, r)
    outs = run_op("Split", [x], {"axis": 1, "split": [2, 2, 6]}, n_outputs=3)
    for o, r in zip(outs, np.split(x, [2, 4], axis=1), strict=True):
        np.testing.assert_array_equal(o, r)
    outs = run_op("Split", [x], {"axis": 1}, n_outputs=2)
    for o, r in zip(outs, np.split(x, 2, axis=1), strict=True):
        np.testing.assert_array_equal(o, r)
    outs = run_op("Split", [x], {"axis": -2, "num_outputs": 3}, n_outputs=3)  # opset 18: 4, 4, 2
    for o, r in zip(outs, np.split(x, [4, 8], axis=1), strict=True):
        np.testing.assert_array_equal(o, r)
    with pytest.raises(ValueError, match="Split"):
        run_op("Split", [x, np.array([3, 3], np.int64)], {"axis": 1}, n_outputs=2)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad(rng, mode):
    x = randn(rng, 2, 5, 7)
    pads = [0, 2, 3, 1, 1, 4]
    npad = [(p, q) for p, q in zip(pads[:3], pads[3:], strict=True)]
    kw = {"constant_values": 1.5} if mode == "constant" else {}
    ref = np.pad(
        x,
        npad,
        mode={"edge": "edge", "reflect": "reflect", "wrap": "wrap", "constant": "constant"}[mode],
        **kw,
    )
    inputs = [x, np.array(pads, np.int64)] + (
        [np.array(1.5, np.float32)] if mode == "constant" else []
    )
    np.testing.assert_array_equal(run_op("Pad", inputs, {"mode": mode}), ref)
    # attribute form (opset < 11)
    np.testing.assert_array_equal(
        run_op("Pad", [x], {"mode": mode, "pads": pads, "value": 1.5}), ref
    )


def test_pad_axes_negative_and_ints():
    x = np.arange(24, dtype=np.int64).reshape(2, 3, 4)
    y = run_op("Pad", [x, np.array([1, -1], np.int64), None, np.array([2], np.int64)])
    np.testing.assert_array_equal(y, np.pad(x, [(0, 0), (0, 0), (1, 0)])[..., :-1])
    y = run_op("Pad", [x, np.array([0, 0, 1, 0, 0, 1], np.int64), np.array(7, np.int64)])
    np.testing.assert_array_equal(y, np.pad(x, [(0, 0), (0, 0), (1, 1)], constant_values=7))


@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [-2, 0, 1, 5])
def test_trilu(rng, upper, k):
    x = randn(rng, 2, 4, 6)
    ref = np.triu(x, k) if upper else np.tril(x, k)
    np.testing.assert_array_equal(
        run_op("Trilu", [x, np.array(k, np.int64)], {"upper": upper}), ref
    )
    b = rng.random((5, 5)) > 0.2
    np.testing.assert_array_equal(
        run_op("Trilu", [b], {"upper": upper}), np.triu(b) if upper else np.tril(b)
    )


def test_constant_of_shape_and_range():
    y = run_op("ConstantOfShape", [np.array([2, 3], np.int64)])
    np.testing.assert_array_equal(y, np.zeros((2, 3), np.float32))
    y = run_op("ConstantOfShape", [np.array([4], np.int64)], {"dtype": 7, "value_int": -(2**40)})
    assert y.dtype == np.int64 and (y == -(2**40)).all()
    y = run_op("ConstantOfShape", [np.array([3], np.int64)], {"dtype": 9, "value": 1.0})
    assert y.dtype == np.bool_ and y.all()
    for s, lim, d, dt in [
        (0, 10, 3, np.int64),
        (10, 2, -2, np.int32),
        (0.5, 3.2, 0.7, np.float32),
        (1, 1, 1, np.int64),
    ]:
        y = run_op("Range", [np.array(s, dt), np.array(lim, dt), np.array(d, dt)])
        ref = np.arange(dt(s), dt(lim), dt(d), dtype=dt)
        assert y.dtype == ref.dtype
        np.testing.assert_allclose(y, ref, rtol=1e-6)


# ----------------------------------------------------------------------------- Resize


def ref_resize(x, out_shape, scales, mode, coord, nearest="round_prefer_floor"):
    x = x.astype(np.float64)
    idx_lists = []
    for d, (n_in, n_out) in enumerate(zip(x.shape, out_shape, strict=True)):
        s = scales[d]
        lr = n_in * s  # the ONNX reference's unrounded resized length
        o = np.arange(n_out, dtype=np.float64)
        if n_in == n_out and s == 1.0:
            idx_lists.append((np.arange(n_out), np.arange(n_out), np.zeros(n_out)))
            continue
        if coord == "half_pixel":
            xo = (o + 0.5) / s - 0.5
        elif coord == "pytorch_half_pixel":
            xo = (o + 0.5) / s - 0.5 if lr > 1 else np.zeros(n_out)
        elif coord == "align_corners":
            xo = o * (n_in - 1) / (lr - 1) if lr != 1 else np.zeros(n_out)
        elif coord == "half_pixel_symmetric":
            adj = n_out / (s * n_in)
            xo = n_in / 2 * (1 - adj) + (o + 0.5) / s - 0.5
        else:
            xo = o / s
        if mode == "nearest":
            if nearest == "round_prefer_floor":
                i = np.where(xo == np.floor(xo) + 0.5, np.floor(xo), np.round(xo))
            elif nearest == "round_prefer_ceil":
                i = np.floor(xo + 0.5)
            elif nearest == "floor":
                i = np.floor(xo)
            else:
                i = np.ceil(xo)
            i = np.clip(i, 0, n_in - 1).astype(int)
            idx_lists.append((i, i, np.zeros(n_out)))
        else:
            f = np.floor(xo)
            idx_lists.append(
                (
                    np.clip(f, 0, n_in - 1).astype(int),
                    np.clip(f + 1, 0, n_in - 1).astype(int),
                    xo - f,
                )
            )
    y = x
    for d, (i0, i1, w) in enumerate(idx_lists):
        shape = [1] * x.ndim
        shape[d] = -1
        w = w.reshape(shape)
        y = np.take(y, i0, axis=d) * (1 - w) + np.take(y, i1, axis=d) * w
    return y


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize(
    "coord",
    ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"],
)
@pytest.mark.parametrize("scales", [(1, 1, 2.0, 2.0), (1, 1, 0.5, 1.5), (1, 1, 1.7, 0.6)])
def test_resize_scales(rng, mode, coord, scales):
    x = randn(rng, 2, 3, 8, 9)
    out_shape = [int(np.floor(n * s)) for n, s in zip(x.shape, scales, strict=True)]
    ref = ref_resize(x, out_shape, scales, mode, coord)
    sc = np.array(scales, np.float32)
    y = run_op("Resize", [x, None, sc], {"mode": mode, "coordinate_transformation_mode": coord})
    assert_close(y, ref, atol=1e-5)


@pytest.mark.parametrize("nearest", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
def test_resize_sizes_nearest_modes(rng, nearest):
    x = rng.integers(0, 100, (1, 2, 5, 6)).astype(np.int64)
    sizes = np.array([1, 2, 9, 4], np.int64)
    scales = [1.0, 1.0, 9 / 5, 4 / 6]
    ref = ref_resize(x, list(sizes), scales, "nearest", "asymmetric", nearest)
    y = run_op(
        "Resize",
        [x, None, None, sizes],
        {"coordinate_transformation_mode": "asymmetric", "nearest_mode": nearest},
    )
    np.testing.assert_array_equal(y, ref.astype(np.int64))
    # opset 10: (X, scales), asymmetric + floor
    x32 = x.astype(np.float32)
    y10 = run_op("Resize", [x32, np.array([1, 1, 2, 2], np.float32)])
    assert_close(
        y10, ref_resize(x32, [1, 2, 10, 12], [1, 1, 2, 2], "nearest", "asymmetric", "floor")
    )
    with pytest.raises(ValueError, match="cubic"):
        run_op("Resize", [x32, None, np.ones(4, np.float32)], {"mode": "cubic"})


def test_reduce_bool_and_small_ints(rng):
    b = rng.random((4, 5)) > 0.5
    np.testing.assert_array_equal(run_op("ReduceMax", [b], {"axes": [1], "keepdims": 0}), b.any(1))
    np.testing.assert_array_equal(run_op("ReduceMin", [b], {"axes": [0]}), b.all(0, keepdims=True))
    e = np.zeros((2, 0, 4), np.bool_)
    np.testing.assert_array_equal(
        run_op("ReduceMax", [e], {"axes": [1], "keepdims": 0}), np.zeros((2, 4), bool)
    )
    u = rng.integers(0, 255, (3, 7)).astype(np.uint8)
    np.testing.assert_array_equal(
        run_op("ReduceMin", [u], {"axes": [-1], "keepdims": 0}), u.min(-1)
    )


def test_native_op_dtypes_table():
    from infopt import _C

    table = _C.native_op_dtypes()
    native = set(_C.native_ops())
    assert set(table) <= native
    assert "bool" in table["Where"] and "int64" in table["Add"] and "int8" not in table["Add"]
    assert "Conv" not in table  # float32 only


def test_reduce_sum_long_rows_and_specials(rng):
    x = (randn(rng, 2, 100003) + 3).astype(np.float32)
    assert_close(
        run_op("ReduceSum", [x], {"axes": [1]}),
        x.sum(1, keepdims=True, dtype=np.float64),
        rtol=1e-6,
    )
    assert_close(
        run_op("ReduceMean", [x], {"axes": [1]}),
        x.mean(1, keepdims=True, dtype=np.float64),
        rtol=1e-6,
    )
    y = randn(rng, 3, 17)
    y[0, 3], y[1, 16], y[2, 0] = np.nan, np.inf, -np.inf
    out = run_op("ReduceSum", [y], {"axes": [1], "keepdims": 0})
    assert np.isnan(out[0]) and out[1] == np.inf and out[2] == -np.inf
