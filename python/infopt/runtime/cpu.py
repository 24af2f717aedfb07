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

from .. import _C
from ..ir import Model, Node, Value, dtype_name, to_numpy_dtype
from ..ops._body import ACTIVATIONS
from ..ops.fused_conv import CONV_ATTRS, parse_op_name
from ..ops.fused_ops import ACT_PREFIX, GEMM_ATTRS
from ..ops.nchwc import parse_conv_name, parse_scale_shift_name, pool_attrs
from .fallback import NodeEvaluator, computable_ahead


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


def build_plan(
    model: Model, num_threads: int = 0, frozen_defaults: bool = True, hand_over: bool = False
) -> CpuPlan:
    """``frozen_defaults``: IR v3 initializer-inputs are treated as constants (the caller builds
    another plan when a feed overrides one).

    Memory: the program borrows read-only arrays (the IR's loaded weights, the constants
    computed here) and copies writable ones. It packs its weights here, not at the first run,
    and frees each original (its copy or its reference) that only a packed copy reads. With
    ``hand_over`` (the caller owns the model) the IR first forgets every initializer array it
    can load again, so that a weight is held once, by the program; a later reader of the IR (a
    plan for overridden initializers) loads it again."""
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
        if computable_ahead(node, constants):
            args = [constants[id(v)] if v is not None else None for v in node.inputs]
            results = NodeEvaluator(node, model)(args)
            for out, result in zip(node.outputs, results, strict=False):
                if out.name:
                    constants[id(out)] = _private_readonly(result)
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
    constants.clear()  # the program holds what it needs
    if hand_over:
        for value in graph.initializers.values():
            value.const.drop_array()
    program.prepare(release_packed_constants=True)
    return plan


def _contiguous(array: np.ndarray) -> np.ndarray:
    return np.require(array, requirements="C")


def _private_readonly(result) -> np.ndarray:
    """A computed constant as an array nothing else can write to, so the program borrows it:
    a view (say, a Reshape of an initializer the caller may change) is copied first."""
    array = np.require(result, requirements=["C", "O"])
    array.flags.writeable = False
    return array


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
_ACT_DEFAULTS = {
    "LeakyRelu": [0.01],
    "HardSigmoid": [0.2, 0.5],
    "Clip": [-3.4028235e38, 3.4028235e38],
}
# activations the native epilogue implements (Silu runs through the op's ONNX function)
_NATIVE_ACTIVATIONS = {
    "",
    "Relu",
    "LeakyRelu",
    "Clip",
    "Sigmoid",
    "Tanh",
    "HardSigmoid",
    "HardSwish",
    "Gelu",
    "GeluTanh",
}


# op -> (first opset with operands as inputs, attribute names of inputs 1..n)
_TENSOR_INPUT_FORMS = {
    "Clip": (11, ["min", "max"]),
    "Squeeze": (13, ["axes"]),
    "Unsqueeze": (13, ["axes"]),
    "Slice": (10, ["starts", "ends", "axes", "steps"]),
}


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


def _epilogue(node: Node, activation: str | None, prefix: str) -> dict[str, Any]:
    """``activation``/``activation_params`` from a fused op's attributes (named ``alpha`` or,
    for Gemm-like ops whose own alpha/beta would clash, ``activation_alpha``)."""
    activation = activation or ""
    if activation not in _NATIVE_ACTIVATIONS:
        raise NotNative(f"activation {activation} has no native epilogue")
    names = ACTIVATIONS.get(activation, [])
    defaults = _ACT_DEFAULTS.get(activation, [])
    params = [
        float(node.attr(prefix + name, defaults[i] if i < len(defaults) else 0.0))
        for i, name in enumerate(names)
    ]
    return {"activation": activation, "activation_params": params}


def _split_act(op_type: str, stem: str) -> str | None:
    rest = op_type[len(stem) :]
    if rest and rest not in ACTIVATIONS:
        raise NotNative(f"unknown activation in infopt.{op_type}")
    return rest or None


def _conv_step(
    node: Node, native: str, residual: bool, activation: str | None
) -> tuple[str, list[Value | None], dict[str, Any]]:
    """A FusedConv-style node (X, W, B?, Z? when ``residual``) as native ``native``'s step:
    inputs (X, W, B, Z) with absent ones None, Conv attributes plus the activation's."""
    attrs = {a: node.attr(a) for a in CONV_ATTRS if a in node.attrs}
    attrs.update(_epilogue(node, activation, ""))
    inputs = list(node.inputs[:3]) + [None] * (3 - len(node.inputs[:3]))
    inputs.append(node.inputs[3] if residual else None)
    _require_dtype(node, native, inputs[:2])
    return native, inputs, attrs


_NCHWC_POOLS = {"NchwcMaxPool": "MaxPool", "NchwcAveragePool": "AveragePool"}


def _nchwc_step(node: Node, opset: int) -> tuple[str, list[Value | None], dict[str, Any]] | None:
    """The NCHWc layout's ops (``ops.nchwc``), or None for another infopt op. Both conv forms
    (NCHWc or plain NCHW X) are one native op: it tells them apart by X's rank."""
    op, inputs = node.op_type, list(node.inputs)
    parsed = parse_conv_name(op)
    if parsed is not None:
        return _conv_step(node, "infopt.NchwcConv", *parsed[1:])
    affine = parse_scale_shift_name(op)
    if affine is not None:
        _require_dtype(node, "infopt.NchwcScaleShift", inputs[:3])
        return "infopt.NchwcScaleShift", inputs[:3], _epilogue(node, affine[0], "")
    if op in _NCHWC_POOLS:
        names = pool_attrs(_NCHWC_POOLS[op], opset)
        attrs = {a: node.attr(a) for a in names if a in node.attrs}
    elif op == "ReorderFromNchwc":
        attrs = {"channels": int(node.attr("channels"))}
    elif op in ("ReorderToNchwc", "NchwcGlobalAveragePool"):
        attrs = {}
    else:
        return None
    _require_dtype(node, f"infopt.{op}", inputs[:1])
    return f"infopt.{op}", inputs[:1], attrs


def _infopt_step(node: Node, opset: int) -> tuple[str, list[Value | None], dict[str, Any]]:
    op = node.op_type
    inputs: list[Value | None] = list(node.inputs)
    parsed = parse_op_name(op)
    if parsed is not None:
        return _conv_step(node, "infopt.FusedConv", *parsed)
    nchwc = _nchwc_step(node, opset)
    if nchwc is not None:
        return nchwc
    if op.startswith("FusedGemm"):
        attrs = {a: node.attr(a) for a in GEMM_ATTRS if a in node.attrs}
        attrs.update(_epilogue(node, _split_act(op, "FusedGemm"), ACT_PREFIX))
        _require_dtype(node, "infopt.FusedGemm", inputs[:2])
        return "infopt.FusedGemm", inputs, attrs
    if op.startswith("FusedMatMul"):
        attrs = _epilogue(node, _split_act(op, "FusedMatMul"), ACT_PREFIX)
        _require_dtype(node, "infopt.FusedMatMul", inputs[:2])
        return "infopt.FusedMatMul", inputs, attrs
    if op in ("Attention", "AttentionBshd"):
        _require_dtype(node, "infopt.Attention", inputs[:3])
        attrs = {"kt": 1} if op == "Attention" else {"bshd": 1}
        if "scale" in node.attrs:
            attrs["scale"] = float(node.attr("scale"))
        return "infopt.Attention", inputs, attrs
    if op in ("Gelu", "GeluTanh"):
        _require_dtype(node, "Gelu", inputs[:1])
        return "Gelu", inputs[:1], {"approximate": "tanh" if op == "GeluTanh" else "none"}
    if op == "LayerNorm":
        _require_dtype(node, "LayerNormalization", inputs[:1])
        return "LayerNormalization", inputs, {"axis": -1, "epsilon": node.attr("epsilon", 1e-5)}
    raise NotNative(f"no native kernel for infopt.{op}")


def canonical_native_step(
    node: Node, opset: int, constants: dict[int, np.ndarray], native: set[str]
) -> tuple[str, list[Value | None], dict[str, Any]]:
    """(native op key, step inputs, attributes) for a node the C++ backend can run."""
    if node.domain == "infopt":
        op, inputs, attrs = _infopt_step(node, opset)
        if op not in native:
            raise NotNative(f"no native kernel for {op}")
        return op, inputs, attrs
    if node.domain not in ("", "ai.onnx"):
        raise NotNative(f"custom-domain op {node.qualified_op}")
    op = node.op_type
    if op not in native:
        raise NotNative(f"no native kernel for {op}")
    inputs: list[Value | None] = list(node.inputs)
    if op == "ConstantOfShape":
        value = node.attr("value")
        array = value.numpy() if value is not None else np.zeros(1, np.float32)
        attrs: dict[str, Any] = {"dtype": int(value.dtype) if value is not None else 1}
        fill = array.reshape(-1)[0]
        if array.dtype.kind in "iub":
            attrs["value_int"] = int(fill)
        else:
            attrs["value"] = float(fill)
        return op, inputs, attrs
    attrs = _plain_attrs(node)
    data = [inputs[1]] if op == "Where" else inputs[:1]
    if op == "Pow" and len({v.dtype for v in inputs if v is not None}) > 1:
        raise NotNative("Pow with mixed dtypes")
    _require_dtype(node, op, data)
    if op in _TENSOR_INPUT_FORMS and opset >= _TENSOR_INPUT_FORMS[op][0]:
        # constant operands become attributes; otherwise the kernel reads the tensor form
        names = _TENSOR_INPUT_FORMS[op][1]
        try:
            arrays = [_const_input(node, i, constants) for i in range(1, 1 + len(names))]
        except NotNative:
            return op, inputs, attrs
        for name, arr in zip(names, arrays, strict=True):
            if arr is not None:
                attrs[name] = float(arr) if op == "Clip" else [int(a) for a in arr]
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


def _native_dtypes() -> dict[str, set[str]]:
    global _DTYPES
    if _DTYPES is None:
        table = getattr(_C, "native_op_dtypes", dict)()
        _DTYPES = {op: set(names) for op, names in table.items()}
    return _DTYPES


_DTYPES: dict[str, set[str]] | None = None


def _require_dtype(node: Node, op: str, values: list[Value | None]) -> None:
    """The native kernel for ``op`` accepts these data inputs' element types (float32 only
    unless the backend's dtype table says more)."""
    allowed = _native_dtypes().get(op, {"float32"})
    for v in values:
        if v is None:
            continue
        if v.dtype is None:
            raise NotNative(f"{node.op_type} input %{v.name} is of unknown type")
        if to_numpy_dtype(v.dtype).name not in allowed:
            raise NotNative(f"{node.op_type} has no native kernel for {dtype_name(v.dtype)}")
