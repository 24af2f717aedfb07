"""Rules (pattern + check + rewrite), the matcher, and RuleSet, which applies rules to a model.

A rule's ``pattern`` is a function traced by ``pattern.trace``; ``check(m)`` returns ``None``
when the match may be rewritten, or a reason string naming the value that fails; ``rewrite(m,
b)`` builds the replacement with the ``Builder`` ``b`` and returns the value(s) that take the
place of the root node's outputs.

Matching walks backwards from a candidate root along producer links, so it is deterministic per
variant (commutative orders are separate variants). A match is rejected when an intermediate
(any matched node but the root) has a user outside the match or is a graph output. After a
rewrite the new nodes stand where the root stood; the root's output values keep their names
(they become the outputs of the replacement), and matched nodes left without users are removed.
Matches never overlap: a rewritten node is gone before the next candidate is tried.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..ir import Graph, Model, Node, Tensor, Value, claim_name, from_numpy_dtype
from . import pattern as P
from .tracer import Attempt, Tracer


class Match:
    """A successful structural match: bound values, matched nodes, the graph and model."""

    def __init__(self, model: Model, graph: Graph, root: Node):
        self.model = model
        self.graph = graph
        self.root = root
        self.values: dict[str, Value | None] = {}
        self.nodes: dict[str, Node] = {}
        self.order: list[Node] = []

    def __getitem__(self, name: str) -> Value | None:
        return self.values[name]

    def node(self, name: str) -> Node:
        return self.nodes[name]

    def const(self, name: str) -> np.ndarray | None:
        """The constant array bound to ``name``, or None if it is not a constant."""
        v = self.values.get(name)
        if v is None or v.const is None or any(v is i for i in self.graph.inputs):
            return None
        return v.const.numpy()

    def opset(self) -> int:
        return self.model.opset("")


class _Fail(Exception):
    pass


class _Matcher:
    def __init__(self, pat: P.Pattern, match: Match, graph_inputs: set[int]):
        self.pat = pat
        self.m = match
        self.graph_inputs = graph_inputs
        self.bound_nodes: dict[int, Node] = {}
        self.depth = 0

    def run(self) -> None:
        self._node(self.pat.root, self.m.root)
        inside = {id(n) for n in self.m.order}
        for node in self.m.order:
            if node is self.m.root:
                continue
            for out in node.outputs:
                if self.m.graph.is_graph_output(out):
                    raise _Fail(f"intermediate %{out.name} is a graph output")
                for user, _ in out.uses:
                    if id(user) not in inside:
                        raise _Fail(
                            f"intermediate %{out.name} has a user outside the pattern "
                            f"({user.op_type} {user.name or user.outputs[0].name})"
                        )

    def _node(self, pn: P.PNode, node: Node) -> None:
        if id(pn) in self.bound_nodes:
            if self.bound_nodes[id(pn)] is not node:
                raise _Fail(f"{pn.name} must be one node but matched two")
            return
        label = _label(node)
        domain = "" if node.domain == "ai.onnx" else node.domain
        if domain != pn.domain or node.op_type not in pn.op_types:
            raise _Fail(f"{label} is {node.qualified_op}, pattern wants {'|'.join(pn.op_types)}")
        actual = list(node.inputs)
        while actual and actual[-1] is None:
            actual.pop()
        if len(actual) > len(pn.inputs) and not pn.extra:
            raise _Fail(f"{label} has {len(actual)} inputs, pattern wants {len(pn.inputs)}")
        trailing = pn.optional if isinstance(pn.optional, int) else 0
        if len(actual) < len(pn.inputs) - trailing:
            raise _Fail(f"{label} has {len(actual)} inputs, pattern wants {len(pn.inputs)}")
        if len(node.outputs) < pn.n_outputs:
            raise _Fail(f"{label} has {len(node.outputs)} outputs, pattern wants {pn.n_outputs}")
        for name, want in pn.attrs.items():
            if callable(want):
                ok = want(node.attr(name))
            elif isinstance(want, tuple) and len(want) == 2:
                ok = _same(node.attr(name, want[1]), want[0])
            else:
                ok = _same(node.attr(name), want)
            if not ok:
                raise _Fail(f"{label} attribute {name}={node.attr(name)!r} does not qualify")
        self.bound_nodes[id(pn)] = node
        self.m.nodes[pn.name] = node
        self.depth += 1
        for i, pv in enumerate(pn.inputs):
            value = actual[i] if i < len(actual) else None
            if isinstance(pn.optional, int):
                optional = i >= len(pn.inputs) - pn.optional
            else:
                optional = i in pn.optional
            self._value(pv, value, optional, f"{label} input {i}")
        self.m.order.append(node)

    def _value(self, pv: P.PValue | None, value: Value | None, optional: bool, where: str):
        if pv is None:
            if value is not None:
                raise _Fail(f"{where} %{value.name} must be absent")
            return
        if value is None:
            if optional and not isinstance(pv, P.NodeOut):
                self.m.values.setdefault(pv.name, None)
                return
            raise _Fail(f"{where} is absent")
        if isinstance(pv, P.Var):
            bound = self.m.values.get(pv.name, _MISSING)
            if bound is not _MISSING and bound is not value:
                raise _Fail(f"{where} %{value.name} is not %{bound.name if bound else None}")
            if pv.check is not None and not pv.check(value):
                raise _Fail(f"{where} %{value.name} fails the check on {pv.name}")
            self.m.values[pv.name] = value
        elif isinstance(pv, P.Const):
            if value.const is None or id(value) in self.graph_inputs:
                raise _Fail(f"{where} %{value.name} is not a constant")
            if not pv.accepts(value.const.numpy()):
                raise _Fail(f"{where} %{value.name} is not {pv.value}")
            self.m.values[pv.name] = value
        else:
            assert isinstance(pv, P.NodeOut)
            if value.producer is None or value.output_index != pv.index:
                kind = "a constant" if value.const is not None else "not produced by a node"
                raise _Fail(f"{where} %{value.name} is {kind}, pattern wants {pv.node.name}")
            self._node(pv.node, value.producer)


_MISSING = object()


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, list | tuple):
        return got is not None and list(got) == list(want)
    return got == want


def _label(node: Node) -> str:
    return node.name or (f"%{node.outputs[0].name}" if node.outputs else node.op_type)


def _key(node: Node) -> str:
    """The name the tracer files a node under: its name, else its first output's."""
    return node.name or (node.outputs[0].name if node.outputs else node.op_type)


class Builder:
    """Makes the replacement nodes; they are inserted before the matched root."""

    def __init__(self, match: Match, names: set[str]):
        self.m = match
        self.graph = match.graph
        self.model = match.model
        self.nodes: list[Node] = []
        self._names = names

    def name(self, base: str) -> str:
        return claim_name(self._names, base or "v")

    def op(
        self,
        op_type: str,
        *inputs: Value | None,
        _domain: str = "",
        _outputs: int = 1,
        _name: str = "",
        _dtype: int | None = None,
        _shape: Any = None,
        **attrs: Any,
    ) -> Any:
        outs = [Value(self.name(f"{_name or op_type.lower()}_out")) for _ in range(_outputs)]
        for v in outs:
            v.dtype, v.shape = _dtype, _shape
        node = Node(op_type, inputs, outs, domain=_domain, name=self.name(_name or op_type))
        for key, value in attrs.items():
            if value is not None:
                node.set_attr(key, value)
        if _domain == "infopt":
            from ..ops import ensure_function

            ensure_function(self.model, op_type)
        self.nodes.append(node)
        return outs[0] if _outputs == 1 else outs

    def copy_attrs(self, node: Node, source: Node, names: Sequence[str] | None = None) -> None:
        for key, a in source.attrs.items():
            if names is None or key in names:
                node.attrs[key] = a

    def const(self, array: np.ndarray, base: str = "const") -> Value:
        array = np.asarray(array)
        v = Value(
            self.name(base),
            from_numpy_dtype(array.dtype),
            tuple(array.shape),
            const=Tensor(array),
        )
        self.graph.add_initializer(v)
        return v


RewriteFn = Callable[[Match, Builder], Value | Sequence[Value] | None]
CheckFn = Callable[[Match], str | None]


class Rule:
    """``Rule(name, pattern_fn, rewrite_fn, check=check_fn)``."""

    def __init__(
        self,
        name: str,
        pattern: Callable[..., Any],
        rewrite: RewriteFn,
        check: CheckFn | None = None,
        *,
        commute: bool = True,
    ):
        self.name = name
        self.pattern = P.trace(pattern)
        self.variants = P.variants(self.pattern) if commute else [self.pattern]
        self.rewrite_fn = rewrite
        self.check_fn = check

    @property
    def root_ops(self) -> tuple[str, ...]:
        return self.pattern.root.op_types

    @property
    def root_domain(self) -> str:
        return self.pattern.root.domain

    def check(self, m: Match) -> str | None:
        return self.check_fn(m) if self.check_fn is not None else None

    def rewrite(self, m: Match, b: Builder):
        return self.rewrite_fn(m, b)

    def match(self, model: Model, graph: Graph, node: Node, graph_inputs: set[int]):
        """(Match, depth, reason): the first variant that matches and passes ``check``, or the
        deepest failure."""
        best = (None, -1, "no variant")
        for pat in self.variants:
            m = Match(model, graph, node)
            matcher = _Matcher(pat, m, graph_inputs)
            try:
                matcher.run()
            except _Fail as why:
                if matcher.depth > best[1]:
                    best = (None, matcher.depth, str(why))
                continue
            reason = self.check(m)
            if reason:
                if matcher.depth >= best[1]:
                    best = (None, matcher.depth, f"check: {reason}")
                continue
            return m, matcher.depth, ""
        return best

    def __repr__(self) -> str:
        return f"<rule {self.name}: {self.pattern}>"


class RuleSet:
    """Rules applied in order (each over the whole graph), repeated until nothing changes."""

    def __init__(self, rules: Sequence[Rule], max_rounds: int = 8):
        self.rules = list(rules)
        self.max_rounds = max_rounds

    def apply(self, model: Model, tracer: Tracer | None = None) -> dict[str, int]:
        from ..passes.base import walk_graphs

        tracer = tracer if tracer is not None else Tracer(keep_per_node=False)
        applied: dict[str, int] = {}
        for graph in list(walk_graphs(model.graph)):
            names = _all_names(graph)
            inputs = {id(v) for v in graph.inputs}
            for _ in range(self.max_rounds):
                changed = False
                for rule in self.rules:
                    for node in list(graph.nodes):
                        if node.graph is not graph or node.op_type not in rule.root_ops:
                            continue
                        if (node.domain if node.domain != "ai.onnx" else "") != rule.root_domain:
                            continue
                        m, depth, reason = rule.match(model, graph, node, inputs)
                        if m is not None:
                            reason = _apply(rule, m, names)
                        tracer.record(Attempt(rule.name, _key(node), depth, reason))
                        if not reason:
                            applied[rule.name] = applied.get(rule.name, 0) + 1
                            changed = True
                if not changed:
                    break
        counts = {"applied": sum(applied.values())}
        counts["attempted"] = sum(c.attempted for c in tracer.rules.values())
        counts["failed"] = sum(c.failed for c in tracer.rules.values())
        counts.update(applied)
        return counts


def _all_names(graph: Graph) -> set[str]:
    """Value and node names in use (new names must collide with neither)."""
    names = {v.name for v in graph.all_values()} | {n.name for n in graph.nodes if n.name}
    root: Graph | None = graph
    while root is not None:
        names.update(root.initializers)
        root = root.parent
    return names


def _apply(rule: Rule, m: Match, names: set[str]) -> str:
    """Run the rewrite; "" on success, or why it declined (the graph is then unchanged)."""
    graph, root = m.graph, m.root
    b = Builder(m, names)
    inits_before = set(graph.initializers)
    result = rule.rewrite(m, b)
    if result is None:
        for node in b.nodes:
            node.drop_inputs()
        for key in set(graph.initializers) - inits_before:
            graph.remove_initializer(key)
        return "rewrite declined"
    replacements = [result] if isinstance(result, Value) else list(result)
    outs = [o for o in root.outputs]
    for old, new in zip(outs, replacements, strict=False):
        if new is old:
            continue
        if graph.is_graph_output(old) and (new.producer is None or new.producer not in b.nodes):
            for node in b.nodes:
                node.drop_inputs()
            for key in set(graph.initializers) - inits_before:
                graph.remove_initializer(key)
            return f"output %{old.name} is a graph output and would lose its name"
    for node in b.nodes:
        graph.insert_before(root, node)
    for old, new in zip(outs, replacements, strict=False):
        if new is old or new is None:
            continue
        if new.producer is not None and new.producer in b.nodes and not new.uses:
            # the replacement takes over the old value (and its name, type and shape)
            producer, index = new.producer, new.output_index
            old_root = old.producer
            old_root.outputs[old.output_index] = Value("")
            old_root.outputs[old.output_index].producer = old_root
            old_root.outputs[old.output_index].output_index = old.output_index
            old.producer, old.output_index = producer, index
            producer.outputs[index] = old
            new.producer = None
            old.dtype = old.dtype or new.dtype
            old.shape = old.shape if old.shape is not None else new.shape
        else:
            old.replace_all_uses_with(new)
    for node in reversed(m.order):
        if node.graph is graph and not any(
            o.uses or graph.is_graph_output(o) for o in node.outputs
        ):
            graph.remove_node(node)
    return ""
