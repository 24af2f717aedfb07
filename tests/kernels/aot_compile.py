"""Compile one kernel module's kernels ahead of time for sm_90 and sm_80 (run as a script).

``python aot_compile.py gemm`` prints one JSON object: ``{"count": n, "sm_90": [failures],
"sm_80": [failures], "seconds": s}``. It runs in its own process because the kernel tests turn
on Triton's interpreter, under which ``@triton.jit`` functions cannot be compiled.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time

os.environ.pop("TRITON_INTERPRET", None)
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402


def compile_spec(kernel, signature, constexprs, options, target) -> None:
    sig = dict(signature)
    for name in constexprs:
        sig[name] = "constexpr"
    missing = [a for a in kernel.arg_names if a not in sig]
    if missing:
        raise ValueError(f"no type for {missing}")
    src = ASTSource(kernel, {a: sig[a] for a in kernel.arg_names}, constexprs=constexprs)
    compiled = triton.compile(src, target=target, options=options)
    if not compiled.asm.get("cubin"):
        raise RuntimeError("no cubin produced")


_TILE_NAMES = {"BLOCK", "BLOCK_M", "BLOCK_N", "BLOCK_K", "GROUP_M", "BLOCK_P", "BLOCK_C",
               "BLOCK_R", "BLOCK_B"}  # fmt: skip


def _tile_key(kernel, constexprs: dict, options: dict) -> tuple:
    tiles = {k: v for k, v in constexprs.items() if k in _TILE_NAMES}
    return (kernel.__name__, *sorted(tiles.items()), *sorted(options.items()))


def _variant_key(kernel, signature: dict, constexprs: dict) -> tuple:
    flags = {k: v for k, v in constexprs.items() if k not in _TILE_NAMES}
    return (kernel.__name__, tuple(sorted(signature.items())), tuple(sorted(flags.items())))


def cover(specs: list) -> list:
    """Every tile config (each autotune config) once, paired with the dtype/flag variant used
    least so far, then any variant still missing: each config and each variant compiles at
    least once (INFOPT_SLOW=1 compiles the full cross product)."""
    by_tile: dict = {}
    for spec in specs:
        by_tile.setdefault(_tile_key(spec[0], spec[2], spec[3]), []).append(spec)
    used: dict = {}
    chosen = []
    for group in by_tile.values():
        spec = min(group, key=lambda s: used.get(_variant_key(s[0], s[1], s[2]), 0))
        key = _variant_key(spec[0], spec[1], spec[2])
        used[key] = used.get(key, 0) + 1
        chosen.append(spec)
    for spec in specs:
        key = _variant_key(spec[0], spec[1], spec[2])
        if key not in used:
            used[key] = 1
            chosen.append(spec)
    return chosen


def main(name: str) -> dict:
    start = time.perf_counter()
    module = importlib.import_module(f"infopt.kernels.{name}")
    specs = module._aot_specs()
    if os.environ.get("INFOPT_SLOW", "0") in ("", "0"):
        specs = cover(specs)
    result: dict = {"count": len(specs)}
    for arch in (90, 80):
        failures = []
        for kernel, signature, constexprs, options in specs:
            try:
                compile_spec(kernel, signature, constexprs, options, GPUTarget("cuda", arch, 32))
            except Exception as exc:
                text = str(exc).strip()
                first = text.splitlines()[-1] if text else type(exc).__name__
                failures.append(f"{kernel.__name__} {constexprs} {options}: {first[:300]}")
        result[f"sm_{arch}"] = failures
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
