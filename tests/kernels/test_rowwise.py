"""LayerNorm / RMSNorm and Softmax vs float64 numpy, including rows longer than one tile."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_helpers import check, randn, rounded, to_torch

import infopt.kernels._launch as launch
from infopt.kernels.norm import layer_norm, layer_norm_reference
from infopt.kernels.softmax import softmax, softmax_reference


@pytest.fixture(params=[False, True], ids=["one-tile", "looped"])
def small_tiles(request, monkeypatch):
    if request.param:
        monkeypatch.setattr(launch, "INTERPRET_ROW_CAP", 32)
    return request.param


NORM_CASES = [((1, 1), -1), ((3, 77), -1), ((2, 5, 130), -1), ((4, 3, 7), 1), ((2, 768), -1)]


@pytest.mark.parametrize("seed,case", list(enumerate(NORM_CASES)))
@pytest.mark.parametrize("rms", [False, True], ids=["layernorm", "rmsnorm"])
def test_layer_norm(seed, case, rms, small_tiles):
    rng = np.random.default_rng(seed)
    shape, axis = case
    x = randn(rng, *shape, scale=3.0, shift=5.0)  # a large mean checks the two-pass variance
    n = int(np.prod(shape[axis:]))
    w, b, r = randn(rng, n), randn(rng, n), randn(rng, *shape)
    use_res = seed % 2 == 1
    y = layer_norm(to_torch(x), to_torch(w), None if rms else to_torch(b), axis=axis, eps=1e-5,
                   rms=rms, residual=to_torch(r) if use_res else None)  # fmt: skip
    ref = layer_norm_reference(x, w, None if rms else b, axis=axis, eps=1e-5, rms=rms,
                               residual=r if use_res else None)  # fmt: skip
    check(y, ref, "fp32", seed, f"norm {shape}")


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_layer_norm_half(dtype):
    rng = np.random.default_rng(3)
    x, w, b = randn(rng, 6, 96), randn(rng, 96), randn(rng, 96)
    y = layer_norm(to_torch(x, dtype), to_torch(w, dtype), to_torch(b, dtype))
    ref = layer_norm_reference(rounded(x, dtype), rounded(w, dtype), rounded(b, dtype))
    check(y, ref, dtype, 3, "norm half")


SOFTMAX_CASES = [  # (x shape, mask shape or None, axis)
    ((1, 1), None, -1),
    ((3, 77), None, -1),
    ((2, 4, 5, 33), (2, 1, 1, 33), -1),
    ((2, 3, 9, 9), (9, 9), -1),
    ((2, 3, 6, 7, 11), (1, 3, 1, 1, 11), -1),
    ((4, 6, 5), (4, 6, 5), 1),
    ((3, 64), None, 0),
]


@pytest.mark.parametrize("seed,case", list(enumerate(SOFTMAX_CASES)))
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "logsoftmax"])
def test_softmax(seed, case, log, small_tiles):
    rng = np.random.default_rng(seed)
    shape, mshape, axis = case
    x = randn(rng, *shape, scale=4.0)
    mask = (
        None if mshape is None else np.where(rng.random(mshape) < 0.3, -1e4, 0).astype(np.float32)
    )
    y = softmax(to_torch(x), None if mask is None else to_torch(mask), axis=axis, log=log)
    check(y, softmax_reference(x, mask, axis=axis, log=log), "fp32", seed, f"softmax {shape}",
          tol=(1e-5, 1e-4) if not log else (2e-4, 1e-4))  # fmt: skip


def test_softmax_half():
    rng = np.random.default_rng(5)
    x = randn(rng, 7, 300)
    check(softmax(to_torch(x, "fp16")), softmax_reference(rounded(x, "fp16")), "fp16", 5, "softmax")


def test_rowwise_errors_are_one_line():
    import torch

    with pytest.raises(ValueError, match=r"^softmax: mask \[3\] does not broadcast to x \[2, 4\]$"):
        softmax(torch.ones(2, 4), torch.ones(3))
    with pytest.raises(ValueError, match=r"^layer_norm: weight/bias must have 4 elements"):
        layer_norm(torch.ones(2, 4), torch.ones(3))
