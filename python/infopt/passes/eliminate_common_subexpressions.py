"""Common-subexpression elimination: two nodes with the same op, attributes and inputs compute
the same values, so the later one's readers read the earlier one's outputs.

Identity relied on: ops are pure functions of their inputs and attributes. Refuses random ops,
nodes with subgraphs, and a duplicate whose output is a graph output (the interface keeps its
names). Constants are compared by identity; ``merge_initializers`` first makes equal ones one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir import Model, Node, Tensor
from ..runtime.fallback import NONDETERMINISTIC_OPS
from .base import Pass, PassResult, walk_graphs


def _attr_key(value: Any) -> Any:
    if isinstance(value, Tensor):
        array = value.numpy()
        return ("tensor", array.dtype.str, array.shape, array.tobytes())
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, list | tuple):
        return tuple(_attr_key(v) for v in value)
    return value


def _key(node: Node) -> tuple | None:
    if node.op_type in NONDETERMINISTIC_OPS or any(True for _ in node.subgraphs()):
        return None
    try:
        attrs = tuple(sorted((k, a.type, _attr_key(a.value), a.ref) for k, a in node.attrs.items()))
        hash(attrs)
    except TypeError:
        return None
    inputs = tuple(id(v) if v is not None else None for v in node.inputs)
    return (node.domain, node.op_type, node.overload, inputs, attrs, len(node.outputs))


class EliminateCommonSubexpressions(Pass):
    name = "eliminate_common_subexpressions"
    description = "merge nodes that compute the same thing"

    def run(self, model: Model) -> PassResult:
        merged = 0
        for graph in walk_graphs(model.graph):
            seen: dict[tuple, Node] = {}
            for node in list(graph.nodes):
                key = _key(node)
                if key is None:
                    continue
                first = seen.get(key)
                if first is None:
                    seen[key] = node
                    continue
                if any(graph.is_graph_output(o) for o in node.outputs):
                    continue
                pairs = list(zip(node.outputs, first.outputs, strict=True))
                # an output the first node leaves unnamed (not computed) cannot stand in for a
                # used one: check every pair before moving any reader
                if any(old.uses and not new.name for old, new in pairs):
                    continue
                for old, new in pairs:
                    if old.uses:
                        old.replace_all_uses_with(new)
                graph.remove_node(node)
                merged += 1
        return PassResult(model, merged > 0, {"merged": merged})
