"""The pattern-rewrite API: declare a pattern, a check and a replacement; see docs/rewrite.md."""

from __future__ import annotations

from .pattern import Const, OpBuilder, Pattern, Var, trace, variants
from .rule import Builder, Match, Rule, RuleSet
from .tracer import Attempt, Tracer

__all__ = [
    "Attempt",
    "Builder",
    "Const",
    "Match",
    "OpBuilder",
    "Pattern",
    "Rule",
    "RuleSet",
    "Tracer",
    "Var",
    "trace",
    "variants",
]
