"""The pointwise generator: fused chains vs float64 numpy, broadcasting, strided and
channels-last inputs, dims that collapse and dims that do not."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_helpers import check, randn, to_torch

import infopt.kernels._launch as launch
from infopt.kernels.pointwise import (
    OPS,
    contiguous,
    generate_source,
    get_kernel,
    pointwise,
    pointwise_reference,
)

CHAINS = [
    ([("add", 0, 1), ("relu", 2)], 2),
    ([("sub", 0, 1), ("mul", 3, 2), ("add", 4, 0), ("gelu", 5), ("tanh", 6)], 3),
    ([("mul", 0, 0.5), ("erf", 1), ("add", 2, 1.0), ("mul", 0, 3)], 1),
    ([("sigmoid", 0), ("silu", 1), ("exp", 2), ("log", 3), ("sqrt", 4), ("rsqrt", 5)], 1),
    ([("clip", 0, -0.5, 0.5), ("leaky_relu", 1, 0.1), ("hard_sigmoid", 2, 0.2, 0.5)], 1),
    ([("greater", 0, 1), ("where", 2, 0, 1), ("pow_int", 3, 3.0), ("max", 4, 1), ("min", 5, 0)], 2),
    ([("abs", 0), ("neg", 1), ("reciprocal", 2), ("div", 0, 3), ("gelu_tanh", 4)], 1),
    ([("floor", 0), ("ceil", 0), ("sub", 1, 2), ("square", 3), ("not", 4), ("identity", 5)], 1),
]
SHAPES = [
    [(1,), (1,), (1,)],
    [(7, 33), (33,), (7, 1)],
    [(2, 5, 7, 9), (5, 1, 9), (1,)],
    [(3, 1, 4), (1, 6, 1), (3, 6, 4)],
]


@pytest.mark.parametrize("seed,chain", list(enumerate(CHAINS)))
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: "x".join(map(str, s[0])))
def test_chain(seed, chain, shapes):
    expr, n = chain
    rng = np.random.default_rng(seed)
    xs = [randn(rng, *s) for s in shapes[:n]]
    if seed == 3:  # log/sqrt domains
        xs = [np.abs(x) + 0.1 for x in xs]
    y = pointwise(expr, [to_torch(x) for x in xs])
    check(y, pointwise_reference(expr, xs), "fp32", seed, f"chain {expr}", tol=(1e-5, 1e-5))


def test_layouts_and_half_output(monkeypatch):
    import torch

    monkeypatch.setattr(launch, "INTERPRET_ELEMENTWISE_CAP", 64)  # many programs
    rng = np.random.default_rng(1)
    x, s = randn(rng, 2, 6, 5, 7), randn(rng, 6, 1, 1)
    xt = to_torch(x).contiguous(memory_format=torch.channels_last)
    expr = [("mul", 0, 1), ("relu", 2)]
    y = pointwise(expr, [xt, to_torch(s)], out_dtype=torch.float16)
    assert y.is_contiguous(memory_format=torch.channels_last) and y.dtype == torch.float16
    check(y, pointwise_reference(expr, [x, s]), "fp16", 1, "channels-last")
    t = to_torch(x).permute(3, 1, 0, 2)
    assert torch.equal(contiguous(t), t.contiguous())


def test_writes_into_a_strided_view():
    import torch

    rng = np.random.default_rng(2)
    a = randn(rng, 3, 4)
    out = torch.zeros(3, 10)
    pointwise([("neg", 0)], [to_torch(a)], out=out[:, 3:7])
    assert torch.equal(out[:, 3:7], -to_torch(a)) and not out[:, :3].any() and not out[:, 7:].any()


def test_generated_source_is_one_kernel():
    src = generate_source([("add", 0, 1), ("relu", 2)], 2, 3, "_k")
    assert src.count("@triton.jit") == 1 and src.count("tl.store") == 1
    assert get_kernel([("add", 0, 1)], 2, 1) is get_kernel([("add", 0, 1)], 2, 1)
    assert set(OPS) >= {"add", "gelu", "where", "clip"}


def test_bad_expressions_are_one_line_errors():
    import torch

    x = torch.ones(2)
    with pytest.raises(ValueError, match=r"^pointwise: unknown op 'frobnicate' in step 0"):
        pointwise([("frobnicate", 0)], [x])
    with pytest.raises(ValueError, match=r"^pointwise: step 0 reads slot 3, not yet defined$"):
        pointwise([("add", 0, 3)], [x])
    with pytest.raises(
        ValueError, match=r"^pointwise: input shapes \[\[2\], \[3\]\] do not broadcast$"
    ):
        pointwise([("add", 0, 1)], [x, torch.ones(3)])
