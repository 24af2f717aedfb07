"""Kernel tests run Triton's interpreter on torch CPU tensors.

``TRITON_INTERPRET=1`` must be set before triton is first imported, so it is set here at import
time; the whole directory skips when torch or triton is missing.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

torch = pytest.importorskip("torch")
pytest.importorskip("triton")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("INFOPT_SLOW", "0") not in ("", "0"):
        return
    skip = pytest.mark.skip(reason="slow sweep: set INFOPT_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: large sweep, runs only with INFOPT_SLOW=1")


def _fast_interpreter() -> None:
    """The interpreter checks every int32 add/mul for overflow, which costs more than the
    arithmetic; the GPU build does not check (outside debug mode), so the tests skip it too."""
    try:
        import dataclasses

        from triton.runtime import interpreter

        builder = interpreter.interpreter_builder
        builder.options = dataclasses.replace(builder.options, sanitize_overflow=False)
    except Exception:  # an interpreter without the option: run it as it is
        pass


_fast_interpreter()
