"""Fallback evaluation: run any valid ONNX node with onnx's reference evaluator.

Ops without a native kernel go through here, so every valid ONNX op runs from day one. Each
fallback node is compiled once into a one-node model (with the model's local functions, so
infopt-domain ops run through their decompositions) and reused on every call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..ir import Model, Node, Value
from ..ir.serde import node_model_proto


def _legacy_softmax(kind: str, node: Node):
    """Softmax/LogSoftmax/Hardmax before opset 13: the input is coerced to 2-D at ``axis``
    (default 1). onnx's reference evaluator applies the opset-13 single-axis form instead."""
    axis = node.attr("axis", 1)

    def run(args, outer=()):
        x = args[0]
        a = axis if axis >= 0 else axis + x.ndim
        flat = x.reshape(int(np.prod(x.shape[:a], dtype=np.int64)), -1)
        if kind == "Hardmax":
            out = np.zeros_like(flat)
            out[np.arange(flat.shape[0]), np.argmax(flat, axis=1)] = 1
            return [out.reshape(x.shape)]
        shifted = flat - flat.max(axis=1, keepdims=True)
        if kind == "LogSoftmax":
            out = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        else:
            e = np.exp(shifted)
            out = e / e.sum(axis=1, keepdims=True)
        return [out.astype(x.dtype).reshape(x.shape)]

    return run


def _batchnorm_inference(node: Node):
    """BatchNormalization with running statistics. The reference evaluator's opset-9 form
    does not compute this (found by differential testing against onnxruntime)."""
    epsilon = node.attr("epsilon", 1e-5)

    def run(args, outer=()):
        x, scale, bias, mean, var = args[:5]
        shape = (1, -1) + (1,) * (x.ndim - 2)
        inv = (scale / np.sqrt(var.astype(np.float64) + epsilon)).reshape(shape)
        out = (x - mean.reshape(shape)) * inv + bias.reshape(shape)
        return [out.astype(x.dtype)]

    return run


def _lrn(node: Node):
    """LRN across channels, per the spec: the window is [c - floor((size-1)/2),
    c + ceil((size-1)/2)] and alpha is divided by size. The reference evaluator deviates."""
    size = node.attr("size")
    alpha, beta, bias = node.attr("alpha", 1e-4), node.attr("beta", 0.75), node.attr("bias", 1.0)

    def run(args, outer=()):
        x = args[0]
        squares = np.square(x.astype(np.float64))
        channels = x.shape[1]
        padded = np.zeros((x.shape[0], channels + size) + x.shape[2:])
        before = (size - 1) // 2
        padded[:, before + 1 : before + 1 + channels] = squares
        cumulative = np.cumsum(padded, axis=1)
        window = cumulative[:, size : size + channels] - cumulative[:, :channels]
        out = x / (bias + alpha / size * window) ** beta
        return [out.astype(x.dtype)]

    return run


def _gather_elements(node: Node):
    """GatherElements; the reference evaluator fails on valid inputs (data [1, 512], indices
    [1, 8], axis 1: "cannot reshape array of size 1")."""
    axis = node.attr("axis", 0)

    def run(args, outer=()):
        data, indices = args[0], args[1].astype(np.int64)
        dim = data.shape[axis]
        return [np.take_along_axis(data, np.where(indices < 0, indices + dim, indices), axis)]

    return run


def _override(node: Node, model: Model):
    """Our own evaluator where the reference evaluator deviates from the ONNX spec."""
    if node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type in ("Softmax", "LogSoftmax", "Hardmax") and model.opset("") < 13:
        return _legacy_softmax(node.op_type, node)
    if (
        node.op_type == "BatchNormalization"
        and not node.attr("training_mode", 0)
        and not any(v.name for v in node.outputs[1:])
    ):
        return _batchnorm_inference(node)
    if node.op_type == "LRN":
        return _lrn(node)
    if node.op_type == "GatherElements":
        return _gather_elements(node)
    return None


# Ops whose results must be computed on every run, never ahead of time or folded.
NONDETERMINISTIC_OPS = frozenset(
    {
        "RandomNormal",
        "RandomNormalLike",
        "RandomUniform",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
    }
)


def computable_ahead(node: Node, known: dict[int, object]) -> bool:
    """Whether a node's outputs can be computed once, before any run: every input is in
    ``known`` (keyed by id of the value), or it is a Constant; random ops and nodes with
    subgraphs always run."""
    if node.op_type in NONDETERMINISTIC_OPS or any(True for _ in node.subgraphs()):
        return False
    present = [v for v in node.inputs if v is not None]
    if not present:
        return node.op_type == "Constant" and node.domain in ("", "ai.onnx")
    return all(id(v) in known for v in present)


class NodeEvaluator:
    """Evaluates one IR node on numpy arrays."""

    def __init__(self, node: Node, model: Model):
        self.node = node
        self.label = f"{node.qualified_op}:{node.name or node.outputs[0].name}"
        self.outer = list(_outer_inputs(node))
        self.input_names = [v.name if v is not None else None for v in node.inputs]
        self._override = _override(node, model)
        if self._override is not None:
            return
        # imported here: onnx.reference costs ~10 MB of memory that a session whose every
        # node runs natively never needs
        from onnx.reference import ReferenceEvaluator

        proto = node_model_proto(node, model, list(node.inputs), self.outer)
        if model.function(node.domain, node.op_type) is not None:
            # the reference evaluator's function calls need every declared attribute present;
            # inlining drops references to the ones a call leaves out (FusedConv's auto_pad)
            from onnx import inliner

            proto = inliner.inline_local_functions(proto)
        self._evaluator = ReferenceEvaluator(proto)
        self._feed_names = [i.name for i in proto.graph.input]

    def __call__(
        self, args: Sequence[np.ndarray | None], outer: Sequence[np.ndarray] = ()
    ) -> list[np.ndarray]:
        if self._override is not None:
            return self._override(args, outer)[: len(self.node.outputs)]
        feeds = {}
        for name, value in zip(self.input_names, args, strict=True):
            if name is not None:
                feeds[name] = value
        for v, value in zip(self.outer, outer, strict=True):
            feeds[v.name] = value
        results = iter(self._evaluator.run(None, feeds))
        # the one-node model lists only named outputs; realign with the node's output slots
        return [(_as_value(next(results)) if out.name else None) for out in self.node.outputs]


def _as_value(result):
    """Tensors as numpy arrays (0-d kept 0-d); sequences, maps and optionals as they come."""
    if isinstance(result, np.ndarray | np.generic):
        return np.asarray(result)
    return result


def _outer_inputs(node: Node) -> list[Value]:
    refs: dict[int, Value] = {}
    for sub in node.subgraphs():
        for v in sub.outer_references():
            refs.setdefault(id(v), v)
    own = {id(v) for v in node.inputs if v is not None}
    return [v for k, v in refs.items() if k not in own]


# Element types the native executor stores (ONNX TensorProto codes).
NATIVE_DTYPES = {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13}


class PythonPlan:
    """Runs a whole graph node by node through NodeEvaluator. Used when the graph carries values
    the native executor cannot hold (sequences, maps, optionals, strings, bfloat16, float8...),
    so that every valid ONNX model still runs."""

    def __init__(self, model: Model, frozen_defaults: bool = True):
        graph = model.graph
        self.input_names = [
            v.name for v in graph.inputs if not (frozen_defaults and v.name in graph.initializers)
        ]
        self.output_names = [v.name for v in graph.outputs]
        self._inputs = [v for v in graph.inputs if v.name in self.input_names]
        self._constants = {
            id(v): v.const.numpy()
            for v in graph.initializers.values()
            if v.name not in self.input_names
        }
        self._steps = [(node, NodeEvaluator(node, model)) for node in graph.nodes]
        self._outputs = list(graph.outputs)
        self.native_ops: dict[str, int] = {}
        self.fallback_ops: dict[str, int] = {}
        for node, _ in self._steps:
            self.fallback_ops[node.qualified_op] = self.fallback_ops.get(node.qualified_op, 0) + 1
        self.fallback_reasons = {
            op: "graph carries values the native executor cannot hold" for op in self.fallback_ops
        }
        self.precomputed = 0
        self.program = self  # the session calls plan.program.run(feeds)

    def run(self, feeds: list) -> list:
        env: dict[int, object] = dict(self._constants)
        for value, array in zip(self._inputs, feeds, strict=True):
            env[id(value)] = array
        for node, evaluator in self._steps:
            args = [env[id(v)] if v is not None else None for v in node.inputs]
            outer = [env[id(v)] for v in evaluator.outer]
            for out, result in zip(node.outputs, evaluator(args, outer), strict=True):
                if out.name:
                    env[id(out)] = result
        return [_fresh(env[id(v)]) for v in self._outputs]


def _fresh(value):
    return value.copy() if isinstance(value, np.ndarray) else value


def needs_python_plan(model: Model) -> str | None:
    """Why the native executor cannot run this graph, or None if it can."""
    graph = model.graph
    values = list(graph.inputs) + list(graph.outputs)
    values += [v for n in graph.nodes for v in n.outputs if v.name]
    for v in values:
        if v.type_payload is not None:
            return f"value %{v.name} is not a tensor"
        if v.dtype is not None and v.dtype not in NATIVE_DTYPES:
            return f"value %{v.name} has an element type the native executor does not hold"
    for v in graph.initializers.values():
        if v.const.dtype not in NATIVE_DTYPES:
            return f"initializer %{v.name} has an element type the native executor does not hold"
    return None
