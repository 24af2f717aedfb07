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
