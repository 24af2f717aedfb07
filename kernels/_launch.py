"""Block sizes, grids and backend switches shared by every kernel family.

Kernel modules take their tile sizes from here (or from autotune configs at the top of their
file), so the choice between the GPU and Triton's CPU interpreter lives in one place: the
interpreter runs every program instance in numpy, so it wants few, large tiles.
"""

from __future__ import annotations

import os

import triton

ACT_CODES = {
    None: 0,
    "": 0,
    "Relu": 1,
    "Gelu": 2,
    "GeluTanh": 3,
    "Sigmoid": 4,
    "Tanh": 5,
    "LeakyRelu": 6,
    "HardSigmoid": 7,
    "Silu": 8,
    "Clip": 9,
}
"""Epilogue activation name -> the ``ACT`` constexpr of the GEMM and convolution kernels."""

DOT_MODES = {"ieee": 0, "tf32": 1, "bf16": 2, "fp16": 3}
"""How ``tl.dot`` multiplies: fp32 exactly (ieee), fp32 as tf32, or inputs rounded to bf16/fp16
(fp32 accumulation in every mode)."""


def interpreting() -> bool:
    """True when Triton runs kernels in its numpy interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def next_pow2(n: int) -> int:
    return triton.next_power_of_2(max(int(n), 1))


# the interpreter's caps: large tiles are cheap in numpy; tests lower them to exercise the loops
INTERPRET_ROW_CAP = 1 << 16
INTERPRET_ELEMENTWISE_CAP = 1 << 16


def row_block(n: int, cap: int = 4096) -> int:
    """Tile width for row-wise kernels (norms, softmax): the whole row when it fits ``cap``."""
    return min(next_pow2(n), INTERPRET_ROW_CAP if interpreting() else cap)


def elementwise_block(numel: int) -> int:
    """Elements per program for flat elementwise kernels."""
    if interpreting():
        return min(next_pow2(numel), INTERPRET_ELEMENTWISE_CAP)
    return 1024


def row_warps(block: int) -> int:
    return 4 if block <= 2048 else 8 if block <= 8192 else 16


def act_code(name: str | None) -> int:
    if name not in ACT_CODES:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(k for k in ACT_CODES if k)}")
    return ACT_CODES[name]


def dot_code(mode: str) -> int:
    if mode not in DOT_MODES:
        raise ValueError(f"unknown dot precision {mode!r}; use one of {sorted(DOT_MODES)}")
    return DOT_MODES[mode]


def interpret_tiles(m: int, n: int, k: int) -> dict[str, int]:
    """GEMM-like tiles for the interpreter: sized to the problem (pow2 >= 16) so that a layer
    takes few programs and few K steps; every op costs Python overhead there, not FLOPs."""
    bm = min(max(next_pow2(m), 16), 128)
    bn = min(max(next_pow2(n), 16), 128)
    bk = min(max(next_pow2(k), 16), max(16, 32768 // max(bm, bn)))
    return {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk}
