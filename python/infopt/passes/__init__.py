"""Graph passes, the pass manager and the optimization pipelines."""

from __future__ import annotations

from .base import Pass, PassResult
from .manager import PassError, PassManager, PassRecord
from .pipelines import pipeline
from .registry import PASSES, create

__all__ = [
    "PASSES",
    "Pass",
    "PassError",
    "PassManager",
    "PassRecord",
    "PassResult",
    "create",
    "pipeline",
]
