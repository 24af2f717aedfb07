"""No-op removal: Identity, Dropout in inference (no training_mode input set, mask unused), and
elementwise ops with a neutral constant: ``x*1``, ``x/1``, ``x-0``, ``x**1``, ``And(x, True)``,
``Or(x, False)``, and ``x+0`` for integers (for floats ``-0.0 + 0`` is ``+0.0``, so it stays).

Identity relied on: the output equals the input. The neutral forms need the constant to hold
the neutral element everywhere and the output to have x's shape and type (a constant that would
broadcast x to a larger shape keeps its op). Refuses when the output is a graph output whose
input is also a graph output or graph input (the model's interface would lose a name).
"""

from __future__ import annotations

import numpy as np

from ..ir import Model, Node, Value
from .base import Pass, PassResult, walk_graphs

# op -> (neutral element, the input positions the constant may take)
_NEUTRAL = {
    "Mul": (1, (0, 1)),
    "Div": (1, (1,)),
    "Sub": (0, (1,)),
    "Pow": (1, (1,)),
    "Add": (0, (0, 1)),
    "And": (True, (0, 1)),
    "Or": (False, (0, 1)),
}


def _passed_through(node: Node) -> int | None:
    """Index of the input a no-op node returns unchanged, or None."""
    if node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type == "Identity":
        return 0
    if node.op_type == "Dropout":
        mask_used = len(node.outputs) > 1 and bool(node.outputs[1].uses)
        training = len(node.inputs) > 2 and node.inputs[2] is not None
        return None if mask_used or training else 0
    rule = _NEUTRAL.get(node.op_type)
    if rule is None or len(node.inputs) != 2 or None in node.inputs:
        return None
    neutral, positions = rule
    for k in positions:
        const, x = node.inputs[k], node.inputs[1 - k]
        if const.const is None or not _same_type(x, node.outputs[0]):
            continue
        # shape first: a large weight is not loaded just to learn it is not all ones
        if not _fits_inside(const.const.shape, x.shape) or const.const.size > 1 << 16:
            continue
        values = const.const.numpy()
        if node.op_type == "Add" and values.dtype.kind == "f":
            continue
        if values.size and np.all(values == neutral):
            return 1 - k
    return None


def _fits_inside(const_shape: tuple[int, ...], x_shape) -> bool:
    """Broadcasting a constant of ``const_shape`` against x leaves x's shape as it is."""
    if len(const_shape) > len(x_shape):
        return False
    aligned = x_shape[len(x_shape) - len(const_shape) :]
    return all(c == 1 or c == d for c, d in zip(const_shape, aligned, strict=True))


def _same_type(x: Value, out: Value) -> bool:
    return (
        x.dtype is not None
        and x.dtype == out.dtype
        and x.shape is not None
        and out.shape == x.shape
        and all(d is not None for d in x.shape)
    )


class RemoveIdentity(Pass):
    name = "remove_identity"
    description = "remove Identity, inference-mode Dropout and ops with a neutral constant"

    def run(self, model: Model) -> PassResult:
        removed = 0
        for graph in walk_graphs(model.graph):
            for node in list(graph.nodes):
                kept = _passed_through(node)
                if kept is None or node.inputs[kept] is None:
                    continue
                src, out = node.inputs[kept], node.outputs[0]
                if any(extra.uses for extra in node.outputs[1:]):
                    continue
                if graph.is_graph_output(out):
                    if graph.is_graph_output(src) or src.producer is None:
                        continue
                    # keep the interface name: the producer now writes the output directly
                    _rename_through(src, out)
                else:
                    out.replace_all_uses_with(src)
                graph.remove_node(node)
                removed += 1
        return PassResult(model, removed > 0, {"removed": removed})


def _rename_through(src: Value, out: Value) -> None:
    """Make ``out`` (a graph output) take the place of ``src`` as its producer's output."""
    node = out.producer
    node.set_input(0, None)
    producer, index = src.producer, src.output_index
    src.replace_all_uses_with(out)
    # detach both values, then swap them in the producer's and the Identity's output slots
    out.producer, src.producer = producer, node
    out.output_index, src.output_index = index, 0
    producer.outputs[index] = out
    node.outputs[0] = src
    out.dtype = out.dtype or src.dtype
    out.shape = out.shape or src.shape
