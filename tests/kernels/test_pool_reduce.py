"""Pooling and reductions vs float64 numpy, NHWC and NCHW inputs."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_helpers import check, randn, to_torch

from infopt.kernels.pool import pool2d, pool2d_reference
from infopt.kernels.reduce import reduce, reduce_reference

POOLS = [  # (shape, kernel, strides, pads, dilations, ceil, include_pad)
    ((1, 3, 9, 9), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), False, False),
    ((2, 5, 13, 11), (3, 3), (2, 2), (1, 0, 1, 1), (1, 1), True, True),
    ((1, 70, 8, 7), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), True, False),
    ((2, 4, 10, 12), (3, 2), (1, 3), (1, 1, 0, 1), (2, 1), False, False),
    ((1, 2, 7, 7), (7, 7), (1, 1), (0, 0, 0, 0), (1, 1), False, False),
]


@pytest.mark.parametrize("seed,case", list(enumerate(POOLS)))
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_pool2d(seed, case, kind, layout):
    import torch

    shape, kernel, strides, pads, dil, ceil, inc = case
    if kind == "avg" and dil != (1, 1):
        pytest.skip("AveragePool has no dilations here")
    rng = np.random.default_rng(seed)
    x = randn(rng, *shape)
    xt = to_torch(x)
    if layout == "nhwc":
        xt = xt.contiguous(memory_format=torch.channels_last)
    kw = dict(strides=strides, pads=pads, dilations=dil, ceil_mode=ceil, count_include_pad=inc)
    y = pool2d(xt, kind, kernel, **kw)
    check(y, pool2d_reference(x, kind, kernel, **kw), "fp32", seed, f"{kind}pool {case}",
          tol=(1e-6, 1e-6))  # fmt: skip


REDUCTIONS = [
    ((2, 5, 6, 7), (2, 3)),
    ((2, 5, 6, 7), (1,)),
    ((2, 5, 6, 7), (0, 2)),
    ((3, 1000), (1,)),
    ((4, 9), None),
    ((2, 3, 4), (-1,)),
]


@pytest.mark.parametrize("seed,case", list(enumerate(REDUCTIONS)))
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "sumsquare"])
@pytest.mark.parametrize("keepdims", [True, False])
def test_reduce(seed, case, op, keepdims):
    import torch

    shape, axes = case
    rng = np.random.default_rng(seed)
    x = randn(rng, *shape)
    xt = to_torch(x)
    if len(shape) == 4 and seed % 2 == 0:
        xt = xt.contiguous(memory_format=torch.channels_last)
    y = reduce(xt, axes, op, keepdims=keepdims)
    check(y, reduce_reference(x, axes, op, keepdims=keepdims), "fp32", seed, f"reduce {op} {case}",
          tol=(1e-4, 1e-5))  # fmt: skip


def test_pool_errors_are_one_line():
    import torch

    with pytest.raises(ValueError, match=r"^pool2d: needs a 4-D x and kind max\|avg"):
        pool2d(torch.ones(2, 3), "max", (2, 2))
    with pytest.raises(ValueError, match=r"^reduce: unknown op 'prod'"):
        reduce(torch.ones(2, 3), None, "prod")
