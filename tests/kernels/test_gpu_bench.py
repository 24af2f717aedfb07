"""``bench/gpu.py --dry-run``: the whole GPU benchmark script at tiny sizes on the CPU (Triton's
interpreter), so the script is known to run before a GPU is lent. Checks, not timings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu.py"


def test_gpu_bench_dry_run():
    pytest.importorskip("onnxruntime")
    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run(
        [sys.executable, str(_SCRIPT), "--dry-run"],
        capture_output=True, text=True, env=env, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, (
        f"gpu.py --dry-run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    out = proc.stdout
    assert "all kernels match torch" in out
    for case in ("gemm+bias+gelu", "attention+pad mask", "layer_norm", "softmax+mask",
                 "embedding gather", "conv3x3", "maxpool", "global mean", "ResNet-50"):  # fmt: skip
        assert case in out, f"no {case} row:\n{out}"
    from infopt.testing import hf_models

    if hf_models.available():
        assert "MiniLM-L6" in out, out
    assert "geomean torch/infopt time ratio: not meaningful in a dry run" in out
