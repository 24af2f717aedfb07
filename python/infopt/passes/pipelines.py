"""Optimization levels as plain lists of pass names."""

from __future__ import annotations

O1 = [
    "infer_shapes",
    "freeze_initializer_inputs",
    "fold_constants",
    "remove_identity",
    "eliminate_dead_code",
]
O2 = [*O1, "infer_shapes", "fuse_conv_activation", "eliminate_dead_code"]
O3 = O2

PIPELINES: dict[int, list[str]] = {0: [], 1: O1, 2: O2, 3: O3}


def pipeline(level: int) -> list[str]:
    if level not in PIPELINES:
        from ..errors import InputError

        raise InputError(f"unknown optimization level -O{level}; use 0 to 3")
    return list(PIPELINES[level])
