"""Resolve the run-time shape arithmetic of dynamic exports with symbolic shapes.

Rewrites, using :mod:`infopt.ir.symbolic` (dims as provable symbols such as ``batch``):
- an integer or bool value that is the same for every input shape becomes a constant
  (``Equal(Concat(batch, seq), -1)`` is ``[False, False]``: dims are never negative);
- a Reshape whose target is built from ``Shape(...)`` at run time gets a constant target that
  says the same thing with 0 ("copy this input dim") and -1 ("whatever is left"):
  ``Reshape(f32[b,s,384], Concat(b, s, 12, 32))`` becomes ``Reshape(x, [0, 0, 12, 32])``;
- an Expand or Reshape whose result provably has its input's shape is removed;
- ``Reshape(f(Reshape(x)))`` for an elementwise ``f`` (with one-element constants) becomes
  ``f(x)`` when the outer Reshape gives back x's shape (the flatten/unflatten around GELU
  between two Gemms of dynamo exports).
The shape chains left without readers are removed by eliminate_dead_code.
Identity relied on: each rewrite computes the same tensor for every input shape the model
accepts. Refuses when a dim is not provably equal (it is then a fresh symbol of its own), when
Reshape has ``allowzero=1`` and the target would need 0, when two target dims are unknown, and
for values that are graph outputs.
"""

from __future__ import annotations

import numpy as np

from ..ir import Model, Node, Tensor, Value
from ..ir.symbolic import SymbolicShapes
from ..runtime.fallback import NONDETERMINISTIC_OPS
from .base import Pass, PassResult
from .fold_constants import replace_with_constant

_INT_TYPES = {6: np.int32, 7: np.int64, 9: np.bool_}  # TensorProto INT32, INT64, BOOL


def reshape_target(x_shape, target, allowzero: int) -> list[int] | None:
    """A constant Reshape target equal to the symbolic ``target`` for input shape ``x_shape``,
    or None when it cannot be written with at most one -1."""
    out: list[int] = []
    for i, want in enumerate(target):
        if isinstance(want, int):
            out.append(int(want))
        elif not allowzero and i < len(x_shape) and x_shape[i] == want:
            out.append(0)
        else:
            out.append(-1)  # "whatever is left": possible for one dim only
    return out if out.count(-1) <= 1 else None


class ResolveDynamicShapes(Pass):
    name = "resolve_dynamic_shapes"
    description = "turn run-time shape arithmetic into constants using symbolic dims"

    def run(self, model: Model) -> PassResult:
        graph = model.graph
        shapes = SymbolicShapes(graph)
        stats = {
            "values_folded": 0,
            "reshape_targets": 0,
            "expands_removed": 0,
            "reshape_pairs_cancelled": 0,
        }
        for node in list(graph.nodes):
            if node.graph is None or node.op_type in NONDETERMINISTIC_OPS:
                continue
            if node.op_type == "Reshape" and self._reshape(graph, node, shapes):
                stats["reshape_targets"] += 1
            elif (
                node.op_type == "Reshape"
                and not graph.is_graph_output(node.outputs[0])
                and cancel_reshape_sandwich(graph, node, shapes)
            ):
                stats["reshape_pairs_cancelled"] += 1
            elif node.op_type == "Expand" and self._expand(graph, node, shapes):
                stats["expands_removed"] += 1
            else:
                stats["values_folded"] += self._fold(graph, node, shapes)
        return PassResult(model, any(stats.values()), stats)

    @staticmethod
    def _fold(graph, node: Node, shapes: SymbolicShapes) -> int:
        if node.domain not in ("", "ai.onnx") or len(node.outputs) != 1:
            return 0
        if node.op_type == "Constant":
            return 0  # already constant: fold_constants turns it into an initializer
        out = node.outputs[0]
        value = shapes.value(out)
        if value is None or not value.static or out.dtype not in _INT_TYPES:
            return 0
        if graph.is_graph_output(out) or not out.uses:
            return 0
        array = np.array(value.elems, dtype=_INT_TYPES[out.dtype])
        replace_with_constant(graph, out, array.reshape(() if value.rank == 0 else (-1,)))
        return 1

    @staticmethod
    def _reshape(graph, node: Node, shapes: SymbolicShapes) -> bool:
        x, target = node.inputs[0], node.inputs[1] if len(node.inputs) > 1 else None
        if target is None:
            return False
        if _bypass_if_same_shape(graph, node, shapes):
            return True
        if target.const is not None:
            return False
        value, x_shape = shapes.value(target), shapes.shape(x)
        if value is None or x_shape is None:
            return False
        if value.static:
            dims = [int(e) for e in value.elems]
        else:
            dims = reshape_target(x_shape, value.elems, node.attr("allowzero", 0))
            if dims is None:
                return False
        const = graph.unique_name(f"{node.name or 'reshape'}_shape")
        array = np.array(dims, dtype=np.int64)
        new = Value(const, 7, (len(dims),), const=Tensor(array))
        graph.add_initializer(new)
        node.set_input(1, new)
        return True

    @staticmethod
    def _expand(graph, node: Node, shapes: SymbolicShapes) -> bool:
        return shapes.value(node.inputs[1]) is not None and _bypass_if_same_shape(
            graph, node, shapes
        )


def _bypass_if_same_shape(graph, node: Node, shapes: SymbolicShapes) -> bool:
    """Remove a Reshape/Expand whose output provably has its input's shape (same elements in
    the same order: the op is the identity)."""
    x, out = node.inputs[0], node.outputs[0]
    x_shape, out_shape = shapes.shape(x), shapes.shape(out)
    if x_shape is None or out_shape is None or tuple(x_shape) != tuple(out_shape):
        return False
    if graph.is_graph_output(out) or x.dtype != out.dtype:
        return False
    out.replace_all_uses_with(x)
    graph.remove_node(node)
    return True


# ops that map each element on its own (constant operands of one element broadcast trivially)
_ELEMENTWISE = set(
    (
        "Abs Add And Cast Ceil Clip Div Elu Equal Erf Exp Floor Gelu Greater HardSigmoid HardSwish "
        "LeakyRelu Less Log Max Min Mul Neg Not Or Pow Reciprocal Relu Round Selu Sigmoid Sign Sin "
        "Softplus Sqrt Sub Tanh Where"
    ).split()
)
_MAX_REGION = 32


def _elementwise_region(end: Value) -> tuple[list[Node], Value] | None:
    """The nodes computing ``end`` elementwise from one non-constant value produced by a
    Reshape, with one-element constants on the side; (nodes, entry value) or None."""
    region: dict[int, Node] = {}
    entry: Value | None = None
    stack = [end.producer]
    while stack:
        node = stack.pop()
        if node is None or id(node) in region:
            continue
        if node.op_type not in _ELEMENTWISE or node.domain not in ("", "ai.onnx"):
            return None
        if len(node.outputs) != 1 or len(region) >= _MAX_REGION:
            return None
        region[id(node)] = node
        for v in node.inputs:
            if v is None or (v.const is not None and v.const.size <= 1):
                continue
            if v.producer is not None and v.producer.op_type == "Reshape":
                if entry is not None and entry is not v:
                    return None
                entry = v
            elif v.producer is not None:
                stack.append(v.producer)
            else:
                return None
    if entry is None:
        return None
    return list(region.values()), entry


def cancel_reshape_sandwich(graph, outer: Node, shapes: SymbolicShapes) -> bool:
    """Reshape(f(Reshape(x))) -> f(x) for an elementwise f when the outer Reshape restores
    x's shape: elementwise ops don't care how the elements are grouped."""
    x2, out = outer.inputs[0], outer.outputs[0]
    found = _elementwise_region(x2)
    if found is None:
        return False
    nodes, entry = found
    inner = entry.producer
    x = inner.inputs[0]
    x_shape = shapes.shape(x)
    if x_shape is None or x_shape != shapes.shape(out) or x.dtype != out.dtype:
        return False
    # a one-element constant of higher rank than x would now broadcast f's result up a rank
    if any(
        v.const is not None and len(v.const.shape) > len(x_shape)
        for n in nodes
        for v in n.inputs
        if v is not None
    ):
        return False
    inside = {id(n) for n in nodes}
    for n in nodes:
        v = n.outputs[0]
        readers = v.consumers()
        if graph.is_graph_output(v):
            return False
        if v is x2:
            if readers != [outer]:
                return False
        elif any(id(r) not in inside for r in readers):
            return False
    for n in nodes:
        for i, v in enumerate(n.inputs):
            if v is entry:
                n.set_input(i, x)
        # the region's values now have x's shape: keep both the IR and the analysis truthful
        n.outputs[0].shape = x.shape
        shapes.shapes[id(n.outputs[0])] = x_shape
    out.replace_all_uses_with(x2)
    graph.remove_node(outer)
    if not entry.uses and not graph.is_graph_output(entry):
        graph.remove_node(inner)
    return True
