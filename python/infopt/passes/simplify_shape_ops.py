"""No-op and pair removal for layout and type ops.

Rewrites: Cast to the type its input already has; Reshape to the shape its input already has;
Reshape of a Reshape (the inner one goes, when the outer shape has no copy-from-input zeros);
Transpose of a Transpose (composed into one, or removed when the composition is the identity);
Squeeze of an Unsqueeze and Unsqueeze of a Squeeze over the same axes; Unsqueezes of an
Unsqueeze composed into one (the inner one goes once every reader is an Unsqueeze).
Identity relied on: each removed op maps its input to an equal tensor. Refuses when a shape or
dtype is unknown, an axis or shape input is not constant, or the result is a graph output that
would lose its name.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Model, Node, Tensor, Value
from ..rewrite import Match, Rule, RuleSet, Tracer
from .base import Pass, PassResult


def _cast_check(m: Match) -> str | None:
    x, to = m["x"], m.node("cast").attr("to")
    if x.dtype is None or x.dtype != to:
        return f"Cast input %{x.name} is {x.dtype}, not the target type {to}"
    return None


def _reshape_target(m: Match, key: str = "s") -> list[int] | None:
    shape = m.const(key)
    return None if shape is None else [int(d) for d in shape.reshape(-1)]


def _reshape_noop_check(m: Match) -> str | None:
    x, target = m["x"], _reshape_target(m)
    node = m.node("reshape")
    if target is None:
        return f"shape %{m['s'].name} is not constant"
    if x.shape is None or len(x.shape) != len(target):
        return f"%{x.name} shape {x.shape} differs in rank from {target}"
    allowzero = node.attr("allowzero", 0)
    unmatched = 0
    for got, want in zip(x.shape, target, strict=True):
        if (want == 0 and not allowzero) or (isinstance(got, int) and got == want):
            continue
        if want == -1:
            unmatched += 1
            continue
        return f"%{x.name} dim {got} is not target dim {want}"
    return None if unmatched <= 1 else f"target {target} has several unknown dims"


def _reshape_pair_check(m: Match) -> str | None:
    target = _reshape_target(m, "s2")
    if target is None:
        return f"shape %{m['s2'].name} is not constant"
    if 0 in target and not m.node("reshape").attr("allowzero", 0):
        return f"shape %{m['s2'].name} copies dims (0) from the inner Reshape's output"
    return None


def _composed(m: Match) -> list[int] | None:
    p1, p2 = m.node("t1").attr("perm"), m.node("t2").attr("perm")
    if p1 is None or p2 is None or len(p1) != len(p2):
        return None
    return [int(p1[i]) for i in p2]


def _transpose_rewrite(m: Match, b):
    perm = _composed(m)
    if perm is None:
        return None
    if perm == list(range(len(perm))):
        return m["x"]
    return b.op("Transpose", m["x"], perm=perm)


def _known_axes(node: Node, rank: int | None) -> list[int] | None:
    """Sorted axes of a Squeeze/Unsqueeze (constant axes input or attribute), negative ones
    normalised with ``rank``; None when they are not known (or the input is overridable)."""
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        v = node.inputs[1]
        graph_inputs = node.graph.inputs if node.graph is not None else []
        if v.const is None or any(v is i for i in graph_inputs):
            return None
        axes = [int(a) for a in v.const.numpy().reshape(-1)]
    else:
        axes = node.attr("axes")
        if axes is None:
            return None
        axes = [int(a) for a in axes]
    if any(a < 0 for a in axes):
        if rank is None:
            return None
        axes = [a % rank for a in axes]
    return sorted(axes)


def _squeeze_pair_check(m: Match) -> str | None:
    # Squeeze(Unsqueeze(x, a), a): both see rank r + len(a)
    outer = m.node("unsq").outputs[0]
    rank = None if outer.shape is None else len(outer.shape)
    a1 = _known_axes(m.node("unsq"), rank)
    a2 = _known_axes(m.node("sq"), rank)
    if a1 is None or a2 is None or a1 != a2:
        return f"axes of %{outer.name} ({a1}) and its Squeeze ({a2}) differ or are unknown"
    return None


def _unsqueeze_pair_check(m: Match) -> str | None:
    x = m["x"]
    rank = None if x.shape is None else len(x.shape)
    a1 = _known_axes(m.node("sq"), rank)
    a2 = _known_axes(m.node("unsq"), rank)
    if a1 is None or a2 is None or a1 != a2:
        return f"axes of the Squeeze of %{x.name} ({a1}) and its Unsqueeze ({a2}) differ"
    return None


RULES = RuleSet(
    [
        Rule(
            "cast_noop",
            lambda op, x: op.Cast(x, _name="cast"),
            lambda m, b: m["x"],
            check=_cast_check,
        ),
        Rule(
            "reshape_noop",
            lambda op, x, s: op.Reshape(x, s, _name="reshape"),
            lambda m, b: m["x"],
            check=_reshape_noop_check,
        ),
        Rule(
            "reshape_pair",
            lambda op, x, s1, s2: op.Reshape(op.Reshape(x, s1, _name="inner"), s2, _name="reshape"),
            lambda m, b: b.op(
                "Reshape", m["x"], m["s2"], allowzero=m.node("reshape").attr("allowzero")
            ),
            check=_reshape_pair_check,
        ),
        Rule(
            "transpose_pair",
            lambda op, x: op.Transpose(op.Transpose(x, _name="t1"), _name="t2"),
            _transpose_rewrite,
            check=lambda m: None if _composed(m) is not None else "a Transpose has no perm",
        ),
        Rule(
            "squeeze_unsqueeze",
            lambda op, x, a1, a2: op.Squeeze(
                op.Unsqueeze(x, a1, _optional=1, _name="unsq"), a2, _optional=1, _name="sq"
            ),
            lambda m, b: m["x"],
            check=_squeeze_pair_check,
        ),
        Rule(
            "unsqueeze_squeeze",
            lambda op, x, a1, a2: op.Unsqueeze(
                op.Squeeze(x, a1, _optional=1, _name="sq"), a2, _optional=1, _name="unsq"
            ),
            lambda m, b: m["x"],
            check=_unsqueeze_pair_check,
        ),
    ]
)


class SimplifyShapeOps(Pass):
    name = "simplify_shape_ops"
    description = "remove no-op Cast/Reshape and cancelling Transpose/Squeeze pairs"

    def __init__(self, tracer: Tracer | None = None):
        self.tracer = tracer

    def run(self, model: Model) -> PassResult:
        stats = RULES.apply(model, self.tracer)
        stats["unsqueeze_composed"] = compose_unsqueezes(model.graph)
        modified = stats["applied"] > 0 or stats["unsqueeze_composed"] > 0
        return PassResult(model, modified, stats)


def _unsqueeze_axes(node: Node) -> list[int] | None:
    out = node.outputs[0].shape
    return _known_axes(node, None if out is None else len(out))


def compose_unsqueezes(graph: Graph) -> int:
    """Unsqueeze(Unsqueeze(x, A), B) -> Unsqueeze(x, C) for every reader of the inner one, when
    all its readers are Unsqueezes with known axes (so the inner one can go)."""
    composed = 0
    for inner in list(graph.nodes):
        if (
            inner.op_type != "Unsqueeze"
            or inner.graph is None
            or inner.domain not in ("", "ai.onnx")
        ):
            continue
        mid = inner.outputs[0]
        readers = mid.consumers()
        if not readers or graph.is_graph_output(mid) or mid.shape is None:
            continue
        a = _unsqueeze_axes(inner)
        outer_axes = [_unsqueeze_axes(n) if n.op_type == "Unsqueeze" else None for n in readers]
        if a is None or any(b is None for b in outer_axes):
            continue
        if any(n.inputs[0] is not mid or mid in n.inputs[1:] for n in readers):
            continue
        for reader, b in zip(readers, outer_axes, strict=True):
            # the reader's output has mid's dims at the positions outside b, in order
            kept = [i for i in range(len(mid.shape) + len(b)) if i not in b]
            axes = sorted(set(b) | {kept[i] for i in a})
            reader.set_input(0, inner.inputs[0])
            if len(reader.inputs) > 1:
                arr = np.array(axes, dtype=np.int64)
                name = graph.unique_name(f"{reader.name or 'unsqueeze'}_axes")
                reader.set_input(
                    1, graph.add_initializer(Value(name, 7, (len(axes),), const=Tensor(arr)))
                )
            else:
                reader.set_attr("axes", axes)
            composed += 1
        if not mid.uses:
            graph.remove_node(inner)
    return composed
