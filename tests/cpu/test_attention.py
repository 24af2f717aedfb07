"""infopt.Attention against a float64 softmax(Q K^T * scale + mask) V reference.

Signature: Attention(Q[...,Sq,D], K[...,Sk,D] (or Kt[...,D,Sk] with kt=1), V[...,Sk,Dv], mask?)
-> Y[...,Sq,Dv]; mask float32 (added) or bool (True = attend), broadcastable to [...,Sq,Sk];
attributes scale (default 1/sqrt(D)), causal (query i sees keys j <= i + Sk - Sq) and kt.
"""

from __future__ import annotations

import numpy as np
import pytest
from cpu_helpers import assert_close, randn, run_op


def ref_attention(q, k, v, mask=None, scale=None, causal=False):
    q, k, v = (a.astype(np.float64) for a in (q, k, v))
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if mask is not None:
        s = s + (np.where(mask, 0.0, -np.inf) if mask.dtype == np.bool_ else mask)
    if causal:
        sq, sk = s.shape[-2:]
        allowed = np.arange(sk)[None, :] <= np.arange(sq)[:, None] + (sk - sq)
        s = np.where(allowed, s, -np.inf)
    with np.errstate(invalid="ignore"):
        e = np.exp(s - s.max(-1, keepdims=True))
        return (e / e.sum(-1, keepdims=True)) @ v


@pytest.mark.parametrize(
    "b,h,sq,sk,d",
    [
        (1, 1, 1, 1, 1),
        (1, 2, 7, 7, 8),
        (2, 3, 9, 17, 16),
        (1, 4, 33, 33, 32),
        (2, 2, 1, 31, 64),
        (1, 2, 130, 130, 15),
    ],
)
@pytest.mark.parametrize("threads", [1, 2])
def test_attention_shapes(isa, rng, b, h, sq, sk, d, threads):
    q, k, v = randn(rng, b, h, sq, d), randn(rng, b, h, sk, d), randn(rng, b, h, sk, d + 1)
    assert_close(
        run_op("infopt.Attention", [q, k, v], isa=isa, threads=threads), ref_attention(q, k, v)
    )


@pytest.mark.parametrize("causal", [0, 1])
def test_attention_masks(isa, rng, causal):
    b, h, sq, sk, d = 2, 3, 9, 12, 8
    q, k, v = randn(rng, b, h, sq, d), randn(rng, b, h, sk, d), randn(rng, b, h, sk, d)
    pad = np.zeros((b, 1, 1, sk), np.float32)
    pad[1, ..., -3:] = -1e4  # BERT-style padding mask
    y = run_op(
        "infopt.Attention", [q, k, v, pad], {"causal": causal, "scale": 0.3}, isa=isa, threads=2
    )
    assert_close(y, ref_attention(q, k, v, pad, 0.3, bool(causal)))
    keep = rng.random((sq, sk)) > 0.3
    keep[:, -1] = True  # every row keeps at least one key
    y = run_op("infopt.Attention", [q, k, v, keep], {"causal": causal}, isa=isa)
    assert_close(y, ref_attention(q, k, v, keep, None, bool(causal)))


def test_attention_errors(rng):
    q, k = randn(rng, 1, 2, 3, 4), randn(rng, 1, 2, 5, 4)
    with pytest.raises(ValueError, match="Attention shapes"):
        run_op("infopt.Attention", [q, k, randn(rng, 1, 2, 4, 4)])
    with pytest.raises(ValueError, match="mask"):
        run_op("infopt.Attention", [q, k, randn(rng, 1, 2, 5, 4), randn(rng, 2, 5)])


@pytest.mark.parametrize("batch", [(), (3,), (2, 3), (1, 2, 2)])
def test_attention_kt_and_batch_ranks(isa, rng, batch):
    sq, sk, d = 9, 17, 8
    q, k, v = randn(rng, *batch, sq, d), randn(rng, *batch, sk, d), randn(rng, *batch, sk, d)
    mask = randn(rng, sq, sk)
    ref = ref_attention(q, k, v, mask, 0.25)
    kt = np.ascontiguousarray(np.swapaxes(k, -1, -2))
    y = run_op("infopt.Attention", [q, kt, v, mask], {"kt": 1, "scale": 0.25}, isa=isa, threads=2)
    assert_close(y, ref)
    assert_close(run_op("infopt.Attention", [q, k, v, mask], {"scale": 0.25}, isa=isa), ref)


# The row kernels work on blocks of 6 query rows x 16/8/masked-tail columns: sizes straddle
# both, with D and Dv not multiples of 8, one batch entry (rows split over the pool) and many.
@pytest.mark.parametrize(
    "b,h,sq,sk,d,dv",
    [
        (1, 1, 127, 127, 33, 17),
        (1, 1, 13, 7, 1, 9),
        (1, 3, 5, 16, 7, 24),
        (2, 5, 31, 129, 32, 31),
        (1, 12, 128, 128, 32, 32),
    ],
)
@pytest.mark.parametrize("kt", [0, 1])
def test_attention_row_kernels(isa, rng, b, h, sq, sk, d, dv, kt):
    q, k, v = randn(rng, b, h, sq, d), randn(rng, b, h, sk, d), randn(rng, b, h, sk, dv)
    mask = np.where(rng.random((b, 1, 1, sk)) < 0.2, -1e4, 0.0).astype(np.float32)
    kin = np.ascontiguousarray(np.swapaxes(k, -1, -2)) if kt else k
    y = run_op("infopt.Attention", [q, kin, v, mask], {"kt": kt}, isa=isa, threads=2)
    # float32 products of length <= 129 against float64
    assert_close(y, ref_attention(q, k, v, mask))
    if isa != "scalar":  # the vector variant against the scalar one on the same inputs
        ys = run_op("infopt.Attention", [q, kin, v, mask], {"kt": kt}, isa="scalar", threads=2)
        np.testing.assert_allclose(y, ys, rtol=1e-5, atol=1e-6)


def test_attention_extreme_masks(isa, rng):
    """-inf and float32-min masks, a fully masked row (NaN, like the reference), a mask that
    broadcasts along the keys (column stride 0) and causal rows that see no key (Sq > Sk)."""
    b, h, sq, sk, d = 1, 2, 11, 19, 8
    q, k, v = randn(rng, b, h, sq, d), randn(rng, b, h, sk, d), randn(rng, b, h, sk, d)
    mask = np.zeros((b, h, sq, sk), np.float32)
    mask[..., 3:9] = -np.inf
    mask[..., 10:12] = np.finfo(np.float32).min
    mask[0, 1, 4, :] = -np.inf  # this row sees no key
    y = run_op("infopt.Attention", [q, k, v, mask], isa=isa, threads=2)
    ref = ref_attention(q, k, v, mask)
    assert np.isnan(y[0, 1, 4]).all()
    ok = ~np.isnan(ref)
    assert_close(y[ok], ref[ok])
    assert not np.isnan(y[ok]).any()
    col = np.where(rng.random((b, 1, sq, 1)) < 0.5, -30.0, 2.0).astype(np.float32)
    y = run_op("infopt.Attention", [q, k, v, col], isa=isa)
    assert_close(y, ref_attention(q, k, v, col))
    q[0, 0, 2, 3] = np.nan  # NaN in a query row reaches that row's output only
    y = run_op("infopt.Attention", [q, k, v, mask], isa=isa, threads=2)
    assert np.isnan(y[0, 0, 2]).all()
    assert_close(y[0, 0, 5:], ref[0, 0, 5:])
    q = randn(rng, b, h, sk + 4, d)  # 4 more queries than keys: the first 4 see nothing
    y = run_op("infopt.Attention", [q, k, v], {"causal": 1}, isa=isa, threads=2)
    assert np.isnan(y[..., :4, :]).all()
    assert_close(y[..., 4:, :], ref_attention(q, k, v, causal=True)[..., 4:, :])


@pytest.mark.parametrize("expanded", [False, True])
@pytest.mark.parametrize("kind", ["float_min", "bool", "neg_inf"])
def test_attention_right_padding(isa, rng, kind, expanded):
    """Keys past the last live one of a block (mask false / <= -1e30) are skipped: results
    match the float64 reference at the usual tolerance, with batch entries of different
    lengths, causal rows, and a key mask expanded over the query rows as exported graphs do."""
    b, h, sq, sk, d = 3, 2, 40, 40, 16
    q, k, v = randn(rng, b, h, sq, d), randn(rng, b, h, sk, d), randn(rng, b, h, sk, d)
    lengths = [9, 40, 17]
    keep = np.arange(sk)[None, :] < np.array(lengths)[:, None]  # [b, sk]
    if kind == "bool":
        mask = keep[:, None, None, :]
    else:
        dead = np.finfo(np.float32).min if kind == "float_min" else -np.inf
        mask = np.where(keep, 0.0, dead).astype(np.float32)[:, None, None, :]
    if expanded:
        mask = np.ascontiguousarray(np.broadcast_to(mask, (b, 1, sq, sk)))
    for causal in (0, 1):
        y = run_op("infopt.Attention", [q, k, v, mask], {"causal": causal}, isa=isa, threads=2)
        assert_close(y, ref_attention(q, k, v, mask, causal=bool(causal)))


def test_attention_padding_edge_rows(isa, rng):
    """Trimming never changes a row that has no live key (float32-min everywhere gives the
    float32 softmax of equal values: the mean of V), nor a mask with dead keys only in the
    middle, nor -1e4 padding (not treated as dead)."""
    b, h, sq, sk, d = 1, 1, 6, 23, 8
    q, k, v = randn(rng, b, h, sq, d), randn(rng, b, h, sk, d), randn(rng, b, h, sk, d)
    mask = np.zeros((b, h, sq, sk), np.float32)
    mask[..., 10:] = np.finfo(np.float32).min
    mask[0, 0, 3, :] = np.finfo(np.float32).min  # row 3: no live key
    y = run_op("infopt.Attention", [q, k, v, mask], isa=isa)
    rows = [0, 1, 2, 4, 5]
    assert_close(y[0, 0, rows], ref_attention(q, k, v, mask)[0, 0, rows])
    assert_close(y[0, 0, 3], v[0, 0].astype(np.float64).mean(0))
    for m in (
        np.where((np.arange(sk) % 5 == 2), -np.inf, 0.0),
        np.where(np.arange(sk) > 12, -1e4, 0.0),
    ):
        m = m.astype(np.float32)
        assert_close(run_op("infopt.Attention", [q, k, v, m], isa=isa), ref_attention(q, k, v, m))


# bshd=1: Q [B,Sq,H,D], K [B,Sk,H,D], V [B,Sk,H,Dv] -> Y [B,Sq,H,Dv] (heads interleaved in each
# row, as a projection's output split into heads); the mask broadcasts to [B,H,Sq,Sk].
@pytest.mark.parametrize(
    "b,h,sq,sk,d,dv",
    [(1, 1, 1, 1, 1, 1), (2, 3, 9, 17, 16, 5), (1, 12, 128, 128, 32, 32), (3, 2, 7, 130, 9, 33)],
)
@pytest.mark.parametrize("threads", [1, 2])
def test_attention_bshd(isa, rng, b, h, sq, sk, d, dv, threads):
    q, k, v = randn(rng, b, sq, h, d), randn(rng, b, sk, h, d), randn(rng, b, sk, h, dv)
    mask = np.where(rng.random((b, 1, 1, sk)) < 0.2, -1e4, 0.0).astype(np.float32)
    mask[..., 0] = 0.0  # every row keeps a key
    heads = lambda a: np.swapaxes(a, 1, 2)  # noqa: E731 [B,S,H,D] -> [B,H,S,D]
    ref = heads(ref_attention(heads(q), heads(k), heads(v), mask, 0.4, causal=sq == sk))
    y = run_op(
        "infopt.Attention",
        [q, k, v, mask],
        {"bshd": 1, "scale": 0.4, "causal": int(sq == sk)},
        isa=isa,
        threads=threads,
    )
    assert y.shape == (b, sq, h, dv)
    assert_close(y, ref)


def test_attention_bshd_errors(rng):
    q, k, v = randn(rng, 1, 3, 2, 4), randn(rng, 1, 5, 2, 4), randn(rng, 1, 5, 2, 4)
    with pytest.raises(ValueError, match="bshd=1 needs 4-D"):
        run_op("infopt.Attention", [q[0], k[0], v[0]], {"bshd": 1})
    with pytest.raises(ValueError, match="Attention shapes do not match"):
        run_op("infopt.Attention", [q, randn(rng, 1, 5, 3, 4), v], {"bshd": 1})
    with pytest.raises(ValueError, match="kt"):
        run_op("infopt.Attention", [q, k, v], {"bshd": 1, "kt": 1})
