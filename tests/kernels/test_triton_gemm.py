"""GEMM kernel vs float64 numpy: ragged shapes, batching, transposed operands, epilogues."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_helpers import check, randn, rounded, to_torch

from infopt.kernels.gemm import gemm, gemm_reference

ACTS = [None, "Relu", "Gelu", "GeluTanh", "Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid", "Silu"]
SHAPES = [  # (batch_a, batch_b, M, K, N)
    ((), (), 1, 1, 1),
    ((), (), 17, 33, 9),
    ((3,), (), 37, 70, 53),
    ((2, 3), (2, 1), 20, 16, 31),
    ((), (), 100, 129, 65),
]


@pytest.mark.parametrize("seed,shape", list(enumerate(SHAPES)))
@pytest.mark.parametrize("dtype", ["fp32", "tf32", "fp16", "bf16"])
def test_gemm_shapes(seed, shape, dtype):
    rng = np.random.default_rng(seed)
    ba, bb, M, K, N = shape
    a, b = randn(rng, *ba, M, K), randn(rng, *bb, K, N)
    bias, res = randn(rng, N), randn(rng, M, N)
    act = ACTS[seed % len(ACTS)]
    at, bt = to_torch(a, dtype), to_torch(b, dtype)
    precision = "tf32" if dtype == "tf32" else "ieee"
    y = gemm(at, bt, to_torch(bias), to_torch(res), activation=act, precision=precision)
    ref = gemm_reference(rounded(a, dtype), rounded(b, dtype), bias, res, activation=act)
    check(y, ref, dtype, seed, f"gemm {shape} {act}")


@pytest.mark.parametrize("act", ACTS + ["Clip"])
def test_gemm_epilogues(act):
    seed = ACTS.index(act) if act in ACTS else 99
    rng = np.random.default_rng(100 + seed)
    a, b, bias = randn(rng, 13, 24), randn(rng, 24, 19), randn(rng, 19)
    params = {"LeakyRelu": (0.1, 0.0), "HardSigmoid": (0.3, 0.4), "Clip": (-0.5, 0.7)}.get(act)
    y = gemm(to_torch(a), to_torch(b), to_torch(bias), activation=act, act_params=params, alpha=0.7)
    check(
        y,
        gemm_reference(a, b, bias, activation=act, act_params=params, alpha=0.7),
        "fp32",
        seed,
        act,
    )


def test_gemm_strided_operands_and_broadcast_residual():
    rng = np.random.default_rng(7)
    a, b, res = randn(rng, 2, 30, 21), randn(rng, 2, 19, 30), randn(rng, 1, 19)
    at = to_torch(a).transpose(-1, -2)  # [2, 21, 30] as a view
    bt = to_torch(b).transpose(-1, -2)  # [2, 30, 19]
    y = gemm(at, bt, None, to_torch(res))
    ref = gemm_reference(np.swapaxes(a, -1, -2), np.swapaxes(b, -1, -2), None, res)
    check(y, ref, "fp32", 7, "strided gemm")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_gemm_fp32_inputs_in_half_mode(precision):
    rng = np.random.default_rng(11)
    a, b = randn(rng, 33, 40), randn(rng, 40, 17)
    y = gemm(to_torch(a), to_torch(b), precision=precision)
    # the rounding mode of the in-kernel cast differs between interpreter and GPU: compare to
    # the exact product at the half type's tolerance
    check(y, gemm_reference(a, b), precision, 11, precision)


def test_gemm_rejects_bad_shapes_in_one_line():
    import torch

    with pytest.raises(ValueError, match=r"^gemm: a \[2, 3\] and b \[4, 5\] do not multiply$"):
        gemm(torch.ones(2, 3), torch.ones(4, 5))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_gemm_random_sweep(seed):
    rng = np.random.default_rng(1000 + seed)
    M, K, N = (int(v) for v in rng.integers(1, 300, size=3))
    a, b = randn(rng, M, K), randn(rng, K, N)
    check(gemm(to_torch(a), to_torch(b)), gemm_reference(a, b), "fp32", 1000 + seed, "sweep")
