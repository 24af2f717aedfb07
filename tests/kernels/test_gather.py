"""Row gather (embedding lookup) and GatherND vs numpy: odd table shapes, negative and
out-of-range ids, int32/int64 ids, float/half/bool/int64 tables, strided tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kernel_helpers import randn

from infopt.kernels.gather import gather_nd, gather_nd_reference, gather_rows, gather_rows_reference

ROW_CASES = [  # (table shape, ids shape)
    ((1, 1), (1,)),
    ((13, 7), (2, 5)),
    ((50, 3, 5), (3, 1, 4)),
    ((9, 33), ()),
    ((200, 129), (2, 19)),
]


@pytest.mark.parametrize("seed,case", list(enumerate(ROW_CASES)))
@pytest.mark.parametrize("index", ["int64", "int32"])
def test_gather_rows_float(seed, case, index):
    rng = np.random.default_rng(seed)
    shape, ids_shape = case
    table = randn(rng, *shape)
    ids = rng.integers(-shape[0], shape[0], ids_shape).astype(index)
    got = gather_rows(torch.from_numpy(table), torch.from_numpy(np.asarray(ids)))
    # a copy: exact (dtype fp32, atol 0, rtol 0)
    np.testing.assert_array_equal(got.numpy(), gather_rows_reference(table, ids), f"seed={seed}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.bool, torch.int64])
def test_gather_rows_other_dtypes(dtype):
    rng = np.random.default_rng(7)
    table = torch.from_numpy(randn(rng, 11, 6) * 50).to(dtype) if dtype != torch.bool else (
        torch.from_numpy(rng.random((11, 6)) < 0.4)
    )  # fmt: skip
    ids = rng.integers(-11, 11, (3, 4))
    got = gather_rows(table, torch.from_numpy(ids))
    want = table[torch.from_numpy(np.where(ids < 0, ids + 11, ids))]
    assert got.dtype == dtype and torch.equal(got, want), f"seed=7 dtype={dtype}"


def test_gather_rows_out_of_range_gives_zero_rows_and_strided_table():
    rng = np.random.default_rng(3)
    base = randn(rng, 8, 10)
    table = torch.from_numpy(base).t()  # [10, 8] with row stride 1: read through strides
    ids = np.array([[0, 9, -10, 10], [-11, 3, 5, 100]])
    got = gather_rows(table, torch.from_numpy(ids)).numpy()
    want = gather_rows_reference(base.T, ids)
    np.testing.assert_array_equal(got, want)
    assert not got[0, 3].any() and not got[1, 0].any() and got[0, 1].any()


@pytest.mark.parametrize("seed,data_shape,k,lead", [
    (0, (2, 8), 2, (2, 1, 1, 8)),
    (1, (5, 4, 3), 1, (7,)),
    (2, (3, 4, 5), 2, (2, 3)),
    (3, (3, 2, 5, 7), 3, (4,)),
    (4, (2, 3, 2, 5), 4, (3, 2)),
])  # fmt: skip
def test_gather_nd(seed, data_shape, k, lead):
    rng = np.random.default_rng(seed)
    data = randn(rng, *data_shape)
    dims = np.array(data_shape[:k])
    indices = rng.integers(-dims, dims, (*lead, k))
    got = gather_nd(torch.from_numpy(data), torch.from_numpy(indices))
    np.testing.assert_array_equal(got.numpy(), gather_nd_reference(data, indices), f"seed={seed}")


def test_gather_nd_bool_mask():
    """The dynamo-exported BERT mask: a [B, S] bool mask gathered at (b, s) pairs."""
    rng = np.random.default_rng(5)
    mask = rng.random((2, 9)) < 0.6
    b, s = np.broadcast_arrays(np.arange(2)[:, None, None, None], np.arange(9)[None, None, None])
    indices = np.stack([b, s], -1)
    got = gather_nd(torch.from_numpy(mask), torch.from_numpy(indices))
    np.testing.assert_array_equal(got.numpy(), gather_nd_reference(mask, indices))


def test_gather_rejects_float_ids_and_bad_k():
    with pytest.raises(ValueError, match=r"^gather_rows: indices must be int32 or int64"):
        gather_rows(torch.ones(3, 2), torch.ones(2))
    with pytest.raises(ValueError, match=r"^gather_nd: indices' last dim 3 must be in 1\.\.2"):
        gather_nd(torch.ones(3, 2), torch.zeros(4, 3, dtype=torch.int64))
