"""infopt.NchwcScaleShift (per-channel affine + activation on an NCHWc value: an inference
BatchNormalization) against a float64 numpy reference.

X [N, Cb, H, W, 8] with lanes past C holding NaN: the padded lanes of Y must be 0 whatever X
holds there and whatever the activation (Sigmoid(0) is not 0). Tolerances rtol 1e-4, atol 1e-5
(the helpers' defaults): one float32 multiply-add and the activation against float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from cpu_helpers import assert_close, randn, run_op
from test_nchwc import from_nchwc, to_nchwc

OP = "infopt.NchwcScaleShift"
ACTS = {
    "": ({}, lambda v: v),
    "Relu": ({}, lambda v: np.maximum(v, 0)),
    "Clip": ({"activation_params": [-0.5, 1.0]}, lambda v: np.clip(v, -0.5, 1.0)),
    "Sigmoid": ({}, lambda v: 1 / (1 + np.exp(-v))),
    "LeakyRelu": ({"activation_params": [0.1]}, lambda v: np.where(v < 0, 0.1 * v, v)),
}


def _case(rng, shape):
    x = randn(rng, *shape)
    c = shape[1]
    scale = (rng.uniform(0.5, 1.5, c) * rng.choice([-1, 1], c)).astype(np.float32)
    shift = randn(rng, c)
    return x, scale, shift


def _check(got, x, scale, shift, act):
    c = x.shape[1]
    ref = ACTS[act][1](x.astype(np.float64) * scale.reshape(1, c, 1, 1) + shift.reshape(1, c, 1, 1))
    assert_close(from_nchwc(got, c), ref)
    n, cb = got.shape[:2]
    padded = got.transpose(0, 1, 4, 2, 3).reshape(n, cb * 8, *got.shape[2:4])[:, c:]
    assert (padded == 0).all() and not np.signbit(padded).any()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize(
    "shape",
    [(1, 1, 5, 7), (2, 5, 3, 1), (1, 8, 7, 7), (2, 13, 9, 11), (1, 24, 1, 1), (2, 24, 33, 65)],
)  # the last: 12870 pixels, several tasks whose ranges span planes
@pytest.mark.parametrize("const", [(1, 2), ()])
def test_scale_shift(isa, rng, shape, act, threads, const):
    x, scale, shift = _case(rng, shape)
    attrs = {"activation": act, **ACTS[act][0]} if act else {}
    xin = to_nchwc(x, fill=np.nan)  # padded lanes must not reach Y
    got = run_op(OP, [xin, scale, shift], attrs, isa=isa, threads=threads, const=const)
    assert got.shape == xin.shape
    _check(got, x, scale, shift, act)


@pytest.mark.parametrize("act", ["Relu", "Clip", "Sigmoid"])
def test_scale_shift_nan_and_inf(isa, act):
    # NaN in a real channel survives the in-register Relu/Clip as in the scalar path; inf * a
    # positive scale stays inf before the activation
    x = np.ones((1, 13, 2, 3), np.float32)
    x[0, 2, 1, 1], x[0, 9, 0, 2], x[0, 12, 1, 0] = np.nan, np.inf, -np.inf
    scale, shift = np.full(13, 2, np.float32), np.full(13, -1, np.float32)
    attrs = {"activation": act, **ACTS[act][0]}
    got = from_nchwc(run_op(OP, [to_nchwc(x, np.nan), scale, shift], attrs, isa=isa), 13)
    want = ACTS[act][1](x.astype(np.float64) * 2 - 1)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got).sum() == 1
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-6)


def test_scale_shift_errors():
    x = np.ones((1, 2, 3, 3, 8), np.float32)
    v13 = np.ones(13, np.float32)
    with pytest.raises(
        ValueError,
        match=r"scale f32\[17\] and shift f32\[17\] must both be f32\[C\] with "
        r"ceil\(C/8\) = 2 for X f32\[1,2,3,3,8\]",
    ):
        run_op(OP, [x, np.ones(17, np.float32), np.ones(17, np.float32)])
    with pytest.raises(ValueError, match=r"shift f32\[12\]"):
        run_op(OP, [x, v13, np.ones(12, np.float32)])
    with pytest.raises(ValueError, match=r"scale f32\[1,13\]"):
        run_op(OP, [x, v13.reshape(1, 13), v13.reshape(1, 13)])
    with pytest.raises(ValueError, match=r"X f32\[1,13,3,3\] must be NCHWc"):
        run_op(OP, [np.ones((1, 13, 3, 3), np.float32), v13, v13])
    with pytest.raises(ValueError, match="activation"):
        run_op(OP, [x, v13, v13], {"activation": "Bogus"})
    with pytest.raises(ValueError, match="pads.*not supported"):
        run_op(OP, [x, v13, v13], {"pads": [0, 0, 0, 0]})
