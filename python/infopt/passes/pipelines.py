"""Optimization levels as plain lists of pass names.

-O1 cleans up: types, constant folding (shape chains of dynamic exporters included), no-op and
pair removal, duplicate constants and subexpressions, dead code. -O2 adds the fusions (norms,
GELU, attention, BatchNorm, Pad, and the Conv/Gemm/MatMul epilogues), ordered so that each
feeds the next: BatchNorm folds into Conv before Conv takes its activation, GELU becomes one op
before MatMul takes it as its epilogue.
"""

from __future__ import annotations

CLEANUP = [
    "fold_constants",
    "resolve_dynamic_shapes",
    "remove_identity",
    "simplify_shape_ops",
    "merge_initializers",
    "eliminate_common_subexpressions",
    "fold_constants",
    "eliminate_dead_code",
]
O1 = ["infer_shapes", "freeze_initializer_inputs", *CLEANUP]
O2 = [
    *O1,
    "infer_shapes",
    "fuse_batchnorm",
    "fuse_pad_conv",
    "fuse_layer_norm",
    "fuse_gelu",
    "fuse_attention",
    "fold_constants",
    "infer_shapes",
    "fuse_gemm_activation",
    "fuse_conv_activation",
    "eliminate_dead_code",
]
O3 = O2

PIPELINES: dict[int, list[str]] = {0: [], 1: O1, 2: O2, 3: O3}


def pipeline(level: int) -> list[str]:
    if level not in PIPELINES:
        from ..errors import InputError

        raise InputError(f"unknown optimization level -O{level}; use 0 to 3")
    return list(PIPELINES[level])
