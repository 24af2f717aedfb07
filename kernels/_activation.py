"""The epilogue activations shared by the GEMM and convolution kernels, and their references.

``ACT`` codes come from ``_launch.ACT_CODES``; ``p0``/``p1`` are the activation's parameters
(LeakyRelu alpha; HardSigmoid alpha, beta; Clip min, max).
"""

from __future__ import annotations

import math

import numpy as np
import triton
import triton.language as tl

_SQRT_2_OVER_PI = 0.7978845608028654


@triton.jit
def _tanh(x):
    # 2*sigmoid(2x) - 1, stable for large |x| in fp32
    return 2.0 * tl.sigmoid(2.0 * x) - 1.0


@triton.jit
def apply_activation(x, p0, p1, ACT: tl.constexpr):
    """x is fp32; ACT is a compile-time code so unused branches vanish."""
    if ACT == 1:
        x = tl.maximum(x, 0.0)
    elif ACT == 2:
        x = 0.5 * x * (1.0 + tl.erf(x * 0.7071067811865476))
    elif ACT == 3:
        x = 0.5 * x * (1.0 + _tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    elif ACT == 4:
        x = tl.sigmoid(x)
    elif ACT == 5:
        x = _tanh(x)
    elif ACT == 6:
        x = tl.where(x >= 0.0, x, x * p0)
    elif ACT == 7:
        x = tl.minimum(tl.maximum(x * p0 + p1, 0.0), 1.0)
    elif ACT == 8:
        x = x * tl.sigmoid(x)
    elif ACT == 9:
        x = tl.minimum(tl.maximum(x, p0), p1)
    return x


@triton.jit
def half_dot(a, b, acc, DOT: tl.constexpr, EMULATE: tl.constexpr):
    """acc + a @ b with a, b rounded to bf16 (DOT == 2) or fp16 (DOT == 3). EMULATE rounds and
    multiplies in fp32 (the same products, exactly): Triton's interpreter mis-multiplies bf16."""
    if DOT == 2:
        a = a.to(tl.bfloat16)
        b = b.to(tl.bfloat16)
    else:
        a = a.to(tl.float16)
        b = b.to(tl.float16)
    if EMULATE:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    return tl.dot(a, b, acc)


def activation_reference(x: np.ndarray, act: str | None, p0: float = 0.0, p1: float = 0.0):
    """float64 numpy form of ``apply_activation``."""
    x = np.asarray(x, dtype=np.float64)
    if not act:
        return x
    if act == "Relu":
        return np.maximum(x, 0.0)
    if act == "Gelu":
        erf = np.vectorize(math.erf, otypes=[np.float64])
        return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    if act == "GeluTanh":
        return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3)))
    if act == "Sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if act == "Tanh":
        return np.tanh(x)
    if act == "LeakyRelu":
        return np.where(x >= 0, x, x * p0)
    if act == "HardSigmoid":
        return np.clip(x * p0 + p1, 0.0, 1.0)
    if act == "Silu":
        return x / (1.0 + np.exp(-x))
    if act == "Clip":
        return np.clip(x, p0, p1)
    raise ValueError(f"unknown activation {act!r}")


def default_params(act: str | None) -> tuple[float, float]:
    """ONNX defaults of the activation's parameters."""
    return {"LeakyRelu": (0.01, 0.0), "HardSigmoid": (0.2, 0.5), "Clip": (-3.4e38, 3.4e38)}.get(
        act or "", (0.0, 0.0)
    )
