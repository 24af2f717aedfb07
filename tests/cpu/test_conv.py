"""Conv and infopt.FusedConv against a float64 numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from cpu_helpers import assert_close, randn, ref_conv, run_op

CASES = [
    # (x shape, w shape, attrs)
    ((1, 3, 7, 7), (4, 3, 3, 3), {}),
    ((2, 3, 9, 8), (5, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((1, 4, 17, 15), (8, 4, 3, 3), {"strides": [2, 2], "pads": [1, 0, 1, 2]}),
    ((1, 2, 16, 16), (3, 2, 5, 5), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    ((1, 6, 9, 9), (4, 3, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
    ((2, 8, 10, 10), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1]}),  # depthwise
    (
        (1, 8, 11, 13),
        (8, 1, 5, 5),
        {"group": 8, "strides": [2, 2], "pads": [2, 2, 2, 2]},
    ),  # depthwise s2
    ((1, 8, 9, 9), (8, 1, 3, 3), {"group": 8, "dilations": [2, 2], "pads": [1, 2, 2, 1]}),
    ((1, 4, 9, 9), (8, 1, 3, 3), {"group": 4, "pads": [1, 1, 1, 1]}),  # channel multiplier 2
    ((2, 16, 7, 9), (33, 16, 1, 1), {}),  # pointwise
    ((1, 16, 8, 8), (17, 16, 1, 1), {"strides": [2, 2]}),  # 1x1 strided
    ((1, 3, 7, 7), (4, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 8, 8), (4, 3, 4, 4), {"auto_pad": "SAME_LOWER"}),
    ((1, 3, 8, 8), (4, 3, 4, 4), {"auto_pad": "SAME_UPPER"}),
    ((1, 3, 9, 8), (4, 3, 3, 2), {"auto_pad": "VALID", "strides": [2, 3]}),
    ((1, 3, 31), (5, 3, 4), {"pads": [1, 2], "strides": [2]}),  # 1-D
    ((1, 2, 5, 6, 7), (3, 2, 3, 2, 3), {"pads": [1, 0, 1, 1, 1, 0]}),  # 3-D
    ((1, 64, 20, 20), (31, 64, 3, 3), {"pads": [1, 1, 1, 1]}),  # K = 576, several column chunks
    ((1, 300, 5, 5), (9, 300, 3, 3), {"pads": [1, 1, 1, 1]}),  # K = 2700 > KC
]


def _ref_attrs(attrs):
    return {
        k: attrs[k] for k in ("strides", "pads", "dilations", "group", "auto_pad") if k in attrs
    }


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("xs,ws,attrs", CASES)
def test_conv(isa, rng, xs, ws, attrs, bias, threads):
    x, w = randn(rng, *xs), randn(rng, *ws)
    b = randn(rng, ws[0]) if bias else None
    ref = ref_conv(x, w, b, **_ref_attrs(attrs))
    rtol = 2e-4 if np.prod(ws[1:]) > 300 else 1e-4
    # constant W exercises pre-packed weights; fed W the plain path
    for const in ((), (1,)):
        out = run_op("Conv", [x, w, b], attrs, isa=isa, threads=threads, const=const)
        assert_close(out, ref, rtol=rtol, atol=1e-4)


def test_conv_kernel_shape_attr(isa, rng):
    x, w = randn(rng, 1, 2, 6, 6), randn(rng, 3, 2, 3, 3)
    assert_close(run_op("Conv", [x, w], {"kernel_shape": [3, 3]}, isa=isa), ref_conv(x, w))
    with pytest.raises(ValueError, match="kernel_shape"):
        run_op("Conv", [x, w], {"kernel_shape": [2, 2]}, isa=isa)


ACTS = {
    "": (lambda y: y, None),
    "Relu": (lambda y: np.maximum(y, 0), None),
    "LeakyRelu": (lambda y: np.where(y < 0, 0.05 * y, y), [0.05]),
    "Clip": (lambda y: np.clip(y, 0.0, 6.0), [0.0, 6.0]),
    "Sigmoid": (lambda y: 1 / (1 + np.exp(-y)), None),
    "HardSwish": (lambda y: y * np.clip(y / 6 + 0.5, 0, 1), None),
}


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize(
    "xs,ws,attrs",
    [
        ((1, 4, 9, 9), (6, 4, 3, 3), {"pads": [1, 1, 1, 1]}),
        ((2, 8, 7, 7), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1]}),
        ((1, 16, 5, 7), (9, 16, 1, 1), {}),
        ((1, 6, 8, 8), (6, 3, 3, 3), {"group": 2, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
    ],
)
def test_fused_conv(isa, rng, act, xs, ws, attrs):
    x, w, b = randn(rng, *xs), randn(rng, *ws), randn(rng, ws[0])
    conv = ref_conv(x, w, b, **_ref_attrs(attrs))
    z = randn(rng, *conv.shape)
    fn, params = ACTS[act]
    fattrs = dict(attrs, activation=act)
    if params:
        fattrs["activation_params"] = params
    assert_close(
        run_op("infopt.FusedConv", [x, w, b, z], fattrs, isa=isa, threads=2, const=(1, 2)),
        fn(conv + z),
        atol=1e-4,
    )
    assert_close(
        run_op("infopt.FusedConv", [x, w, None, z], fattrs, isa=isa),
        fn(conv - b.reshape(1, -1, 1, 1) + z),
        atol=1e-4,
    )
    assert_close(run_op("infopt.FusedConv", [x, w, b], fattrs, isa=isa), fn(conv), atol=1e-4)


def test_conv_errors():
    x, w = np.ones((1, 3, 5, 5), np.float32), np.ones((4, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"Conv.*channels.*f32\[1,3,5,5\]"):
        run_op("Conv", [x, w])
    with pytest.raises(ValueError, match="auto_pad"):
        run_op("Conv", [x, w], {"auto_pad": "FOO"})
    with pytest.raises(ValueError, match="larger than padded input"):
        run_op("Conv", [np.ones((1, 2, 2, 2), np.float32), np.ones((1, 2, 3, 3), np.float32)])
    with pytest.raises(ValueError, match="residual"):
        run_op(
            "infopt.FusedConv",
            [x, np.ones((4, 3, 3, 3), np.float32), None, np.ones((1, 4), np.float32)],
        )


# Depthwise 3x3 (the AVX2 register-tiled path): output widths straddling 8, strides 1 and 2,
# asymmetric pads; compared with the float64 reference and with the scalar variant.
@pytest.mark.parametrize("w_in", [1, 3, 7, 8, 9, 15, 16, 17, 31, 33])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("pads", [[1, 1, 1, 1], [0, 0, 0, 0], [0, 1, 2, 1]])
def test_depthwise3x3_widths(isa, rng, w_in, stride, pads):
    x, w, b = randn(rng, 2, 5, 6, w_in + 2), randn(rng, 5, 1, 3, 3), randn(rng, 5)
    attrs = {"group": 5, "pads": pads, "strides": [stride, stride]}
    ref = ref_conv(x, w, b, strides=[stride, stride], pads=pads, group=5)
    out = run_op("Conv", [x, w, b], attrs, isa=isa, const=(1, 2), threads=2)
    assert_close(out, ref, rtol=1e-4, atol=1e-5)
    xn = x.copy()
    xn[0, 1, 2, 1] = np.nan
    xn[1, 2, 0, 0] = np.inf
    got = run_op("Conv", [xn, w, b], attrs, isa=isa)
    np.testing.assert_array_equal(
        np.isnan(got), np.isnan(run_op("Conv", [xn, w, b], attrs, isa="scalar"))
    )


# Work-split and in-register epilogue paths of the im2col / 1x1 GEMM conv at awkward sizes
# (channels 1, 3, 7, 17, 33; maps 1, 5, 13): column chunks shared out over threads, the row-
# block split with one shared packed im2col (few columns, many output channels), edge tiles.
SPLIT_CASES = [
    ((1, 1, 5, 5), (7, 1, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((1, 3, 13, 13), (17, 3, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 7, 13, 13), (33, 7, 1, 1), {}),
    ((1, 33, 1, 1), (17, 33, 1, 1), {}),
    ((1, 33, 5, 5), (64, 33, 3, 3), {"pads": [1, 1, 1, 1]}),  # row-block split, im2col shared
    ((1, 33, 13, 13), (96, 33, 1, 1), {}),  # row-block split, 1x1
    ((1, 17, 13, 13), (33, 17, 3, 3), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    ((2, 8, 13, 13), (16, 4, 3, 3), {"group": 2, "pads": [1, 0, 0, 1]}),
    ((1, 17, 13, 13), (17, 1, 3, 3), {"group": 17, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 16, 40, 40), (33, 16, 3, 3), {"pads": [1, 1, 1, 1]}),  # several column chunks
    ((2, 32, 9, 9), (96, 32, 3, 3), {"pads": [1, 1, 1, 1]}),  # batch 2, row-block split
    # stride 1 on maps at least 8 (k-1)*dilation wide: the padded-width path
    ((1, 7, 9, 33), (17, 7, 3, 3), {"pads": [1, 0, 2, 1]}),
    ((1, 5, 11, 40), (9, 5, 3, 3), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    ((2, 6, 16, 17), (12, 3, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
    ((1, 3, 50), (5, 3, 3), {"pads": [1, 1]}),  # 1-D
    ((1, 33, 20, 20), (1, 33, 3, 3), {}),  # one output channel, no padding
    # strided: the padded width split into stride phase planes
    ((1, 5, 17, 29), (7, 5, 3, 3), {"strides": [2, 2], "dilations": [2, 2], "pads": [2, 1, 1, 2]}),
    ((1, 3, 20, 45), (9, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
    ((1, 8, 12, 36), (6, 8, 1, 1), {"strides": [3, 3]}),
    ((1, 4, 15, 40), (5, 4, 3, 2), {"strides": [1, 2], "pads": [1, 0, 0, 1]}),
]


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("xs,ws,attrs", SPLIT_CASES)
def test_fused_conv_split_paths(isa, rng, act, xs, ws, attrs):
    x, w, b = randn(rng, *xs), randn(rng, *ws), randn(rng, ws[0])
    conv = ref_conv(x, w, b, **_ref_attrs(attrs))
    z = randn(rng, *conv.shape)
    fn, params = ACTS[act]
    fattrs = dict(attrs, activation=act)
    if params:
        fattrs["activation_params"] = params
    # float32 sums of up to 297 products against float64: 1e-4 relative, 1e-4 absolute
    for threads in (1, 2):
        for inputs, ref in (([x, w, b, z], conv + z), ([x, w, b], conv)):
            got = run_op("infopt.FusedConv", inputs, fattrs, isa=isa, threads=threads, const=(1, 2))
            assert_close(got, fn(ref), rtol=1e-4, atol=1e-4)
            if isa != "scalar":
                # same sums in float32, FMA against separate multiply-add: outputs reach ~30
                # with cancellation, so 1e-5 relative and 5e-5 absolute
                scalar = run_op("infopt.FusedConv", inputs, fattrs, isa="scalar", const=(1, 2))
                assert_close(got, scalar.astype(np.float64), rtol=1e-5, atol=5e-5)


@pytest.mark.parametrize("act", ["", "Relu", "Clip"])
def test_fused_conv_epilogue_nan(isa, act):
    # NaN and inf from the input and from the residual survive the in-register epilogue as in
    # the scalar one (Relu and Clip keep NaN).
    rng = np.random.default_rng(7)
    x, w, b = randn(rng, 1, 16, 6, 8), randn(rng, 24, 16, 1, 1), randn(rng, 24)
    z = randn(rng, 1, 24, 6, 8)
    x[0, 3, 2, 5] = np.nan
    x[0, 5, 0, 0] = np.inf
    z[0, 7, 1, 1] = np.nan
    z[0, 9, 4, 3] = -np.inf
    attrs = {"activation": act}
    if act == "Clip":
        attrs["activation_params"] = [-1.0, 2.0]
    got = run_op("infopt.FusedConv", [x, w, b, z], attrs, isa=isa, threads=2, const=(1, 2))
    want = run_op("infopt.FusedConv", [x, w, b, z], attrs, isa="scalar", const=(1, 2))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got).any()
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-5, atol=1e-5)
