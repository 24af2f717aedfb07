"""Shared helpers for the native-module tests: 1-step programs and float64 references."""

from __future__ import annotations

import numpy as np

from infopt import _C

ISAS = ["scalar"] + (["avx2"] if _C.cpu_supports("avx2") else [])

# float32 kernels against float64 references
RTOL = 1e-4
ATOL = 1e-5


def randn(rng: np.random.Generator, *shape, dtype=np.float32) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def run_op(op, inputs, attrs=None, *, isa=None, n_outputs=1, threads=1, const=()):
    """Run `op` as a one-step Program. `const` lists input indices given as constants."""
    p = _C.Program(threads, isa)
    ids, feeds, feed_ids = [], [], []
    for i, a in enumerate(inputs):
        if a is None:
            ids.append(-1)
            continue
        vid = p.add_value(f"in{i}")
        ids.append(vid)
        if i in const:
            p.set_constant(vid, a)
        else:
            feeds.append(a)
            feed_ids.append(vid)
    outs = [p.add_value(f"out{j}") for j in range(n_outputs)]
    p.add_native_step(op, ids, outs, attrs or {})
    p.set_io(feed_ids, outs)
    res = p.run(feeds)
    return res if n_outputs > 1 else res[0]


def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol, atol=atol)


# ---------------------------------------------------------------- references


def window_geometry(in_sp, k, strides, dil, pads, auto_pad="NOTSET", ceil_mode=False):
    """Per-axis (out, pad_begin, pad_end) following the ONNX spec."""
    nd = len(in_sp)
    strides = strides or [1] * nd
    dil = dil or [1] * nd
    pads = pads or [0] * (2 * nd)
    res = []
    for i in range(nd):
        dk = (k[i] - 1) * dil[i] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = -(-in_sp[i] // strides[i])
            total = max(0, (out - 1) * strides[i] + dk - in_sp[i])
            pb = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            res.append((out, pb, total - pb))
            continue
        pb, pe = (0, 0) if auto_pad == "VALID" else (pads[i], pads[i + nd])
        span = in_sp[i] + pb + pe - dk
        out = (-(-span // strides[i]) if ceil_mode else span // strides[i]) + 1
        if ceil_mode and (out - 1) * strides[i] >= in_sp[i] + pb:
            out -= 1
        res.append((out, pb, pe))
    return res


def _window_slices(xp, geo, k_idx, strides, dil):
    sl = [slice(None), slice(None)]
    for i, (out, _, _) in enumerate(geo):
        start = k_idx[i] * dil[i]
        sl.append(slice(start, start + (out - 1) * strides[i] + 1, strides[i]))
    return xp[tuple(sl)]


def ref_conv(x, w, b=None, *, strides=None, pads=None, dilations=None, group=1, auto_pad="NOTSET"):
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    nd = x.ndim - 2
    k = list(w.shape[2:])
    strides = strides or [1] * nd
    dil = dilations or [1] * nd
    geo = window_geometry(list(x.shape[2:]), k, strides, dil, pads, auto_pad)
    padw = [(0, 0), (0, 0)] + [(pb, pe + strides[i]) for i, (_, pb, pe) in enumerate(geo)]
    xp = np.pad(x, padw)
    n, c = x.shape[:2]
    m = w.shape[0]
    cg, mg = c // group, m // group
    y = np.zeros([n, m] + [o for o, _, _ in geo])
    for k_idx in np.ndindex(*k):
        xs = _window_slices(xp, geo, k_idx, strides, dil)
        for g in range(group):
            wk = w[(slice(g * mg, (g + 1) * mg), slice(None)) + tuple(k_idx)]
            y[:, g * mg : (g + 1) * mg] += np.einsum(
                "mc,nc...->nm...", wk, xs[:, g * cg : (g + 1) * cg]
            )
    if b is not None:
        y += b.astype(np.float64).reshape([1, m] + [1] * nd)
    return y


def ref_pool(
    x,
    kind,
    kernel_shape,
    *,
    strides=None,
    pads=None,
    dilations=None,
    auto_pad="NOTSET",
    ceil_mode=False,
    count_include_pad=False,
):
    x = x.astype(np.float64)
    nd = x.ndim - 2
    strides = strides or [1] * nd
    dil = dilations or [1] * nd
    geo = window_geometry(list(x.shape[2:]), kernel_shape, strides, dil, pads, auto_pad, ceil_mode)
    extra = [
        max(
            0,
            (o - 1) * strides[i] + (kernel_shape[i] - 1) * dil[i] + 1 - (x.shape[2 + i] + pb + pe),
        )
        for i, (o, pb, pe) in enumerate(geo)
    ]
    explicit = [(0, 0), (0, 0)] + [(pb, pe) for _, pb, pe in geo]
    over = [(0, 0), (0, 0)] + [(0, e) for e in extra]
    if kind == "max":
        xp = np.pad(np.pad(x, explicit, constant_values=-np.inf), over, constant_values=-np.inf)
    else:
        xp = np.pad(np.pad(x, explicit), over)
        ones = np.ones_like(x)
        cnt = np.pad(
            np.pad(ones, explicit, constant_values=1.0 if count_include_pad else 0.0), over
        )
    acc = None
    cacc = None
    for k_idx in np.ndindex(*kernel_shape):
        xs = _window_slices(xp, geo, k_idx, strides, dil)
        if kind == "max":
            acc = xs if acc is None else np.maximum(acc, xs)
        else:
            cs = _window_slices(cnt, geo, k_idx, strides, dil)
            acc = xs if acc is None else acc + xs
            cacc = cs if cacc is None else cacc + cs
    return acc if kind == "max" else acc / cacc
