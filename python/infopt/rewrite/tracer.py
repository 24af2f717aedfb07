""" "Why didn't it fire?": per rule, every attempt's outcome and the best partial match.

A RuleSet given a Tracer records, for each rule and each node whose op type matches the rule's
root, how far the match got (pattern nodes matched) and the reason it stopped. ``why(rule,
node)`` answers for one node; ``best(rule)`` gives the deepest failed attempt, usually the one a
researcher meant; ``report()`` prints one line per rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Attempt:
    rule: str
    node: str  # the root candidate's name (or its first output's name)
    depth: int  # pattern nodes matched before failing (the full count when applied)
    reason: str  # "" when the rule applied

    def __str__(self) -> str:
        status = "applied" if not self.reason else f"failed after {self.depth} node(s): "
        return f"{self.rule} at {self.node}: {status}{self.reason}"


@dataclass
class RuleCounts:
    attempted: int = 0
    applied: int = 0
    failed: int = 0
    best: Attempt | None = None
    by_node: dict[str, Attempt] = field(default_factory=dict)


class Tracer:
    def __init__(self, keep_per_node: bool = True) -> None:
        self.rules: dict[str, RuleCounts] = {}
        self.keep_per_node = keep_per_node

    def record(self, attempt: Attempt) -> None:
        counts = self.rules.setdefault(attempt.rule, RuleCounts())
        counts.attempted += 1
        if attempt.reason:
            counts.failed += 1
            if counts.best is None or attempt.depth > counts.best.depth:
                counts.best = attempt
        else:
            counts.applied += 1
        if self.keep_per_node:
            previous = counts.by_node.get(attempt.node)
            # keep the deepest attempt at a node (several variants try the same root)
            if (
                previous is None
                or not attempt.reason
                or (previous.reason and attempt.depth >= previous.depth)
            ):
                counts.by_node[attempt.node] = attempt

    def why(self, rule: str, node: str) -> str:
        """Why ``rule`` did (not) fire at the node named ``node`` (or whose output is named so)."""
        counts = self.rules.get(rule)
        if counts is None:
            return f"{rule} was never attempted (no node has its root op type)"
        attempt = counts.by_node.get(node)
        if attempt is None:
            return f"{rule} was not attempted at {node} (its op type is not the pattern's root)"
        return str(attempt)

    def best(self, rule: str) -> Attempt | None:
        counts = self.rules.get(rule)
        return counts.best if counts else None

    def report(self) -> str:
        lines = []
        for name, c in self.rules.items():
            line = f"{name}: attempted={c.attempted} applied={c.applied} failed={c.failed}"
            if c.best is not None:
                line += f"; best failure: {c.best}"
            lines.append(line)
        return "\n".join(lines)
