"""Implicit-GEMM convolution (dense, grouped, depthwise) vs float64 numpy, NHWC and NCHW input."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_helpers import check, randn, rounded, to_torch

from infopt.kernels.conv import conv2d, conv2d_reference

# (N, C, H, W, C_out, KH, KW, strides, pads, dilations, groups, activation)
CASES = [
    (1, 3, 9, 11, 5, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1, "Relu"),
    (2, 5, 11, 13, 7, 3, 3, (2, 1), (0, 1, 2, 0), (1, 1), 1, None),
    (1, 8, 9, 10, 12, 3, 2, (2, 1), (0, 1, 2, 0), (1, 2), 4, "LeakyRelu"),
    (2, 6, 12, 9, 6, 3, 3, (1, 2), (1, 1, 1, 1), (2, 1), 6, "Clip"),
    (1, 7, 8, 8, 14, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 7, "Sigmoid"),
    (1, 40, 7, 7, 70, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1, "Gelu"),
    (1, 3, 17, 15, 16, 7, 7, (2, 2), (3, 3, 3, 3), (1, 1), 1, "HardSigmoid"),
]


@pytest.mark.parametrize("seed,case", list(enumerate(CASES)))
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_conv2d(seed, case, layout):
    import torch

    rng = np.random.default_rng(seed)
    NB, C, H, W, CO, KH, KW, strides, pads, dil, groups, act = case
    x, w, b = randn(rng, NB, C, H, W), randn(rng, CO, C // groups, KH, KW), randn(rng, CO)
    kw = dict(strides=strides, pads=pads, dilations=dil, groups=groups)
    res = randn(rng, *conv2d_reference(x, w, **kw).shape)
    params = {"LeakyRelu": (0.1, 0.0), "Clip": (-0.5, 0.5), "HardSigmoid": (0.2, 0.5)}.get(act)
    xt = to_torch(x)
    if layout == "nhwc":
        xt = xt.contiguous(memory_format=torch.channels_last)
    y = conv2d(xt, to_torch(w), to_torch(b), to_torch(res), activation=act, act_params=params, **kw)
    ref = conv2d_reference(x, w, b, res, activation=act, act_params=params, **kw)
    check(y, ref, "fp32", seed, f"conv {case}")


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "tf32"])
def test_conv2d_reduced_precision(dtype):
    rng = np.random.default_rng(21)
    x, w, b = randn(rng, 1, 16, 10, 9), randn(rng, 24, 16, 3, 3, scale=0.2), randn(rng, 24)
    kw = dict(strides=(1, 1), pads=(1, 1, 1, 1))
    precision = "tf32" if dtype == "tf32" else "ieee"
    tdtype = "fp32" if dtype == "tf32" else dtype
    y = conv2d(to_torch(x, tdtype), to_torch(w, tdtype), to_torch(b), precision=precision, **kw)
    ref = conv2d_reference(rounded(x, tdtype), rounded(w, tdtype), b, **kw)
    check(y, ref, dtype, 21, f"conv {dtype}")


def test_conv2d_rejects_channel_mismatch():
    import torch

    with pytest.raises(ValueError, match=r"^conv2d: x has 3 channels"):
        conv2d(torch.ones(1, 3, 5, 5), torch.ones(4, 2, 3, 3))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_conv2d_random_sweep(seed):
    rng = np.random.default_rng(500 + seed)
    groups = int(rng.choice([1, 2, 4]))
    C, CO = groups * int(rng.integers(1, 9)), groups * int(rng.integers(1, 9))
    K = int(rng.choice([1, 3, 5]))
    H, W = (int(v) for v in rng.integers(K, 20, size=2))
    s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    p = tuple(int(v) for v in rng.integers(0, K // 2 + 1, size=4))
    x, w = randn(rng, 2, C, H, W), randn(rng, CO, C // groups, K, K)
    kw = dict(strides=s, pads=p, groups=groups)
    check(conv2d(to_torch(x), to_torch(w), **kw), conv2d_reference(x, w, **kw), "fp32", 500 + seed,
          "conv sweep")  # fmt: skip
