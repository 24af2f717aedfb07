"""NCHWc (8-lane channel-blocked) native ops against float64 numpy references.

Layout: NCHW [N, C, H, W] is stored as [N, ceil(C/8), H, W, 8], channel c at [n, c // 8, h, w,
c % 8], lanes past C zero. Conv inputs put NaN in those lanes: the contract says they must not
affect the result, and NaN would show any read of them.

Tolerances: float32 kernels against float64 references, rtol 1e-4 and atol 1e-5 (the helpers'
defaults) with weights scaled by 1/sqrt(C*KH*KW) so conv outputs stay O(1); the AVX2 variant
against the scalar one (same float32 sums, FMA against multiply-add): rtol 1e-5, atol 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
from cpu_helpers import assert_close, randn, ref_conv, ref_pool, run_op

from infopt import _C

RTOL, ATOL = 1e-4, 1e-5


def to_nchwc(x: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """numpy reference reorder; lanes past C hold `fill`."""
    n, c, h, w = x.shape
    cb = -(-c // 8)
    xp = np.full((n, cb * 8, h, w), fill, x.dtype)
    xp[:, :c] = x
    return np.ascontiguousarray(xp.reshape(n, cb, 8, h, w).transpose(0, 1, 3, 4, 2))


def from_nchwc(y: np.ndarray, c: int) -> np.ndarray:
    n, cb, h, w, _ = y.shape
    return y.transpose(0, 1, 4, 2, 3).reshape(n, cb * 8, h, w)[:, :c]


# ------------------------------------------------------------------------------------ reorders


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "shape",
    [
        (1, 1, 5, 7),
        (2, 3, 13, 14),
        (1, 5, 1, 1),
        (1, 8, 7, 7),
        (2, 13, 5, 14),
        (1, 16, 14, 13),
        (1, 24, 3, 5),
        (1, 3, 70, 70),
    ],  # 4900 pixels: several pixel chunks per plane
)
def test_reorder_roundtrip(isa, rng, shape, threads):
    x = randn(rng, *shape)
    c = shape[1]
    y = run_op("infopt.ReorderToNchwc", [x], isa=isa, threads=threads)
    np.testing.assert_array_equal(y, to_nchwc(x))  # exact, padded lanes 0.0
    back = run_op("infopt.ReorderFromNchwc", [y], {"channels": c}, isa=isa, threads=threads)
    np.testing.assert_array_equal(back, x)
    # fewer channels than the blocks hold (drops whole trailing blocks too)
    for keep in sorted({1, max(1, c - 1), max(1, c - 8)}):
        got = run_op("infopt.ReorderFromNchwc", [y], {"channels": keep}, isa=isa, threads=threads)
        np.testing.assert_array_equal(got, x[:, :keep])


def test_reorder_special_values(isa):
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 1.5], np.float32).reshape(1, 5, 1, 1)
    y = run_op("infopt.ReorderToNchwc", [x], isa=isa)
    np.testing.assert_array_equal(y.reshape(-1)[:5], x.reshape(-1))
    assert np.signbit(y.reshape(-1)[3])
    back = run_op("infopt.ReorderFromNchwc", [y], {"channels": 5}, isa=isa)
    np.testing.assert_array_equal(back, x)


# ---------------------------------------------------------------------------------------- conv

# (C, M, (H, W), (KH, KW), attrs)
CONV_CASES = [
    (1, 8, (5, 5), (3, 3), {"pads": [1, 1, 1, 1]}),
    (3, 16, (13, 14), (3, 3), {"strides": [2, 2], "pads": [1, 0, 1, 2]}),
    (5, 24, (7, 7), (5, 5), {"pads": [2, 2, 2, 2]}),
    (8, 40, (14, 13), (3, 3), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    (13, 16, (1, 1), (1, 1), {}),
    (16, 24, (14, 14), (1, 1), {"strides": [2, 2]}),
    (24, 40, (13, 13), (3, 3), {"pads": [0, 1, 1, 0]}),
    (13, 8, (7, 5), (7, 7), {"pads": [3, 3, 3, 3]}),
    (24, 16, (14, 14), (7, 7), {"strides": [2, 2], "pads": [3, 2, 3, 2]}),
    (3, 16, (23, 22), (7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),  # first-conv shape
    (16, 24, (5, 14), (3, 1), {"strides": [1, 2], "pads": [1, 0, 1, 0]}),
    (5, 8, (13, 14), (3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    (8, 16, (14, 13), (5, 5), {"auto_pad": "SAME_LOWER", "dilations": [2, 1]}),
    (16, 40, (28, 31), (3, 3), {"pads": [1, 1, 1, 1]}),  # several tasks; 31 = 6*4 + 7 columns
    (64, 24, (7, 7), (3, 3), {"strides": [3, 3], "pads": [2, 2, 2, 2]}),  # stride 3
    (24, 16, (5, 13), (3, 3), {"kernel_shape": [3, 3]}),  # no padding: reads X in place
    (24, 40, (20, 21), (1, 1), {}),  # 1x1, several blocks and tasks
    # > 128 KiB of packed weights per block: tiles take the channel groups in passes (AVX2)
    (261, 24, (6, 10), (3, 3), {"pads": [1, 1, 1, 1]}),
    (520, 8, (4, 9), (3, 3), {"strides": [1, 2], "pads": [0, 1, 1, 0]}),
]

# (bias, residual, activation, activation_params)
EPILOGUES = [
    (False, False, "", None),
    (True, False, "Relu", None),
    (True, True, "Clip", [-0.5, 0.75]),
    (False, True, "LeakyRelu", [0.1]),
    (True, True, "Sigmoid", None),
]

ACTS = {
    "": lambda y: y,
    "Relu": lambda y: np.maximum(y, 0),
    "Clip": lambda y: np.clip(y, -0.5, 0.75),
    "LeakyRelu": lambda y: np.where(y < 0, 0.1 * y, y),
    "Sigmoid": lambda y: 1 / (1 + np.exp(-y)),
}


def _conv_inputs(rng, n, c, m, hw, k):
    x = randn(rng, n, c, *hw)
    w = (randn(rng, m, c, *k) / np.sqrt(c * k[0] * k[1])).astype(np.float32)
    return x, w, randn(rng, m)


def _ref_attrs(attrs):
    return {k: attrs[k] for k in ("strides", "pads", "dilations", "auto_pad") if k in attrs}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("epi", range(len(EPILOGUES)))
@pytest.mark.parametrize("c,m,hw,k,attrs", CONV_CASES)
def test_nchwc_conv(isa, rng, c, m, hw, k, attrs, epi, threads):
    use_b, use_z, act, params = EPILOGUES[epi]
    n = 2 if c == 5 else 1
    x, w, b = _conv_inputs(rng, n, c, m, hw, k)
    ref = ref_conv(x, w, b if use_b else None, **_ref_attrs(attrs))
    z = randn(rng, *to_nchwc(ref).shape) if use_z else None
    if use_z:
        ref = ref + from_nchwc(z, m)
    want = to_nchwc(ACTS[act](ref))
    # the direct conv (3x3 stride-1 layers may take Winograd otherwise: test_nchwc_winograd.py)
    fattrs = dict(attrs, activation=act, winograd=0)
    if params:
        fattrs["activation_params"] = params
    inputs = [None, w, b if use_b else None, z]
    while inputs[-1] is None:
        inputs.pop()
    # NCHWc input (garbage in the padded lanes) and plain NCHW input; W constant (prepacked)
    # and fed (packed per run)
    for xin in (to_nchwc(x, fill=np.nan), x):
        for const in ((1, 2), ()):
            got = run_op(
                "infopt.NchwcConv",
                [xin] + inputs[1:],
                fattrs,
                isa=isa,
                threads=threads,
                const=const,
            )
            assert_close(got, want, rtol=RTOL, atol=ATOL)
    if isa != "scalar":
        scalar = run_op(
            "infopt.NchwcConv", [to_nchwc(x)] + inputs[1:], fattrs, isa="scalar", const=(1, 2)
        )
        assert_close(got, scalar.astype(np.float64), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "oh,ow", [(1, p) for p in range(1, 10)] + [(2, 7), (3, 5), (7, 7), (5, 13), (9, 25)]
)
@pytest.mark.parametrize("m", [8, 16, 24])
def test_nchwc_conv_tiles(isa, rng, oh, ow, m, threads):
    # Tiles run over consecutive output pixels, across row ends: a run of 1..9 pixels covers
    # every tile width of the 16-channel (up to 6 pixels) and trailing 8-channel (up to 8)
    # micro-kernels; larger maps split into balanced tiles that span rows. Strides 1 and 2.
    for stride in (1, 2):
        hw = ((oh - 1) * stride + 3, (ow - 1) * stride + 3)
        x, w, b = _conv_inputs(rng, 1, 11, m, hw, (3, 3))
        z = randn(rng, 1, m // 8, oh, ow, 8)
        attrs = {"strides": [stride, stride], "pads": [1, 0, 1, 0], "activation": "Relu"}
        want = to_nchwc(np.maximum(ref_conv(x, w, b, strides=[stride] * 2, pads=[1, 0, 1, 0]), 0))
        got = run_op(
            "infopt.NchwcConv", [to_nchwc(x), w, b], attrs, isa=isa, const=(1, 2), threads=threads
        )
        assert_close(got, want, rtol=RTOL, atol=ATOL)
        # no padding (X read in place): exactly oh x ow outputs
        attrs = {
            "strides": [stride, stride],
            "activation": "Clip",
            "activation_params": [-0.5, 0.5],
        }
        want = to_nchwc(
            np.clip(ref_conv(x, w, b, strides=[stride] * 2) + from_nchwc(z, m), -0.5, 0.5)
        )
        got = run_op(
            "infopt.NchwcConv",
            [to_nchwc(x), w, b, z],
            attrs,
            isa=isa,
            const=(1, 2),
            threads=threads,
        )
        assert_close(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
def test_nchwc_conv_1x1_large_input_stretches(isa, rng, threads, stride):
    # Input images over 1 MiB (72 x 64 x 64 floats) take the stretch order: ~64 KiB of input
    # pixels through every output block (16 + 16 + 8 channels here) per task; two images,
    # bias, residual and activation as in any other order.
    x, w, b = _conv_inputs(rng, 2, 72, 40, (64, 64), (1, 1))
    ref = ref_conv(x, w, b, strides=[stride] * 2)
    z = randn(rng, *to_nchwc(ref).shape)
    want = to_nchwc(np.maximum(ref + from_nchwc(z, 40), 0))
    attrs = {"strides": [stride] * 2, "activation": "Relu"}
    got = run_op(
        "infopt.NchwcConv", [to_nchwc(x), w, b, z], attrs, isa=isa, const=(1, 2), threads=threads
    )
    assert_close(got, want, rtol=RTOL, atol=ATOL)


def test_nchwc_conv_packed_weight_released(isa, rng):
    # W is packed once in prepare(); the kernel then reads only the packed copy, so the Program
    # may free the original, and later plans (other batch sizes, the NCHW input) still use it.
    p = _C.Program(2, isa)
    x_id, w_id, b_id, y_id = (p.add_value(n) for n in ("x", "w", "b", "y"))
    _, w, b = _conv_inputs(rng, 1, 13, 24, (1, 1), (3, 3))
    p.set_constant(w_id, w)
    p.set_constant(b_id, b)
    p.add_native_step("infopt.NchwcConv", [x_id, w_id, b_id], [y_id], {"pads": [1, 1, 1, 1]})
    p.set_io([x_id], [y_id])
    assert p.prepare(release_packed_constants=True) == w.nbytes
    assert p.released_constants() == ["w"]
    for n, nchw in ((1, False), (3, False), (2, True)):
        x = randn(rng, n, 13, 9, 7)
        (y,) = p.run([x if nchw else to_nchwc(x)])
        assert_close(y, to_nchwc(ref_conv(x, w, b, pads=[1, 1, 1, 1])), rtol=RTOL, atol=ATOL)


def run_residual_pair(x, conv1, conv2, attrs, threads, isa):
    """Relu(conv2(x) + conv1(x)) as two NchwcConv steps, the second taking the first's output
    as its residual Z (which dies there), read back to NCHW: (output, the one shape plan)."""
    p = _C.Program(threads, isa)
    x_id, w1, b1, z_id, w2, b2, y_id, out_id = (
        p.add_value(n) for n in ("x", "w1", "b1", "z", "w2", "b2", "y", "out")
    )
    for vid, arr in zip((w1, b1, w2, b2), (*conv1, *conv2), strict=True):
        p.set_constant(vid, arr)
    p.add_native_step("infopt.NchwcConv", [x_id, w1, b1], [z_id], attrs)
    p.add_native_step(
        "infopt.NchwcConv", [x_id, w2, b2, z_id], [y_id], dict(attrs, activation="Relu")
    )
    p.add_native_step("infopt.ReorderFromNchwc", [y_id], [out_id], {"channels": len(conv1[1])})
    p.set_io([x_id], [out_id])
    (got,) = p.run([to_nchwc(x)])
    (info,) = p.plans()
    return got, info


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("k,hw,c,m", [(1, (13, 11), 24, 48), (3, (9, 7), 13, 40)])
def test_nchwc_conv_residual_in_place(isa, rng, threads, k, hw, c, m):
    # z = conv1(x) lives in the arena and dies at conv2(x, z): conv2's output takes z's buffer
    # (inplace_inputs), reading each Z tile just before storing over it. Weights big enough
    # (k=3, c=13 -> 2 groups) or small, one tile per task or several.
    x, wa, ba = _conv_inputs(rng, 1, c, m, hw, (k, k))
    _, wb, bb = _conv_inputs(rng, 1, c, m, hw, (k, k))
    got, info = run_residual_pair(x, (wa, ba), (wb, bb), {"pads": [k // 2] * 4}, threads, isa)
    za = ref_conv(x, wa, ba, pads=[k // 2] * 4)
    want = np.maximum(ref_conv(x, wb, bb, pads=[k // 2] * 4) + za, 0)
    assert_close(got, want, rtol=RTOL, atol=ATOL)
    # z and y share one arena buffer of [1, m/8, H, W, 8] floats
    assert info["arena_values"] == 1 and info["arena_bytes"] < 2 * m * hw[0] * hw[1] * 4


@pytest.mark.parametrize("act", ["", "Relu", "Clip"])
def test_nchwc_conv_nan(isa, act):
    # NaN and inf from the input and the residual survive the in-register epilogue as in the
    # scalar one (Relu and Clip keep NaN)
    rng = np.random.default_rng(11)
    x, w, b = _conv_inputs(rng, 1, 16, 24, (6, 8), (1, 1))
    z = randn(rng, 1, 3, 6, 8, 8)
    x[0, 3, 2, 5] = np.nan
    x[0, 5, 0, 0] = np.inf
    z[0, 1, 1, 1, 2] = np.nan
    z[0, 2, 4, 3, 7] = -np.inf
    attrs = {"activation": act}
    if act == "Clip":
        attrs["activation_params"] = [-1.0, 2.0]
    inputs = [to_nchwc(x), w, b, z]
    got = run_op("infopt.NchwcConv", inputs, attrs, isa=isa, threads=2, const=(1, 2))
    want = run_op("infopt.NchwcConv", inputs, attrs, isa="scalar", const=(1, 2))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got).any()
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-5, atol=1e-5)


def test_nchwc_conv_errors():
    x = np.ones((1, 2, 5, 5, 8), np.float32)
    w16 = np.ones((16, 13, 3, 3), np.float32)
    with pytest.raises(
        ValueError, match=r"multiple of 8.*f32\[12,13,3,3\]|f32\[12,13,3,3\].*multiple of 8"
    ):
        run_op("infopt.NchwcConv", [x, np.ones((12, 13, 3, 3), np.float32)])
    with pytest.raises(ValueError, match="group"):
        run_op("infopt.NchwcConv", [x, w16], {"group": 2})
    with pytest.raises(ValueError, match=r"X f32\[1,2,5,5,8\] must be NCHWc f32\[N,1,H,W,8\]"):
        run_op("infopt.NchwcConv", [x, np.ones((16, 8, 3, 3), np.float32)])  # Cb mismatch
    with pytest.raises(ValueError, match=r"X f32\[1,2,5,5,4\]"):
        run_op("infopt.NchwcConv", [np.ones((1, 2, 5, 5, 4), np.float32), w16])
    with pytest.raises(ValueError, match=r"X f32\[1,12,5,5\]"):
        run_op("infopt.NchwcConv", [np.ones((1, 12, 5, 5), np.float32), w16])  # NCHW, C != 13
    with pytest.raises(ValueError, match=r"residual Z f32\[1,2,5,5,8\].*f32\[1,2,3,3,8\]"):
        run_op("infopt.NchwcConv", [x, w16, None, np.ones((1, 2, 5, 5, 8), np.float32)])
    with pytest.raises(ValueError, match=r"bias B f32\[8\]"):
        run_op("infopt.NchwcConv", [x, w16, np.ones(8, np.float32)])
    with pytest.raises(ValueError, match=r"W f32\[16,13,3\]"):
        run_op("infopt.NchwcConv", [x, np.ones((16, 13, 3), np.float32)])
    with pytest.raises(ValueError, match="kernel_shape"):
        run_op("infopt.NchwcConv", [x, w16], {"kernel_shape": [5, 5]})
    with pytest.raises(ValueError, match="larger than padded input"):
        run_op("infopt.NchwcConv", [np.ones((1, 2, 2, 2, 8), np.float32), w16])
    with pytest.raises(ValueError, match="activation"):
        run_op("infopt.NchwcConv", [x, w16], {"activation": "Bogus"})
    with pytest.raises(ValueError, match="storage_order.*not supported"):
        run_op("infopt.NchwcConv", [x, w16], {"storage_order": 0})


# --------------------------------------------------------------------------------------- pools

# (kind, (C, H, W), attrs)
POOL_CASES = [
    ("max", (64, 14, 14), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("max", (13, 13, 14), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    (
        "max",
        (5, 7, 7),
        {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1, "pads": [0, 1, 1, 0]},
    ),
    ("max", (8, 13, 13), {"kernel_shape": [3, 3], "dilations": [2, 2], "pads": [2, 1, 1, 2]}),
    ("max", (3, 5, 14), {"kernel_shape": [3, 2], "auto_pad": "SAME_UPPER", "strides": [2, 3]}),
    ("max", (1, 1, 1), {"kernel_shape": [1, 1]}),
    ("avg", (24, 14, 14), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    ("avg", (24, 14, 14), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    (
        "avg",
        (13, 7, 13),
        {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1, "pads": [1, 0, 0, 1]},
    ),
    (
        "avg",
        (13, 7, 13),
        {
            "kernel_shape": [3, 3],
            "strides": [2, 2],
            "ceil_mode": 1,
            "pads": [1, 1, 1, 1],
            "count_include_pad": 1,
        },
    ),
    ("avg", (16, 13, 13), {"kernel_shape": [13, 13]}),
    ("avg", (5, 5, 7), {"kernel_shape": [3, 3], "auto_pad": "SAME_LOWER", "count_include_pad": 1}),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind,chw,attrs", POOL_CASES)
def test_nchwc_pool(isa, rng, kind, chw, attrs, threads):
    x = randn(rng, 2, *chw)
    ref_kw = {k: attrs[k] for k in ("strides", "pads", "dilations", "auto_pad") if k in attrs}
    ref = ref_pool(
        x,
        kind,
        attrs["kernel_shape"],
        ceil_mode=bool(attrs.get("ceil_mode", 0)),
        count_include_pad=bool(attrs.get("count_include_pad", 0)),
        **ref_kw,
    )
    op = "infopt.NchwcMaxPool" if kind == "max" else "infopt.NchwcAveragePool"
    got = run_op(op, [to_nchwc(x)], attrs, isa=isa, threads=threads)
    assert_close(got, to_nchwc(ref), rtol=RTOL, atol=ATOL)  # padded lanes stay 0


def test_nchwc_maxpool_nan(isa):
    x = np.random.default_rng(3).standard_normal((1, 8, 6, 6)).astype(np.float32)
    x[0, 2, 1, 1] = np.nan
    x[0, 4, 5, 5] = -np.inf
    got = run_op(
        "infopt.NchwcMaxPool", [to_nchwc(x)], {"kernel_shape": [3, 3], "strides": [2, 2]}, isa=isa
    )
    ref = ref_pool(x, "max", [3, 3], strides=[2, 2])  # np.maximum propagates NaN
    np.testing.assert_array_equal(np.isnan(got), np.isnan(to_nchwc(ref)))
    assert np.isnan(got).any()


@pytest.mark.parametrize("k,s,w", [(2, 2, 9), (3, 2, 9), (4, 1, 9), (3, 2, 1100)])
def test_nchwc_maxpool_nan_every_tap(isa, k, s, w):
    # A NaN at each tap of one window, in turn: the separable AVX2 path pairs taps for its NaN
    # compares (odd and even tap counts here), rows wider than its column buffer (1100) take the
    # general path; the NaN must reach exactly the outputs whose windows hold it.
    base = np.random.default_rng(4).standard_normal((1, 3, 9, w)).astype(np.float32)
    attrs = {"kernel_shape": [k, k], "strides": [s, s], "pads": [1, 0, 0, 1]}
    for dy in range(k):
        for dx in range(k):
            x = base.copy()
            x[0, 1, s + dy - 1, s + dx] = np.nan  # window of output (1, 1) (pads: top 1, left 0)
            got = run_op("infopt.NchwcMaxPool", [to_nchwc(x)], attrs, isa=isa)
            ref = ref_pool(x, "max", [k, k], strides=[s, s], pads=[1, 0, 0, 1])
            np.testing.assert_array_equal(np.isnan(got), np.isnan(to_nchwc(ref)))
            assert np.isnan(got[0, 0, 1, 1, 1])
            finite = ~np.isnan(to_nchwc(ref))
            np.testing.assert_allclose(got[finite], to_nchwc(ref)[finite], rtol=0, atol=0)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 13, 7, 7), (1, 64, 13, 13), (1, 24, 14, 5)])
def test_nchwc_global_avgpool(isa, rng, shape, threads):
    x = randn(rng, *shape)
    got = run_op("infopt.NchwcGlobalAveragePool", [to_nchwc(x)], isa=isa, threads=threads)
    assert_close(
        got, to_nchwc(x.astype(np.float64).mean(axis=(2, 3), keepdims=True)), rtol=RTOL, atol=ATOL
    )


def test_nchwc_pool_and_reorder_errors():
    x4 = np.ones((1, 8, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"NchwcMaxPool X f32\[1,8,5,5\].*NCHWc"):
        run_op("infopt.NchwcMaxPool", [x4], {"kernel_shape": [3, 3]})
    with pytest.raises(ValueError, match="kernel_shape"):
        run_op("infopt.NchwcAveragePool", [to_nchwc(x4)], {})
    with pytest.raises(ValueError, match=r"NchwcGlobalAveragePool X f32\[1,8,5,5\]"):
        run_op("infopt.NchwcGlobalAveragePool", [x4])
    with pytest.raises(ValueError, match=r"ReorderToNchwc X f32\[1,8,5\]"):
        run_op("infopt.ReorderToNchwc", [np.ones((1, 8, 5), np.float32)])
    with pytest.raises(ValueError, match="channels"):
        run_op("infopt.ReorderFromNchwc", [to_nchwc(x4)])
    with pytest.raises(ValueError, match=r"channels=9 exceeds the 8 lanes of X f32\[1,1,5,5,8\]"):
        run_op("infopt.ReorderFromNchwc", [to_nchwc(x4)], {"channels": 9})
