"""Program.prepare(release_packed_constants=True): every kernel that claims it reads a weight
only from its packed copy must keep computing the right thing once the original is freed, for
every ISA and for input shapes planned after the release. float64 references, RTOL/ATOL of
cpu_helpers (float32 sums over at most a few hundred terms)."""

from __future__ import annotations

import numpy as np
import pytest
from cpu_helpers import assert_close, randn, ref_conv

from infopt import _C


def _program(op, attrs, weight, isa, extra_const=None, threads=2):
    """y = op(x, weight[, extra_const]) with the weight (and extra) constants."""
    p = _C.Program(threads, isa)
    x, w, y = p.add_value("x"), p.add_value("w"), p.add_value("y")
    p.set_constant(w, weight)
    inputs = [x, w]
    if extra_const is not None:
        c = p.add_value("c")
        p.set_constant(c, extra_const)
        inputs.append(c)
    p.add_native_step(op, inputs, [y], attrs)
    p.set_io([x], [y])
    return p


CASES = {
    # name: (op, attrs, weight shape, x shape for batch n, reference)
    "gemm_transB": (
        "Gemm",
        {"transB": 1, "alpha": 0.7},
        (19, 33),
        lambda n: (n, 33),
        lambda x, w, c: 0.7 * x @ w.T + c,
    ),
    "fused_gemm_relu": (
        "infopt.FusedGemm",
        {"activation": "Relu"},
        (33, 19),
        lambda n: (n, 33),
        lambda x, w, c: np.maximum(x @ w + c, 0),
    ),
    "matmul_batched": (
        "MatMul",
        {},
        (33, 17),
        lambda n: (n, 3, 33),
        lambda x, w, c: x @ w,
    ),
    "fused_matmul": (
        "infopt.FusedMatMul",
        {},
        (33, 17),
        lambda n: (n, 5, 33),
        lambda x, w, c: x @ w + c,
    ),
    "conv_grouped": (
        "Conv",
        {"group": 2, "pads": [1, 1, 1, 1], "kernel_shape": [3, 3]},
        (6, 3, 3, 3),
        lambda n: (n, 6, 9, 7),
        lambda x, w, c: ref_conv(x, w, c, pads=[1, 1, 1, 1], group=2),
    ),
    "fused_conv_pointwise": (
        "infopt.FusedConv",
        {"activation": "Relu"},
        (8, 5, 1, 1),
        lambda n: (n, 5, 6, 6),
        lambda x, w, c: np.maximum(ref_conv(x, w, c), 0),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_packed_weight_is_released_and_results_stay_right(case, isa, rng):
    op, attrs, wshape, xshape, ref = CASES[case]
    w = randn(rng, *wshape)
    out_channels = wshape[0] if "Conv" in op or attrs.get("transB") else wshape[1]
    c = randn(rng, out_channels)  # bias (MatMul takes none)
    p = _program(op, attrs, w, isa, None if op == "MatMul" else c)
    assert p.prepare(release_packed_constants=True) == w.nbytes
    assert p.released_constants() == ["w"]
    for n in (1, 3, 2):  # plans for new batch sizes after the release
        x = randn(rng, *xshape(n))
        (y,) = p.run([x])
        assert_close(y, ref(x.astype(np.float64), w.astype(np.float64), c.astype(np.float64)))


def test_depthwise_conv_reads_its_weight_directly_so_it_is_kept(isa, rng):
    w, b = randn(rng, 4, 1, 3, 3), randn(rng, 4)
    attrs = {"group": 4, "pads": [1, 1, 1, 1]}
    p = _program("Conv", attrs, w, isa, b)
    assert p.prepare(release_packed_constants=True) == 0
    x = randn(rng, 2, 4, 6, 5)
    (y,) = p.run([x])
    assert_close(y, ref_conv(x, w, b, pads=[1, 1, 1, 1], group=4))
