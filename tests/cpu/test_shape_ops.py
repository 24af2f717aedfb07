"""Layout ops: dtype-generic byte movement and views."""

from __future__ import annotations

import numpy as np
import pytest
from cpu_helpers import randn, run_op

DTYPES = [np.float32, np.int64, np.uint8, np.float16, np.bool_, np.int32, np.float64]


def _data(rng, shape, dtype):
    return (rng.standard_normal(shape) * 10).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reshape(rng, dtype):
    x = _data(rng, (2, 3, 4), dtype)
    for shape, ref in [
        ([4, -1], (4, 6)),
        ([0, 12], (2, 12)),
        ([-1], (24,)),
        ([2, 0, 2, 2], (2, 3, 2, 2)),
    ]:
        out = run_op("Reshape", [x, np.array(shape, np.int64)])
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, x.reshape(ref))
    # allowzero: 0 means an empty dimension
    e = np.zeros((0, 3), dtype)
    assert run_op("Reshape", [e, np.array([3, 0], np.int64)], {"allowzero": 1}).shape == (3, 0)


def test_reshape_errors():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"Reshape.*f32\[2,3\]"):
        run_op("Reshape", [x, np.array([4, -1], np.int64)])
    with pytest.raises(ValueError, match="more than one -1"):
        run_op("Reshape", [x, np.array([-1, -1], np.int64)])


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
def test_flatten(rng, axis):
    x = randn(rng, 2, 3, 4)
    a = axis if axis >= 0 else axis + 3
    ref = x.reshape(int(np.prod(x.shape[:a])), -1)
    np.testing.assert_array_equal(run_op("Flatten", [x], {"axis": axis}), ref)


def test_squeeze_unsqueeze(rng):
    x = randn(rng, 1, 3, 1, 4)
    np.testing.assert_array_equal(run_op("Squeeze", [x]), x.reshape(3, 4))
    np.testing.assert_array_equal(run_op("Squeeze", [x], {"axes": [-2]}), x.reshape(1, 3, 4))
    np.testing.assert_array_equal(
        run_op("Squeeze", [x, np.array([0], np.int64)]), x.reshape(3, 1, 4)
    )
    y = randn(rng, 3, 4)
    np.testing.assert_array_equal(
        run_op("Unsqueeze", [y], {"axes": [0, -1]}), y.reshape(1, 3, 4, 1)
    )
    np.testing.assert_array_equal(run_op("Unsqueeze", [y], {"axes": [1]}), y.reshape(3, 1, 4))
    with pytest.raises(ValueError, match="not 1"):
        run_op("Squeeze", [x], {"axes": [1]})


def test_identity_dropout(rng):
    x = _data(rng, (3, 5), np.int64)
    np.testing.assert_array_equal(run_op("Identity", [x]), x)
    y, mask = run_op("Dropout", [randn(rng, 4, 9)], {"seed": 3}, n_outputs=2)
    assert mask.dtype == np.bool_ and mask.all() and y.shape == (4, 9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,perm",
    [
        ((2, 3), None),
        ((2, 3, 4), [0, 2, 1]),
        ((2, 3, 4, 5), [0, 2, 3, 1]),
        ((2, 3, 4, 5), [3, 1, 0, 2]),
        ((17, 33), [1, 0]),
        ((1, 3, 1, 5), [2, 3, 0, 1]),
        ((64, 70, 9), [1, 0, 2]),
        # the last axis moves: tiled 2-D copies, odd sizes straddling the 8x8 tiles
        ((3, 17, 7, 33), [0, 2, 3, 1]),
        ((127, 9), [1, 0]),
        ((5, 4, 31), [2, 0, 1]),
        # K -> K^T per head at a size that splits over the pool
        ((2, 128, 12, 32), [0, 2, 3, 1]),
    ],
)
def test_transpose(rng, dtype, shape, perm):
    x = _data(rng, shape, dtype)
    attrs = {} if perm is None else {"perm": perm}
    out = run_op("Transpose", [x], attrs, threads=2)
    np.testing.assert_array_equal(out, np.transpose(x, perm))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(rng, dtype, axis):
    xs = [_data(rng, (2, 3, 4), dtype), _data(rng, (2, 3, 4), dtype)]
    shape = [2, 3, 4]
    shape[axis] = 7
    xs.append(_data(rng, tuple(shape), dtype))
    np.testing.assert_array_equal(
        run_op("Concat", xs, {"axis": axis}), np.concatenate(xs, axis=axis)
    )


# Large enough (> 256 KiB) for the threaded copies: a batch-1 channel concat of feature maps
# (few rows, copies cut into pieces, odd sizes so pieces end mid-row) and many small rows.
@pytest.mark.parametrize(
    "shapes,axis",
    [
        ([(1, 64, 55, 55), (1, 64, 55, 55)], 1),
        ([(1, 33, 57, 31), (1, 7, 57, 31), (1, 1, 57, 31), (1, 129, 57, 31)], 1),
        ([(2, 17, 45, 45), (2, 5, 45, 45)], 1),
        ([(5000, 7), (5000, 9), (5000, 1)], 1),
        ([(3, 40000), (4, 40000)], 0),
    ],
)
def test_concat_large(rng, shapes, axis):
    xs = [randn(rng, *s) for s in shapes]
    for threads in (1, 2):
        np.testing.assert_array_equal(
            run_op("Concat", xs, {"axis": axis}, threads=threads), np.concatenate(xs, axis=axis)
        )


def test_concat_errors():
    with pytest.raises(ValueError, match="axis"):
        run_op("Concat", [np.ones(2, np.float32)])
    with pytest.raises(ValueError, match=r"Concat.*f32\[2,4\]"):
        run_op("Concat", [np.ones((2, 3), np.float32), np.ones((2, 4), np.float32)], {"axis": 0})


@pytest.mark.parametrize("idx_dtype", [np.int64, np.int32])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather(rng, idx_dtype, axis):
    x = randn(rng, 5, 6, 7)
    n = x.shape[axis]
    idx = np.array([[0, n - 1, -1], [-n, 2, 1]], idx_dtype)
    np.testing.assert_array_equal(
        run_op("Gather", [x, idx], {"axis": axis}), np.take(x, idx, axis=axis)
    )
    np.testing.assert_array_equal(
        run_op("Gather", [x, np.array(2, idx_dtype)], {"axis": axis}), np.take(x, 2, axis=axis)
    )
    with pytest.raises(ValueError, match="out of range"):
        run_op("Gather", [x, np.array([n], idx_dtype)], {"axis": axis})


SLICES = [
    ([1], [3], None, None),
    ([0, 1], [2, -1], [0, 2], None),
    ([-1], [-100], [1], [-1]),
    ([10, 0], [-10, 100], [2, 0], [-2, 3]),
    ([0], [9223372036854775807], [-1], [2]),
    ([3], [3], [0], None),
]


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8])
@pytest.mark.parametrize("starts,ends,axes,steps", SLICES)
def test_slice(rng, dtype, starts, ends, axes, steps):
    x = _data(rng, (5, 6, 7), dtype)
    sl = [slice(None)] * 3
    for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
        ax = axes[i] if axes else i
        sl[ax] = slice(s, e, steps[i] if steps else 1)
    ref = x[tuple(sl)]
    attrs = {"starts": starts, "ends": ends}
    if axes is not None:
        attrs["axes"] = axes
    if steps is not None:
        attrs["steps"] = steps
    np.testing.assert_array_equal(run_op("Slice", [x], attrs), ref)
    ins = [
        x,
        np.array(starts, np.int64),
        np.array(ends, np.int64),
        None if axes is None else np.array(axes, np.int64),
        None if steps is None else np.array(steps, np.int64),
    ]
    np.testing.assert_array_equal(run_op("Slice", ins), ref)


def test_shape_op(rng):
    x = randn(rng, 2, 3, 4, 5)
    out = run_op("Shape", [x])
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [2, 3, 4, 5])
    np.testing.assert_array_equal(run_op("Shape", [x], {"start": 1, "end": -1}), [3, 4])
    np.testing.assert_array_equal(run_op("Shape", [np.float32(1.0)]), np.zeros(0, np.int64))
