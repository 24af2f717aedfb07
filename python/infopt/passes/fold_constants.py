"""Constant folding: evaluate nodes whose inputs are all constants and store the result.

Identity relied on: a deterministic op applied to constants is a constant. Shapes count as
constants where inference knows them: ``Shape(x)`` of a statically shaped ``x``, and
``Gather(Shape(x), i)`` / ``Slice(Shape(x))`` picking only static dims of a symbolically shaped
one, fold too (the Shape->Gather->Concat->Reshape chains of dynamic exporters). Evaluation goes
through a small table of numpy evaluators for the ops exporters emit around shapes, and onnx's
reference evaluator for everything else. Refuses (leaves the node) when the op is random or has
subgraphs, when the result would exceed MAX_FOLDED_BYTES and be larger than its inputs (an Expand
of a scalar stays unfolded: folding must never bloat the model; the runtime computes such
constants once per session instead), or when evaluation throws (logged in stats, never fatal).
"""

from __future__ import annotations

import logging

import numpy as np

from ..ir import Model, Node, Tensor, Value, from_numpy_dtype
from ..runtime.fallback import NONDETERMINISTIC_OPS, NodeEvaluator
from .base import Pass, PassResult, walk_graphs

log = logging.getLogger(__name__)

# A folded result may always take this many bytes; beyond it only if no larger than its inputs.
MAX_FOLDED_BYTES = 1 << 20


def _shape(node: Node, x: np.ndarray) -> list[np.ndarray]:
    start = node.attr("start", 0)
    end = node.attr("end", None)
    return [np.array(x.shape[start:end], dtype=np.int64)]


def _constant_of_shape(node: Node, shape: np.ndarray) -> list[np.ndarray]:
    value = node.attr("value")
    fill = value.numpy().reshape(-1)[0] if value is not None else np.float32(0)
    return [np.full(tuple(int(d) for d in shape), fill, dtype=np.asarray(fill).dtype)]


def _axes(node: Node, given: np.ndarray | None) -> list[int]:
    """Axes from the opset-13 input form, or the older attribute form."""
    return [int(a) for a in (given if given is not None else node.attr("axes", []))]


def _unsqueeze(node: Node, x: np.ndarray, axes: np.ndarray | None = None) -> list[np.ndarray]:
    rank = x.ndim + len(_axes(node, axes))
    return [np.expand_dims(x, tuple(sorted(a % rank for a in _axes(node, axes))))]


def _squeeze(node: Node, x: np.ndarray, axes: np.ndarray | None = None) -> list[np.ndarray]:
    chosen = _axes(node, axes)
    return [np.squeeze(x, tuple(a % x.ndim for a in chosen)) if chosen else np.squeeze(x)]


def _reshape(node: Node, x: np.ndarray, shape: np.ndarray) -> list[np.ndarray]:
    dims = [int(d) for d in shape]
    if not node.attr("allowzero", 0):
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return [x.reshape(dims)]


def _cast(node: Node, x: np.ndarray) -> list[np.ndarray]:
    from ..ir import to_numpy_dtype

    to = to_numpy_dtype(node.attr("to"))
    if x.dtype.kind in "fc" and to.kind in "iub":
        raise ValueError("float to integer cast: left to the reference evaluator")
    return [x.astype(to)]


# op -> evaluator(node, *inputs) -> outputs; quicker than the reference evaluator for the ops
# exporters emit around shapes (the reference evaluator costs ~1 ms per node to set up)
_EVALUATORS = {
    "Shape": _shape,
    "ConstantOfShape": _constant_of_shape,
    "Identity": lambda node, x: [x],
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Reshape": _reshape,
    "Concat": lambda node, *xs: [np.concatenate(xs, axis=node.attr("axis"))],
    "Gather": lambda node, x, i: [np.take(x, i, axis=node.attr("axis", 0))],
    "Cast": _cast,
}


def _static_dims(node: Node, model: Model) -> np.ndarray | None:
    """The value of a Shape node (or a Gather/Slice of one) when the dims it yields are static."""
    if node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type == "Shape" and node.inputs and node.inputs[0] is not None:
        shape = node.inputs[0].shape
        if shape is None:
            return None
        rank = len(shape)
        start, end = node.attr("start", 0), node.attr("end", rank)
        dims = list(shape)[slice(start, end)]
        if all(isinstance(d, int) for d in dims):
            return np.array(dims, dtype=np.int64)
        return None
    if node.op_type not in ("Gather", "Slice") or node.inputs[0] is None:
        return None
    src = node.inputs[0].producer
    if src is None or src.op_type != "Shape" or src.domain not in ("", "ai.onnx"):
        return None
    rest = node.inputs[1:]
    if any(v is not None and v.const is None for v in rest) or src.inputs[0].shape is None:
        return None
    shape = list(src.inputs[0].shape)
    shape = shape[slice(src.attr("start", 0), src.attr("end", len(shape)))]
    index = np.arange(len(shape))
    try:
        if node.op_type == "Gather":
            picked = np.take(index, rest[0].const.numpy(), axis=0)
        else:
            args = [v.const.numpy() if v is not None else None for v in rest]
            picked = NodeEvaluator(node, model)([index, *args])[0]
    except Exception:
        return None
    dims = [shape[int(i)] for i in np.asarray(picked).reshape(-1)]
    if not all(isinstance(d, int) for d in dims):
        return None
    return np.array(dims, dtype=np.int64).reshape(np.asarray(picked).shape)


def _output_bytes_estimate(node: Node, inputs: list[np.ndarray | None]) -> int | None:
    """Bytes the result will take, when knowable before computing it."""
    if node.op_type == "ConstantOfShape" and inputs and inputs[0] is not None:
        value = node.attr("value")
        itemsize = value.numpy().itemsize if value is not None else 4
        return int(np.prod(inputs[0].astype(np.int64))) * itemsize
    if node.op_type in ("Expand", "Tile", "Range"):
        return None  # unknown until computed; checked after evaluation
    return None


class FoldConstants(Pass):
    name = "fold_constants"
    description = "evaluate nodes whose inputs are all constant"

    def __init__(self, max_folded_bytes: int = MAX_FOLDED_BYTES):
        self.max_folded_bytes = max_folded_bytes

    def run(self, model: Model) -> PassResult:
        folded = skipped_size = failed = 0
        for graph in walk_graphs(model.graph):
            graph_inputs = {id(v) for v in graph.inputs}
            for node in list(graph.nodes):
                dims = None if self._foldable(node, graph_inputs) else _static_dims(node, model)
                if dims is not None:
                    replace_with_constant(graph, node.outputs[0], dims)
                    if not node.outputs[0].uses and not graph.is_graph_output(node.outputs[0]):
                        graph.remove_node(node)
                    folded += 1
                    continue
                if not self._foldable(node, graph_inputs):
                    continue
                args = [v.const.numpy() if v is not None else None for v in node.inputs]
                in_bytes = sum(a.nbytes for a in args if a is not None)
                limit = max(self.max_folded_bytes, in_bytes)
                estimate = _output_bytes_estimate(node, args)
                if estimate is not None and estimate > limit:
                    skipped_size += 1
                    continue
                try:
                    results = self._evaluate(node, model, args)
                except Exception as exc:  # a fold that throws is skipped, never fatal
                    log.info("fold_constants: %s failed: %s", node.qualified_op, exc)
                    failed += 1
                    continue
                if sum(np.asarray(r).nbytes for r in results) > limit:
                    skipped_size += 1
                    continue
                for out, result in zip(node.outputs, results, strict=False):
                    if out.name:
                        replace_with_constant(graph, out, np.asarray(result))
                if all(not o.uses and not graph.is_graph_output(o) for o in node.outputs):
                    graph.remove_node(node)
                folded += 1
        stats = {"folded": folded, "skipped_size": skipped_size, "failed": failed}
        return PassResult(model, folded > 0, stats)

    @staticmethod
    def _foldable(node: Node, graph_inputs: set[int]) -> bool:
        if node.op_type in NONDETERMINISTIC_OPS or any(True for _ in node.subgraphs()):
            return False
        if node.domain not in ("", "ai.onnx"):
            return False
        present = [v for v in node.inputs if v is not None]
        if node.op_type == "Constant":
            return True
        return bool(present) and all(
            v.const is not None and id(v) not in graph_inputs for v in present
        )

    @staticmethod
    def _evaluate(node: Node, model: Model, args: list[np.ndarray | None]) -> list[np.ndarray]:
        fn = _EVALUATORS.get(node.op_type)
        if fn is not None:
            return fn(node, *args)
        return NodeEvaluator(node, model)(args)


def replace_with_constant(graph, out: Value, array: np.ndarray) -> None:
    """Make ``out``'s readers read a new initializer holding ``array``."""
    name = out.name
    # the folded constant takes the value's own name (unique_name scans the whole graph, so it
    # is only called on the rare collision with an existing initializer)
    const = Value(name, from_numpy_dtype(array.dtype), tuple(array.shape), const=Tensor(array))
    if graph.is_graph_output(out):
        # the interface keeps its name: the output becomes an initializer under that name
        placeholder = Value("")
        placeholder.producer, placeholder.output_index = out.producer, out.output_index
        out.producer.outputs[out.output_index] = placeholder
        out.producer = None
        out.const = const.const
        out.dtype, out.shape = const.dtype, const.shape
        graph.add_initializer(out)
        return
    const.name = graph.unique_name(name) if name in graph.initializers else name
    out.replace_all_uses_with(const)
    out.name = name + "__dead"
    graph.add_initializer(const)
