"""MatMul, Gemm and infopt.FusedGemm against float64 numpy, on both ISAs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cpu_helpers import assert_close, randn, run_op

SIZES = [1, 7, 8, 9, 15, 16, 17, 31, 33, 100]

ACTS = {
    "": lambda x: x,
    "Relu": lambda x: np.maximum(x, 0),
    "LeakyRelu": lambda x: np.where(x < 0, 0.1 * x, x),
    "Clip": lambda x: np.clip(x, -0.5, 0.7),
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "Tanh": np.tanh,
    "HardSigmoid": lambda x: np.clip(0.3 * x + 0.4, 0, 1),
    "HardSwish": lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
    "Gelu": lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
    "GeluTanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
}
ACT_PARAMS = {"LeakyRelu": [0.1], "Clip": [-0.5, 0.7], "HardSigmoid": [0.3, 0.4]}


def rtol_for(k):
    return 1e-4 if k < 300 else 3e-4


@pytest.mark.parametrize("m", SIZES)
@pytest.mark.parametrize("n", [1, 8, 17, 33])
def test_matmul_sizes(isa, rng, m, n):
    for k in (1, 9, 31, 100):
        a, b = randn(rng, m, k), randn(rng, k, n)
        assert_close(
            run_op("MatMul", [a, b], isa=isa), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4
        )


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(64, 600, 48), (150, 260, 290), (7, 1000, 33), (301, 67, 257)])
def test_matmul_blocking(isa, rng, shape, threads):
    # K > KC (256) exercises accumulation across K blocks; M > MC across M blocks.
    m, k, n = shape
    a, b = randn(rng, m, k), randn(rng, k, n)
    assert_close(
        run_op("MatMul", [a, b], isa=isa, threads=threads),
        a.astype(np.float64) @ b,
        rtol=rtol_for(k),
        atol=1e-3,
    )


def test_matmul_large_threaded(isa, rng):
    a, b = randn(rng, 513, 300), randn(rng, 300, 4200)  # N > NC (4096)
    assert_close(
        run_op("MatMul", [a, b], isa=isa, threads=2), a.astype(np.float64) @ b, rtol=3e-4, atol=1e-3
    )


@pytest.mark.parametrize(
    "sa,sb",
    [
        ((5,), (5,)),
        ((5,), (5, 3)),
        ((4, 5), (5,)),
        ((2, 3, 4, 5), (5, 6)),
        ((3, 4, 5), (1, 5, 6)),
        ((2, 1, 4, 5), (3, 5, 7)),
        ((7,), (2, 7, 3)),
        ((2, 3, 4), (4,)),
        ((1, 9, 17), (4, 17, 8)),
    ],
)
def test_matmul_broadcast(isa, rng, sa, sb):
    a, b = randn(rng, *sa), randn(rng, *sb)
    assert_close(run_op("MatMul", [a, b], isa=isa, threads=2), np.matmul(a.astype(np.float64), b))


@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape", [None, (), (1,), (17,), (9, 1), (1, 17), (9, 17)])
def test_gemm(isa, rng, trans_a, trans_b, c_shape):
    m, k, n = 9, 33, 17
    a = randn(rng, *((k, m) if trans_a else (m, k)))
    b = randn(rng, *((n, k) if trans_b else (k, n)))
    c = None if c_shape is None else randn(rng, *c_shape)
    attrs = {"alpha": 0.7, "beta": 1.3, "transA": trans_a, "transB": trans_b}
    ref = 0.7 * ((a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b))
    if c is not None:
        ref = ref + 1.3 * c
    assert_close(run_op("Gemm", [a, b, c], attrs, isa=isa), ref)


def test_gemm_constant_weights_and_beta_zero(isa, rng):
    a, b, c = randn(rng, 31, 16), randn(rng, 16, 9), randn(rng, 9)
    out = run_op("Gemm", [a, b, c], {"beta": 0.0}, isa=isa, const=(1, 2))
    assert_close(out, a.astype(np.float64) @ b)


@pytest.mark.parametrize("act", list(ACTS))
def test_fused_gemm(isa, rng, act):
    a, b, c = randn(rng, 15, 31), randn(rng, 17, 31), randn(rng, 17)
    attrs = {"transB": 1, "activation": act}
    if act in ACT_PARAMS:
        attrs["activation_params"] = ACT_PARAMS[act]
    ref = ACTS[act](a.astype(np.float64) @ b.T + c)
    assert_close(run_op("infopt.FusedGemm", [a, b, c], attrs, isa=isa), ref)


def test_gemm_errors():
    from infopt import _C

    with pytest.raises(ValueError, match="Gemm.*transA|transA.*Gemm|attribute 'foo'"):
        run_op("Gemm", [np.ones((2, 2), np.float32)] * 2, {"foo": 1})
    with pytest.raises(ValueError, match="activation"):
        run_op("infopt.FusedGemm", [np.ones((2, 2), np.float32)] * 2, {"activation": "Swish"})
    with pytest.raises(ValueError, match=r"MatMul.*f32\[2,3\].*f32\[4,5\]"):
        run_op("MatMul", [np.ones((2, 3), np.float32), np.ones((4, 5), np.float32)])
    with pytest.raises(ValueError, match="float32"):
        run_op("MatMul", [np.ones((2, 3), np.float64), np.ones((3, 5), np.float64)])
    assert len(_C.gemm_variants()) >= 1


# Constant B is packed once at prepare(); M <= 4 takes the small-M micro-kernel.
@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 33])
@pytest.mark.parametrize("k", [1, 9, 300])
@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_prepacked_b(isa, rng, m, n, k, trans_b):
    a = randn(rng, m, k)
    b = randn(rng, n, k) if trans_b else randn(rng, k, n)
    c = randn(rng, n)
    ref = a.astype(np.float64) @ (b.T if trans_b else b).astype(np.float64) + c
    for threads in (1, 2):
        y = run_op("Gemm", [a, b, c], {"transB": trans_b}, isa=isa, const=(1, 2), threads=threads)
        assert_close(y, ref, rtol=1e-4, atol=1e-4)


# One row (a batch-1 fully connected layer) takes the row kernel over four 16-wide panels at
# a time where it has one (AVX2), the leftover panels the ordinary path; K > 256 accumulates
# across K blocks, and the epilogue (bias, activation) is applied after the row kernel.
@pytest.mark.parametrize("n", [64, 65, 127, 200, 1000])
@pytest.mark.parametrize("k", [1, 9, 300, 600])
@pytest.mark.parametrize("act", ["", "Relu", "Gelu"])
def test_one_row_gemm_over_many_panels(isa, rng, n, k, act):
    a, b, c = randn(rng, 1, k), randn(rng, n, k), randn(rng, n)
    ref = ACTS[act](a.astype(np.float64) @ b.T.astype(np.float64) + c)
    for const, threads in (((1, 2), 1), ((1, 2), 2), ((), 2)):
        y = run_op(
            "infopt.FusedGemm",
            [a, b, c],
            {"transB": 1, "activation": act},
            isa=isa,
            const=const,
            threads=threads,
        )
        assert_close(y, ref, rtol=rtol_for(k), atol=1e-4)


@pytest.mark.parametrize(
    "shape_a,shape_b", [((3, 2, 9), (9, 17)), ((1, 300), (300, 33)), ((2, 1, 5, 16), (1, 16, 8))]
)
def test_matmul_prepacked_b(isa, rng, shape_a, shape_b):
    a, b = randn(rng, *shape_a), randn(rng, *shape_b)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    assert_close(
        run_op("MatMul", [a, b], isa=isa, const=(1,), threads=2), ref, rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("act", ["", "Gelu", "GeluTanh", "Relu"])
@pytest.mark.parametrize("shape_a,n", [((2, 7, 31), 17), ((1, 33), 16), ((3, 1, 5, 9), 1)])
def test_fused_matmul(isa, rng, act, shape_a, n):
    a, b, c = randn(rng, *shape_a), randn(rng, shape_a[-1], n), randn(rng, n)
    ref = ACTS[act](a.astype(np.float64) @ b + c)
    for const in ((), (1,)):
        y = run_op(
            "infopt.FusedMatMul", [a, b, c], {"activation": act}, isa=isa, const=const, threads=2
        )
        assert_close(y, ref, rtol=1e-4, atol=1e-5)
    assert_close(
        run_op("infopt.FusedMatMul", [a, b], isa=isa),
        a.astype(np.float64) @ b,
        rtol=1e-4,
        atol=1e-5,
    )
