"""GatherElements and GatherND against numpy, several dtypes, negative indices, bad indices."""

from __future__ import annotations

import numpy as np
import pytest
from cpu_helpers import run_op

DTYPES = [np.float32, np.int64, np.bool_, np.float16]


def _data(rng, shape, dtype):
    if dtype is np.bool_:
        return rng.random(shape) < 0.5
    return (rng.standard_normal(shape) * 10).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((7,), 0), ((3, 9), 1), ((4, 5, 6), 0), ((2, 3, 17), -1)])
def test_gather_elements(dtype, shape, axis):
    rng = np.random.default_rng(len(shape) * 10 + axis)
    x = _data(rng, shape, dtype)
    idx_shape = list(shape)
    idx_shape[axis] = 5
    dim = shape[axis]
    idx = rng.integers(-dim, dim, size=idx_shape).astype(np.int64)
    want = np.take_along_axis(x, np.where(idx < 0, idx + dim, idx), axis=axis)
    got = run_op("GatherElements", [x, idx], {"axis": axis})
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        run_op("GatherElements", [x, idx.astype(np.int32)], {"axis": axis}), want
    )


def _ref_gather_nd(x, idx, batch_dims):
    idx = np.where(idx < 0, idx + np.array(x.shape[batch_dims : batch_dims + idx.shape[-1]]), idx)
    bshape = x.shape[:batch_dims]
    xb = x.reshape((-1, *x.shape[batch_dims:]))
    ib = idx.reshape((-1, *idx.shape[batch_dims:]))
    out = [xb[b][tuple(np.moveaxis(ib[b], -1, 0))] for b in range(xb.shape[0])]
    return np.stack(out).reshape(tuple(bshape) + out[0].shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "xshape,ishape,batch_dims",
    [
        ((5, 6), (4, 2), 0),
        ((5, 6, 3), (7, 1), 0),
        ((2, 5, 6), (2, 3, 1), 1),
        ((3, 4, 5, 2), (3, 2, 2), 1),
        ((9,), (1,), 0),
    ],
)
def test_gather_nd(dtype, xshape, ishape, batch_dims):
    rng = np.random.default_rng(sum(xshape) + batch_dims)
    x = _data(rng, xshape, dtype)
    last = ishape[-1]
    dims = np.array(xshape[batch_dims : batch_dims + last])
    idx = (rng.integers(0, 1 << 20, size=ishape) % dims) - dims * rng.integers(0, 2, size=ishape)
    want = _ref_gather_nd(x, idx.astype(np.int64), batch_dims)
    got = run_op("GatherND", [x, idx.astype(np.int64)], {"batch_dims": batch_dims})
    np.testing.assert_array_equal(got, want)


def test_out_of_range_index_raises():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with pytest.raises(ValueError, match="out of range"):
        run_op("GatherElements", [x, np.array([[3, 0, 1]], np.int64)], {"axis": 1})
    with pytest.raises(ValueError, match="out of range"):
        run_op("GatherND", [x, np.array([[2, 0]], np.int64)])
    with pytest.raises(ValueError, match="rank"):
        run_op("GatherElements", [x, np.array([1], np.int64)], {"axis": 0})
