"""Lowering an IR model to a native ``_C.Program`` for the CPU executor.

Planning, once per session: constants are computed ahead of time (nodes whose inputs are all
constant run here, once, so ConstantOfShape-built weights cost nothing per call); every other
node becomes a native step when the C++ backend has a kernel for it and its attributes can be
given in the kernel's canonical form, or a fallback step (onnx's reference evaluator) otherwise.
The executor then runs the whole schedule in C++ and plans buffers per input-shape signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import TensorProto

from .. import _C
from ..ir import Model, Node, Value
from ..ops.fused_conv import ACTIVATIONS, parse_op_name
from .fallback import NodeEvaluator

# ops whose kernels move bytes and so accept every dtype
_DTYPE_GENERIC = {
    "Concat",
    "Reshape",
    "Flatten",
    "Transpose",
    "Identity",
    "Dropout",
    "Squeeze",
    "Unsqueeze",
    "Gather",
    "Slice",
    "Shape",
}
_NONDETERMINISTIC = {
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
}


class NotNative(Exception):
    """This node must use the fallback (the message says why)."""


@dataclass
class CpuPlan:
    program: Any
    input_names: list[str]
    output_names: list[str]
    native_ops: dict[str, int] = field(default_factory=dict)
    fallback_ops: dict[str, int] = field(default_factory=dict)
    fallback_reasons: dict[str, str] = field(default_factory=dict)
    precomputed: int = 0


def build_plan(model: Model, num_threads: int = 0, frozen_defaults: bool = True) -> CpuPlan:
    """``frozen_defaults``: IR v3 initializer-inputs are treated as constants (the caller builds
    another plan when a feed overrides one)."""
    graph = model.graph
    program = _C.Program(num_threads)
    ids: dict[int, int] = {}

    def vid(value: Value) -> int:
        if id(value) not in ids:
            ids[id(value)] = program.add_value(value.name)
        return ids[id(value)]

    constants: dict[int, np.ndarray] = {}
    feedable = [v for v in graph.inputs if not (frozen_defaults and v.name in graph.initializers)]
    feedable_ids = {id(v) for v in feedable}
    for value in graph.initializers.values():
        if id(value) not in feedable_ids:
            constants[id(value)] = value.const.numpy()

    plan = CpuPlan(program, [v.name for v in feedable], [v.name for v in graph.outputs])
    native = set(_C.native_ops())
    evaluated_outside: list[Node] = []
    for node in graph.nodes:
        if _precomputable(node, constants):
            args = [constants[id(v)] if v is not None else None for v in node.inputs]
            results = NodeEvaluator(node, model)(args)
            for out, result in zip(node.outputs, results, strict=False):
                if out.name:
                    constants[id(out)] = np.require(result, requirements="C")
            plan.precomputed += 1
            continue
        evaluated_outside.append(node)

    # only constants that some step or output reads are handed to the executor
    needed = {id(v) for n in evaluated_outside for v in _step_inputs(n) if v is not None}
    needed |= {id(v) for v in graph.outputs}
    all_values = {id(v): v for v in graph.all_values()}
    for key in needed & constants.keys():
        program.set_constant(vid(all_values[key]), _contiguous(constants[key]))

    opset = model.opset("")
    for node in evaluated_outside:
        key = node.qualified_op
        try:
            op, inputs, attrs = canonical_native_step(node, opset, constants, native)
            program.add_native_step(
                op,
                [vid(v) if v is not None else -1 for v in inputs],
                [vid(v) for v in node.outputs if v.name],
                attrs,
            )
            plan.native_ops[key] = plan.native_ops.get(key, 0) + 1
        except (NotNative, ValueError) as why:
            _add_fallback_step(program, node, model, vid)
            plan.fallback_ops[key] = plan.fallback_ops.get(key, 0) + 1
            plan.fallback_reasons.setdefault(key, str(why))
    program.set_io([vid(v) for v in feedable], [vid(v) for v in graph.outputs])
    return plan


def _contiguous(array: np.ndarray) -> np.ndarray:
    return np.require(array, requirements="C")


def _precomputable(node: Node, constants: dict[int, np.ndarray]) -> bool:
    if node.op_type in _NONDETERMINISTIC or any(True for _ in node.subgraphs()):
        return False
    present = [v for v in node.inputs if v is not None]
    if not present:
        return node.op_type == "Constant" and node.domain in ("", "ai.onnx")
    return all(id(v) in constants for v in present)


def _step_inputs(node: Node) -> list[Value | None]:
    outer = []
    for sub in node.subgraphs():
        outer.extend(sub.outer_references())
    return [*node.inputs, *outer]


def _add_fallback_step(program, node: Node, model: Model, vid) -> None:
    evaluator = NodeEvaluator(node, model)
    n_inputs = len(node.inputs)
    outer_values = evaluator.outer
    outs = [v for v in node.outputs if v.name]
    out_index = [i for i, v in enumerate(node.outputs) if v.name]

    def step(args: list[np.ndarray | None]) -> list[np.ndarray]:
        results = evaluator(args[:n_inputs], args[n_inputs:])
        # np.require, not ascontiguousarray: the latter turns 0-d results into 1-d
        return [np.require(results[i], requirements="C") for i in out_index]

    inputs = [vid(v) if v is not None else -1 for v in node.inputs]
    inputs += [vid(v) for v in outer_values]
    program.add_python_step(step, inputs, [vid(v) for v in outs], evaluator.label)


# ============================================================ canonical native attributes =====
def _const_input(node: Node, index: int, constants: dict[int, np.ndarray]) -> np.ndarray | None:
    if index >= len(node.inputs) or node.inputs[index] is None:
        return None
    value = node.inputs[index]
    if id(value) not in constants:
        raise NotNative(f"input {index} (%{value.name}) of {node.op_type} is not constant")
    return constants[id(value)]


def _plain_attrs(node: Node) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for name, a in node.attrs.items():
        if a.type in ("INT", "FLOAT", "STRING", "INTS", "FLOATS"):
            attrs[name] = a.value
        else:
            raise NotNative(f"attribute {name} of type {a.type} has no native form")
    return attrs


def canonical_native_step(
    node: Node, opset: int, constants: dict[int, np.ndarray], native: set[str]
) -> tuple[str, list[Value | None], dict[str, Any]]:
    """(native op key, step inputs, attributes) for a node the C++ backend can run."""
    if node.domain == "infopt":
        parsed = parse_op_name(node.op_type)
        if parsed is None or "infopt.FusedConv" not in native:
            raise NotNative(f"no native kernel for infopt.{node.op_type}")
        residual, activation = parsed
        attrs = _plain_attrs(node)
        params = [float(attrs.pop(a)) for a in ACTIVATIONS.get(activation or "", []) if a in attrs]
        if activation == "LeakyRelu" and not params:
            params = [0.01]
        if activation == "HardSigmoid" and len(params) < 2:
            params = [0.2, 0.5]
        attrs["activation"] = activation or ""
        attrs["activation_params"] = params
        inputs = list(node.inputs[:3]) + [None] * (3 - len(node.inputs[:3]))
        inputs.append(node.inputs[3] if residual else None)
        _require_float(node, [inputs[0], inputs[1]])
        return "infopt.FusedConv", inputs, attrs
    if node.domain not in ("", "ai.onnx"):
        raise NotNative(f"custom-domain op {node.qualified_op}")
    op = node.op_type
    if op not in native:
        raise NotNative(f"no native kernel for {op}")
    attrs = _plain_attrs(node)
    inputs: list[Value | None] = list(node.inputs)
    if op not in _DTYPE_GENERIC:
        _require_float(node, [v for v in inputs if v is not None])
    if op == "Clip" and opset >= 11:
        lo, hi = _const_input(node, 1, constants), _const_input(node, 2, constants)
        if lo is not None:
            attrs["min"] = float(lo)
        if hi is not None:
            attrs["max"] = float(hi)
        inputs = inputs[:1]
    elif op in ("Squeeze", "Unsqueeze") and opset >= 13:
        axes = _const_input(node, 1, constants)
        if axes is not None:
            attrs["axes"] = [int(a) for a in axes]
        inputs = inputs[:1]
    elif op == "Slice" and opset >= 10:
        for index, name in enumerate(("starts", "ends", "axes", "steps"), start=1):
            arr = _const_input(node, index, constants)
            if arr is not None:
                attrs[name] = [int(a) for a in arr]
        inputs = inputs[:1]
    elif op == "Softmax" or op == "LogSoftmax":
        attrs["legacy_coerce_2d"] = int(opset < 13)
    elif op == "Dropout":
        if len(inputs) > 2 and inputs[2] is not None:
            raise NotNative("Dropout with training_mode input")
        if len(node.outputs) > 1 and node.outputs[1].name:
            raise NotNative("Dropout mask output is used")
        inputs = inputs[:1]
        attrs = {}
    elif op in ("MaxPool",) and len(node.outputs) > 1 and node.outputs[1].name:
        raise NotNative("MaxPool indices output")
    elif op == "BatchNormalization" and sum(1 for v in node.outputs if v.name) > 1:
        raise NotNative("BatchNormalization in training mode")
    return op, inputs, attrs


def _require_float(node: Node, values: list[Value | None]) -> None:
    for v in values:
        if v is not None and v.dtype not in (TensorProto.FLOAT,):
            raise NotNative(
                f"{node.op_type} input %{v.name} is "
                f"{'of unknown type' if v.dtype is None else 'not float32'}"
            )
