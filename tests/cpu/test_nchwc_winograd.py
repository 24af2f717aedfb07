"""Winograd F(m x m, 3 x 3) path of infopt.NchwcConv (m = 2, 4) against float64 references.

The kernel takes it for a 3x3, stride-1, undilated conv with constant W; the `winograd`
attribute forces a tile size (2, 4) or the direct conv (0). Tolerances: float64 reference with
weights scaled by 1/sqrt(9C) so outputs are O(1): m = 2 rtol 1e-4, atol 1e-5 (as the direct
conv); m = 4 rtol 1e-4, atol 1e-4 (its transforms carry coefficients up to 8 and 5: ~1e-5
absolute error per output here). AVX2 against the scalar variant (same transforms and order of
sums, FMA against multiply-add): atol 1e-5 (m = 2), 5e-5 (m = 4).
"""

from __future__ import annotations

import numpy as np
import pytest
from cpu_helpers import assert_close, randn, ref_conv, run_op
from test_nchwc import ACTS, EPILOGUES, from_nchwc, run_residual_pair, to_nchwc

ATOL = {2: 1e-5, 4: 1e-4}
ATOL_VS_SCALAR = {2: 1e-5, 4: 5e-5}

# (N, C, M, (H, W), pads): C past a multiple of 8 (garbage lanes), M with a trailing 8-channel
# block, maps not a multiple of the tile (partial tiles), 1-pixel and 2-pixel maps, no or
# asymmetric padding, two images, many tile chunks (56 x 56) and few tiles split over output
# blocks (7 x 7 x 64 at 2 threads).
CASES = [
    (1, 16, 16, (8, 8), [1, 1, 1, 1]),
    (2, 13, 24, (7, 9), [1, 1, 1, 1]),
    (1, 64, 40, (14, 14), [1, 1, 1, 1]),
    (1, 24, 16, (5, 13), [0, 0, 0, 0]),
    (1, 8, 8, (1, 1), [1, 1, 1, 1]),
    (1, 5, 16, (2, 3), [1, 1, 1, 1]),
    (1, 20, 32, (17, 3), [1, 0, 2, 1]),
    (1, 32, 24, (56, 56), [1, 1, 1, 1]),
    (2, 40, 64, (7, 7), [1, 1, 1, 1]),
    (1, 264, 8, (6, 11), [1, 1, 1, 1]),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("epi", range(len(EPILOGUES)))
@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("n,c,mo,hw,pads", CASES)
def test_winograd_conv(isa, rng, n, c, mo, hw, pads, m, epi, threads):
    use_b, use_z, act, params = EPILOGUES[epi]
    x = randn(rng, n, c, *hw)
    w = (randn(rng, mo, c, 3, 3) / np.sqrt(9 * c)).astype(np.float32)
    b = randn(rng, mo)
    ref = ref_conv(x, w, b if use_b else None, pads=pads)
    z = randn(rng, *to_nchwc(ref).shape) if use_z else None
    if use_z:
        ref = ref + from_nchwc(z, mo)
    want = to_nchwc(ACTS[act](ref))
    attrs = {"pads": pads, "activation": act, "winograd": m}
    if params:
        attrs["activation_params"] = params
    inputs = [to_nchwc(x, fill=np.nan), w, b if use_b else None, z]
    while inputs[-1] is None:
        inputs.pop()
    got = run_op("infopt.NchwcConv", inputs, attrs, isa=isa, threads=threads, const=(1, 2))
    assert_close(got, want, rtol=1e-4, atol=ATOL[m])
    if isa != "scalar":
        scalar = run_op("infopt.NchwcConv", inputs, attrs, isa="scalar", const=(1, 2))
        assert_close(got, scalar.astype(np.float64), rtol=1e-5, atol=ATOL_VS_SCALAR[m])


@pytest.mark.parametrize(
    "c,mo,hw,expect_winograd",
    [(64, 64, 16, True), (256, 256, 10, True), (64, 64, 10, False), (13, 16, 10, False)],
)
def test_winograd_auto_and_fallbacks(isa, rng, c, mo, hw, expect_winograd):
    # auto (no attribute) takes Winograd for ResNet's 64- and 256-channel 3x3 layers (m = 4, 2)
    # on maps large enough for it to pay (the cost model's direct conv is cheaper for 64
    # channels at 10x10: 9 tiles computing 12x12 outputs, 4x the weights) and the direct conv for
    # few input channels; a fed W (not constant), a strided or dilated conv and plain NCHW
    # input take the direct conv even when forced. Every form is checked against the reference;
    # "took Winograd" shows as a result that differs from the direct conv's bits.
    x = randn(rng, 1, c, hw, hw)
    w = (randn(rng, mo, c, 3, 3) / np.sqrt(9 * c)).astype(np.float32)
    pads = {"pads": [1, 1, 1, 1]}
    ref = to_nchwc(ref_conv(x, w, None, pads=[1, 1, 1, 1]))
    direct = run_op(
        "infopt.NchwcConv", [to_nchwc(x), w], dict(pads, winograd=0), isa=isa, const=(1,)
    )
    auto = run_op("infopt.NchwcConv", [to_nchwc(x), w], pads, isa=isa, const=(1,))
    assert_close(auto, ref, rtol=1e-4, atol=1e-4)
    assert (not np.array_equal(auto, direct)) == expect_winograd
    fed = run_op("infopt.NchwcConv", [to_nchwc(x), w], dict(pads, winograd=4), isa=isa)
    np.testing.assert_array_equal(fed, direct)
    plain = run_op("infopt.NchwcConv", [x, w], dict(pads, winograd=4), isa=isa, const=(1,))
    assert_close(plain, ref, rtol=1e-4, atol=1e-5)
    for extra in ({"strides": [2, 2]}, {"dilations": [2, 2]}):
        want = to_nchwc(ref_conv(x, w, None, pads=[1, 1, 1, 1], **extra))
        attrs = dict(pads, winograd=4, **extra)
        got = run_op("infopt.NchwcConv", [to_nchwc(x), w], attrs, isa=isa, const=(1,))
        assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("m", [2, 4])
def test_winograd_residual_in_place(isa, rng, threads, m):
    # conv2 writes Y over its dying residual z (inplace_inputs): each output pixel of a tile
    # reads its Z just before the store, as in the direct conv.
    c, mo, hw = 24, 40, (13, 11)
    x = randn(rng, 1, c, *hw)
    wa, wb = ((randn(rng, mo, c, 3, 3) / np.sqrt(9 * c)).astype(np.float32) for _ in range(2))
    ba, bb = randn(rng, mo), randn(rng, mo)
    attrs = {"pads": [1, 1, 1, 1], "winograd": m}
    got, info = run_residual_pair(x, (wa, ba), (wb, bb), attrs, threads, isa)
    pads = [1, 1, 1, 1]
    want = np.maximum(ref_conv(x, wb, bb, pads=pads) + ref_conv(x, wa, ba, pads=pads), 0)
    assert_close(got, want, rtol=1e-4, atol=ATOL[m])
    assert info["arena_values"] == 1


@pytest.mark.parametrize("m", [2, 4])
def test_winograd_nan(isa, m):
    # A NaN input pixel: every output whose window reads it is NaN (the transforms may spread
    # it to the rest of its tile, documented); outputs of tiles whose patches miss it are finite.
    rng = np.random.default_rng(5)
    x = randn(rng, 1, 16, 12, 12)
    w = (randn(rng, 16, 16, 3, 3) / 12).astype(np.float32)
    x[0, 3, 6, 6] = np.nan
    got = from_nchwc(
        run_op(
            "infopt.NchwcConv",
            [to_nchwc(x), w],
            {"pads": [1, 1, 1, 1], "winograd": m},
            isa=isa,
            const=(1,),
        ),
        16,
    )
    assert np.isnan(got[0, :, 5:8, 5:8]).all()
    # the first tile row and column read padded rows/columns [0, m + 2), input ones [0, m + 1);
    # the last ones start past the NaN (input row 6) too
    assert np.isfinite(got[0, :, :m, :m]).all()
    assert np.isfinite(got[0, :, -m:, -m:]).all()


def test_winograd_attribute_error():
    x = np.ones((1, 2, 5, 5, 8), np.float32)
    w = np.ones((16, 13, 3, 3), np.float32)
    with pytest.raises(ValueError, match="winograd"):
        run_op("infopt.NchwcConv", [x, w], {"winograd": 3})
