"""Source patterns: a small graph of op nodes over pattern variables, written as Python calls.

    def pattern(op, x, w):
        return op.Relu(op.Conv(x, w, _optional=1))

A pattern function receives an ``OpBuilder`` (``op``) and one ``Var`` per extra parameter; each
``op.<Type>(...)`` call records a ``PNode`` and returns its output(s). Inputs may be Vars,
outputs of other PNodes, ``op.const(...)`` (a constant input, optionally with a required value)
or ``None`` (the input must be absent). Keyword arguments:

* ``_domain``: the node's domain (default ``""``); ``_alts``: other op types that also match;
* ``_optional=k``: the last ``k`` inputs may be absent (the matched Var is then ``None``); a
  tuple of indices instead names inputs that may be empty (``""``) in place;
* ``_extra=True``: the node may have more inputs than the pattern lists (ignored, not bound);
* ``_outputs=n``: the node's output count (returns a tuple when n > 1);
* ``_name``: the key under which the matched node is found in ``Match.nodes``;
* any other keyword: an attribute constraint, a value (equality, after defaults given as
  ``(value, default)`` tuples) or a callable ``attr_value -> bool``.

Commutative ops (Add, Mul, Sum of two, Max, Min, Equal, And, Or) are matched in both input
orders: ``variants`` expands a pattern into every ordering, so matching itself stays a
deterministic walk backwards from the root along producer links.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

COMMUTATIVE = {"Add", "Mul", "Sum", "Max", "Min", "Equal", "And", "Or"}


class PValue:
    """A value in a pattern."""


@dataclass(eq=False)
class Var(PValue):
    """Matches any value (the same Var twice must match the same value)."""

    name: str
    check: Callable[[Any], bool] | None = None

    def __repr__(self) -> str:
        return f"%{self.name}"


@dataclass(eq=False)
class Const(PValue):
    """Matches a constant value; ``value`` (scalar or array) must be all-close when given."""

    name: str
    value: Any = None
    rtol: float = 1e-6

    def __repr__(self) -> str:
        return f"const %{self.name}" if self.value is None else f"const {self.value}"

    def accepts(self, array: np.ndarray) -> bool:
        if self.value is None:
            return True
        want = np.asarray(self.value, dtype=np.float64)
        got = np.asarray(array, dtype=np.float64)
        if got.size != 1 and got.shape != want.shape:
            return False
        return bool(np.allclose(got, want, rtol=self.rtol, atol=0.0))


@dataclass(eq=False)
class NodeOut(PValue):
    node: PNode
    index: int

    def __repr__(self) -> str:
        return f"%{self.node.name}:{self.index}"


@dataclass(eq=False)
class PNode:
    op_type: str
    inputs: list[PValue | None]
    domain: str = ""
    alts: tuple[str, ...] = ()
    optional: int | tuple[int, ...] = 0
    extra: bool = False
    n_outputs: int = 1
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    @property
    def op_types(self) -> tuple[str, ...]:
        return (self.op_type, *self.alts)

    def __repr__(self) -> str:
        return f"{self.name}={'|'.join(self.op_types)}({', '.join(map(repr, self.inputs))})"


class OpBuilder:
    """``op.Conv(x, w)`` records a PNode; ``op.const()`` makes a Const; ``op.var()`` a Var."""

    def __init__(self) -> None:
        self.nodes: list[PNode] = []
        self._count = itertools.count()

    def const(self, value: Any = None, name: str = "", rtol: float = 1e-6) -> Const:
        return Const(name or f"c{next(self._count)}", value, rtol)

    def var(self, name: str, check: Callable[[Any], bool] | None = None) -> Var:
        return Var(name, check)

    def __getattr__(self, op_type: str) -> Callable[..., Any]:
        if op_type.startswith("_"):
            raise AttributeError(op_type)

        def make(*inputs: PValue | None, **kwargs: Any):
            special = {k: kwargs.pop(k) for k in list(kwargs) if k.startswith("_")}
            node = PNode(
                op_type,
                list(inputs),
                domain=special.get("_domain", ""),
                alts=tuple(special.get("_alts", ())),
                optional=special.get("_optional", 0),
                extra=special.get("_extra", False),
                n_outputs=special.get("_outputs", 1),
                attrs=kwargs,
                name=special.get("_name", "") or f"{op_type.lower()}{len(self.nodes)}",
            )
            self.nodes.append(node)
            outs = tuple(NodeOut(node, i) for i in range(node.n_outputs))
            return outs[0] if len(outs) == 1 else outs

        return make


@dataclass
class Pattern:
    """A traced pattern: its nodes (topological), its root node and its Vars by name."""

    nodes: list[PNode]
    root: PNode
    vars: dict[str, Var]
    source: str = ""

    def __repr__(self) -> str:
        return "; ".join(map(repr, self.nodes))


def trace(fn: Callable[..., Any]) -> Pattern:
    """Build a Pattern by calling ``fn(op, *vars)`` (Vars named after the parameters)."""
    op = OpBuilder()
    params = [
        name
        for name, p in list(inspect.signature(fn).parameters.items())[1:]
        if p.default is inspect.Parameter.empty  # defaulted parameters carry closure values
    ]
    variables = {p: Var(p) for p in params}
    out = fn(op, *variables.values())
    if isinstance(out, tuple):
        out = out[0]
    if not isinstance(out, NodeOut):
        raise TypeError(f"pattern {fn.__name__} must return an op output")
    live = _reachable(out.node)
    nodes = [n for n in op.nodes if id(n) in live]
    return Pattern(nodes, out.node, variables, getattr(fn, "__name__", ""))


def _reachable(root: PNode) -> set[int]:
    seen: set[int] = set()
    stack = [root]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.extend(v.node for v in n.inputs if isinstance(v, NodeOut))
    return seen


def variants(pattern: Pattern) -> list[Pattern]:
    """The pattern in every input order of its two-input commutative nodes (deduplicated by
    structure), the original first."""
    swappable = [
        i
        for i, n in enumerate(pattern.nodes)
        if n.op_type in COMMUTATIVE
        and n.domain == ""
        and len(n.inputs) == 2
        and n.inputs[0] is not n.inputs[1]
        and not n.optional
    ]
    result: list[Pattern] = []
    seen: set[str] = set()
    for flips in itertools.product((False, True), repeat=len(swappable)):
        mapping: dict[int, PNode] = {}
        nodes = []
        for i, n in enumerate(pattern.nodes):
            inputs = [_remap(v, mapping) for v in n.inputs]
            if i in swappable and flips[swappable.index(i)]:
                inputs.reverse()
            copy = PNode(
                n.op_type,
                inputs,
                n.domain,
                n.alts,
                n.optional,
                n.extra,
                n.n_outputs,
                dict(n.attrs),
                n.name,
            )
            mapping[id(n)] = copy
            nodes.append(copy)
        candidate = Pattern(nodes, mapping[id(pattern.root)], pattern.vars, pattern.source)
        key = _signature(candidate.root, {})
        if key not in seen:
            seen.add(key)
            result.append(candidate)
    return result


def _remap(v: PValue | None, mapping: dict[int, PNode]) -> PValue | None:
    if isinstance(v, NodeOut):
        return NodeOut(mapping[id(v.node)], v.index)
    return v


def _signature(node: PNode, memo: dict[int, str]) -> str:
    """A structural key: two variants with the same key match the same subgraphs."""
    if id(node) in memo:
        return memo[id(node)]
    parts = []
    for v in node.inputs:
        if isinstance(v, NodeOut):
            parts.append(_signature(v.node, memo) + f":{v.index}")
        elif v is None:
            parts.append("_")
        else:
            parts.append(f"{type(v).__name__}{id(v)}")
    memo[id(node)] = f"{node.name}({','.join(parts)})"
    return memo[id(node)]


__all__ = ["COMMUTATIVE", "Const", "NodeOut", "OpBuilder", "PNode", "Pattern", "Var", "trace"]
