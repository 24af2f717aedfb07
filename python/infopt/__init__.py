"""infopt: a compiler-style optimizer and runtime for ONNX models."""

from __future__ import annotations

__version__ = "0.1.0"

from . import ir
from .errors import InfoptError, InputError, ModelError, UnsupportedOpError
from .ir import load, save

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
