"""Fallback evaluation: run any valid ONNX node with onnx's reference evaluator.

Ops without a native kernel go through here, so every valid ONNX op runs from day one. Each
fallback node is compiled once into a one-node model (with the model's local functions, so
infopt-domain ops run through their decompositions) and reused on every call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx.reference import ReferenceEvaluator

from ..ir import Model, Node, Value
from ..ir.serde import node_model_proto


class NodeEvaluator:
    """Evaluates one IR node on numpy arrays."""

    def __init__(self, node: Node, model: Model):
        self.node = node
        self.label = f"{node.qualified_op}:{node.name or node.outputs[0].name}"
        self.outer = list(_outer_inputs(node))
        self.input_names = [v.name if v is not None else None for v in node.inputs]
        proto = node_model_proto(node, model, list(node.inputs), self.outer)
        self._evaluator = ReferenceEvaluator(proto)
        self._feed_names = [i.name for i in proto.graph.input]

    def __call__(self, args: Sequence[np.ndarray | None], outer: Sequence[np.ndarray] = ()
                 ) -> list[np.ndarray]:
        feeds = {}
        for name, value in zip(self.input_names, args, strict=True):
            if name is not None:
                feeds[name] = value
        for v, value in zip(self.outer, outer, strict=True):
            feeds[v.name] = value
        results = self._evaluator.run(None, feeds)
        return [np.asarray(r) if not isinstance(r, list) else r for r in results]


def _outer_inputs(node: Node) -> list[Value]:
    refs: dict[int, Value] = {}
    for sub in node.subgraphs():
        for v in sub.outer_references():
            refs.setdefault(id(v), v)
    own = {id(v) for v in node.inputs if v is not None}
    return [v for k, v in refs.items() if k not in own]
