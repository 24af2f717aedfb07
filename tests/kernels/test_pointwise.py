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


def test_integer_inputs_are_exact_beyond_fp32():
    """int64 operands load as int64: equality, add and where stay exact above 2**24 (dtype
    int64/bool, atol 0, rtol 0)."""
    import torch

    rng = np.random.default_rng(11)
    a = rng.integers(-(2**40), 2**40, (3, 7))
    b = a.copy()
    b[rng.random((3, 7)) < 0.5] += 1  # differs in the last unit, invisible in fp32
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    eq = pointwise([("equal", 0, 1)], [ta, tb], out_dtype=torch.bool)
    np.testing.assert_array_equal(eq.numpy(), a == b)
    ne = pointwise([("not_equal", 0, 1)], [ta, tb], out_dtype=torch.bool)
    np.testing.assert_array_equal(ne.numpy(), a != b)
    total = pointwise([("add", 0, 1), ("sub", 2, 0)], [ta, tb], out_dtype=torch.int64)
    np.testing.assert_array_equal(total.numpy(), b)
    cond = torch.from_numpy(rng.random((3, 1)) < 0.5)
    picked = pointwise([("where", 0, 1, 2)], [cond, ta, tb], out_dtype=torch.int64)
    np.testing.assert_array_equal(picked.numpy(), np.where(cond.numpy(), a, b))


def test_bool_mask_math():
    """The BERT mask chain: int mask -> bool, compare positions, and, where -> float."""
    import torch

    rng = np.random.default_rng(12)
    attn = rng.integers(0, 3, (2, 1, 1, 9))  # nonzero 2 must also count as True
    pos = np.arange(9).reshape(1, 1, 9, 1)
    expr = [("not_equal", 0, 0.0), ("greater_equal", 1, 2), ("mul", 3, 4),
            ("where", 5, 3, 4)]  # fmt: skip
    ins = [torch.from_numpy(attn), torch.from_numpy(pos), torch.tensor(2)]
    keep = (attn != 0) & (pos >= 2)
    y = pointwise(expr[:3], ins, out_dtype=torch.bool)
    np.testing.assert_array_equal(y.numpy(), keep)
    low = np.float32(np.finfo(np.float32).min)
    lit = [("not_equal", 0, 0.0), ("greater_equal", 1, 2), ("mul", 3, 4),
           ("where", 5, 0.0, float(low))]  # fmt: skip
    f = pointwise(lit, ins, out_dtype=torch.float32)
    np.testing.assert_array_equal(f.numpy(), np.where(keep, 0.0, low).astype(np.float32))
    # Cast float -> int truncates toward zero; float -> bool is != 0 (also for 0.3 and -0.0)
    x = np.array([[-2.7, -0.0, 0.3, 2.9, 5.0]], np.float32)
    tx = torch.from_numpy(x)
    np.testing.assert_array_equal(
        pointwise([("to_int", 0)], [tx], out_dtype=torch.int64).numpy(), np.trunc(x)
    )
    np.testing.assert_array_equal(
        pointwise([("identity", 0)], [tx], out_dtype=torch.bool).numpy(), x != 0
    )
