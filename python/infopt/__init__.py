"""infopt: a compiler-style optimizer and runtime for ONNX models."""

from __future__ import annotations

__version__ = "0.1.0"

from pathlib import Path as _Path

# Triton kernels live in the top-level kernels/ folder and are installed as infopt.kernels; in a
# source checkout (python/ on sys.path) make infopt.kernels resolve to that folder too.
_source_kernels = _Path(__file__).resolve().parents[2] / "kernels"
if not (_Path(__file__).parent / "kernels").exists() and (_source_kernels / "__init__.py").exists():
    __path__.append(str(_source_kernels.parent))

from . import ir  # noqa: E402
from .errors import InfoptError, InputError, ModelError, UnsupportedOpError  # noqa: E402
from .ir import load, save  # noqa: E402

__all__ = [
    "InferenceSession",
    "InfoptError",
    "InputError",
    "ModelError",
    "SessionOptions",
    "UnsupportedOpError",
    "__version__",
    "compile",
    "ir",
    "load",
    "save",
]


def __getattr__(name: str):
    # lazy: importing infopt for the IR alone must not load the native runtime
    if name in ("InferenceSession", "SessionOptions"):
        from .runtime import session

        return getattr(session, name)
    if name == "compile":
        from .compiler import compile

        return compile
    raise AttributeError(f"module 'infopt' has no attribute {name!r}")
