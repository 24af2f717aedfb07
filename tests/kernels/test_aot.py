"""Every kernel, in every autotune config, compiles ahead of time for sm_90 and sm_80.

No GPU is needed: ``triton.compile`` runs the whole NVIDIA pipeline (TTIR -> TTGIR -> LLVM ->
PTX -> cubin with the bundled ptxas) for a ``GPUTarget``. Compilation happens in a subprocess
(``aot_compile.py``) because this directory runs Triton's interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

MODULES = [
    "gemm", "conv", "attention", "norm", "softmax", "pointwise", "pool", "reduce", "gather",
]  # fmt: skip
_SCRIPT = Path(__file__).with_name("aot_compile.py")


@pytest.mark.parametrize("name", MODULES)
def test_aot_compiles_for_sm90_and_sm80(name):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run(
        [sys.executable, str(_SCRIPT), name], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, f"aot_compile.py {name} failed:\n{proc.stderr[-3000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{name}: {result['count']} kernels x 2 targets in {result['seconds']} s")
    assert result["count"] > 0
    for target in ("sm_90", "sm_80"):
        failures = result[target]
        assert not failures, (
            f"{len(failures)}/{result['count']} failed for {target}:\n" + "\n".join(failures)
        )
