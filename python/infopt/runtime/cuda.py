"""Lowering an IR model to Triton launches for ``CUDAExecutionProvider``.

Planning, once per model: constant subgraphs are computed on the host (as ``runtime.cpu`` does);
then hot ops are lowered to infopt's Triton kernels (``infopt.kernels``), fusing as they go:

- Conv / infopt.FusedConv* [+ BatchNormalization folded into the weights] [+ Add/Sum residual]
  [+ activation] -> one implicit-GEMM convolution with its epilogue;
- MatMul / Gemm [* or / scalar] [+ bias] [+ residual] [+ activation], infopt.FusedMatMul<Act> /
  FusedGemm<Act> -> one GEMM (HardSwish, which no epilogue computes, as an in-place pointwise
  pass after it);
- infopt.Attention(Q, Kt, V, Mask) -> flash attention (Kt read transposed through strides, the
  additive mask broadcast with stride 0); Add(x, mask) -> Softmax -> one masked softmax;
- LayerNormalization / infopt.LayerNorm / RMSNorm -> one norm kernel;
- Gather (axis 0) / GatherND -> the row-gather kernel (embeddings, mask lookups);
- chains of elementwise ops whose intermediates have one use -> one generated pointwise kernel,
  float or integer/bool (Cast, comparisons, And/Or/Not, Where: the mask math);
- pooling, global pooling and reductions -> their kernels; Reshape/Flatten/Squeeze/Unsqueeze/
  Transpose/Slice/Expand/Split -> views (kernels take strides), Concat -> strided copies.

Shape arithmetic (integer values computed from Shape and constants only: Gather of a shape,
Range, Concat of shape vectors, ...) stays on the host: it is a few elements that Reshape,
Expand and Slice read there anyway. Every other node that cannot be lowered runs through the
CPU fallback (``NodeEvaluator``) on host copies; both are listed in ``fallback_ops`` with the
reason, and ``shape_ops`` counts the former.

Buffers are planned once per input-shape signature: the first run allocates every kernel output
and keeps them all (their storage pointers show which values alias which); ``_plan_buffers``
then assigns those outputs to a few shared slots by liveness (as the CPU executor's memory
planner does), and later runs write into the slots
(with ``cuda_graphs=True`` on a GPU, they replay one captured CUDA graph when the plan has no
host step).

torch and triton are imported only here and in ``infopt.kernels``: the CPU path never loads them.
Under ``TRITON_INTERPRET=1`` the plan runs on torch CPU tensors through Triton's interpreter,
which is how it is tested without a GPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import TensorProto

from ..ir import Model, Node, Value
from ..ops.fused_conv import parse_op_name
from .fallback import NodeEvaluator, computable_ahead

_FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16)


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _c_order(array):
    """C-contiguous numpy array; unlike np.ascontiguousarray, keeps 0-d arrays 0-d."""
    return np.require(array, requirements="C")


def cuda_unavailable_reason() -> str | None:
    """None when the GPU path can run: torch + triton + an NVIDIA GPU, or torch + triton under
    ``TRITON_INTERPRET=1`` (CPU tensors); otherwise one line saying what is missing."""
    try:
        import torch
    except ImportError:
        return "torch is not installed (pip install 'infopt[gpu]')"
    try:
        import triton  # noqa: F401
    except ImportError:
        return "triton is not installed (pip install 'infopt[gpu]')"
    if _interpreting():
        return None
    if not torch.cuda.is_available():
        return "no NVIDIA GPU is visible to torch (torch.cuda.is_available() is False)"
    if getattr(torch.version, "hip", None):
        return "infopt's Triton kernels target NVIDIA GPUs; this torch is a ROCm build"
    return None


class _NotLowered(Exception):
    """This node runs through the fallback (the message says why)."""


@dataclass
class _Step:
    label: str
    inputs: list[Value | None]
    outputs: list[Value]
    fn: Callable[[list[Any], list[Any] | None], list[Any]]
    host: bool = False  # fallback: reads and writes numpy arrays
    allocates: bool = True  # kernel step whose outputs may be reused per signature
    order: int = 0  # index of the step's last node: a fused step runs where its last node was
    host_args: tuple[int, ...] = ()  # inputs a kernel step reads on the host (shape vectors)
    shape: bool = False  # shape arithmetic: its outputs depend on the input shapes only


@dataclass
class CudaPlan:
    """A model lowered to Triton launches. ``run(feeds)`` takes numpy arrays in
    ``input_names`` order and returns numpy arrays in ``output_names`` order."""

    input_names: list[str]
    output_names: list[str]
    native_ops: dict[str, int] = field(default_factory=dict)
    fallback_ops: dict[str, int] = field(default_factory=dict)
    fallback_reasons: dict[str, str] = field(default_factory=dict)
    fused: dict[str, int] = field(default_factory=dict)
    shape_ops: dict[str, int] = field(default_factory=dict)  # host steps that are shape math
    precomputed: int = 0
    device: str = "cpu"
    precision: str = "ieee"
    cuda_graphs: bool = False
    _steps: list[_Step] = field(default_factory=list, repr=False)
    _inputs: list[Value] = field(default_factory=list, repr=False)
    _outputs: list[Value] = field(default_factory=list, repr=False)
    _constants: dict[int, Any] = field(default_factory=dict, repr=False)
    # constants read on the host (shape vectors, fallback inputs): kept as numpy so that no run
    # copies them back from the device
    _host_constants: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _buffers: dict[tuple, list[list[Any] | None]] = field(default_factory=dict, repr=False)
    # shape arithmetic's results per signature (off when an op's output shape depends on data)
    _shape_results: dict[tuple, dict[int, list]] | None = field(default_factory=dict, repr=False)
    buffer_stats: dict[tuple, dict[str, int]] = field(default_factory=dict)
    _graphs: dict[tuple, Any] = field(default_factory=dict, repr=False)

    @property
    def steps(self) -> list[str]:
        return [s.label for s in self._steps]

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        if len(feeds) != len(self._inputs):
            raise ValueError(f"expected {len(self._inputs)} feeds, got {len(feeds)}")
        signature = tuple((tuple(np.shape(f)), str(np.asarray(f).dtype)) for f in feeds)
        graph = self._graphs.get(signature)
        if graph is not None:
            return graph.replay(feeds)
        first = signature not in self._buffers
        buffers = self._buffers.get(signature, [None] * len(self._steps))
        env: dict[int, Any] = dict(self._constants)
        for value, array in zip(self._inputs, feeds, strict=True):
            env[id(value)] = torch.from_numpy(_c_order(array)).to(self.device)
        shapes = (
            None if self._shape_results is None else self._shape_results.setdefault(signature, {})
        )
        self._execute(env, buffers, shapes)
        results = [_to_host(env[id(v)]) for v in self._outputs]
        if first:
            self._buffers[signature], self.buffer_stats[signature] = self._plan_buffers(env)
        if (
            self.cuda_graphs
            and not first
            and self.device == "cuda"
            and not any(s.host for s in self._steps)
        ):
            self._graphs[signature] = _CapturedGraph.capture(self, feeds, buffers)
        return results

    def _execute(
        self, env: dict[int, Any], buffers: list[list[Any] | None], shapes: dict | None = None
    ) -> None:
        host = self._host_constants

        def on_host(v: Value) -> Any:
            return host[id(v)] if id(v) in host else _to_host(env[id(v)])

        for index, step in enumerate(self._steps):
            if step.shape and shapes is not None and index in shapes:
                for value, result in zip(step.outputs, shapes[index], strict=False):
                    env[id(value)] = result
                continue
            if step.host:
                args = [on_host(v) if v is not None else None for v in step.inputs]
            else:
                args = [
                    None
                    if v is None
                    else on_host(v)
                    if i in step.host_args
                    else _to_device(env[id(v)], self.device)
                    for i, v in enumerate(step.inputs)
                ]
            outs = step.fn(args, buffers[index] if step.allocates else None)
            if step.shape and shapes is not None:
                shapes[index] = outs
            for value, result in zip(step.outputs, outs, strict=False):
                env[id(value)] = result

    def _plan_buffers(self, env: dict[int, Any]) -> tuple[list, dict[str, int]]:
        """Device buffers for this signature's later runs, from the first run's tensors.

        A kernel step's output that owns its storage (not a view of an input) gets a slice of
        a shared slot; a slot is free again after the last step reading any tensor on that
        storage (views included: aliasing is read off the storage pointers). Graph outputs
        are never reused. Slots are assigned greedily in step order, best fit first, and a
        step's outputs are placed before its inputs are released, so a kernel never writes
        over what it reads."""
        import torch

        def storage(t) -> int | None:
            return t.untyped_storage().data_ptr() if isinstance(t, torch.Tensor) else None

        last_use: dict[int, int] = {}
        for index, step in enumerate(self._steps):
            for v in step.inputs:
                if v is not None and (ptr := storage(env.get(id(v)))) is not None:
                    last_use[ptr] = index
        end = len(self._steps)
        for v in self._outputs:
            if (ptr := storage(env.get(id(v)))) is not None:
                last_use[ptr] = end
        owned: dict[int, list[tuple[int, Any]]] = {}  # step -> [(output position, tensor)]
        seen: set[int] = {p for v in self._inputs if (p := storage(env.get(id(v)))) is not None}
        seen |= {p for t in self._constants.values() if (p := storage(t)) is not None}
        for index, step in enumerate(self._steps):
            if step.host or not step.allocates:
                continue
            for pos, v in enumerate(step.outputs):
                t = env.get(id(v))
                ptr = storage(t)
                if ptr is None or ptr in seen:
                    continue
                seen.add(ptr)
                nbytes = t.numel() * t.element_size()
                if t.storage_offset() == 0 and t.untyped_storage().nbytes() == nbytes and nbytes:
                    owned.setdefault(index, []).append((pos, t))
        slots: list[int] = []  # bytes per slot
        free: list[int] = []
        busy: dict[int, list[int]] = {}  # last-use step -> slots to release after it
        placed: dict[int, list[tuple[int, int, Any]]] = {}
        naive = 0
        for index in range(end):
            for pos, t in owned.get(index, []):
                need = t.numel() * t.element_size()
                naive += need
                fits = [s for s in free if slots[s] >= need]
                if fits:
                    slot = min(fits, key=lambda s: slots[s])
                elif free:  # grow the largest free slot rather than open a new one
                    slot = max(free, key=lambda s: slots[s])
                    slots[slot] = need
                else:
                    slot = len(slots)
                    slots.append(need)
                if slot in free:
                    free.remove(slot)
                placed.setdefault(index, []).append((pos, slot, t))
                busy.setdefault(last_use.get(storage(t), index), []).append(slot)
            free.extend(busy.pop(index, []))
        memory = [torch.empty(n, dtype=torch.uint8, device=self.device) for n in slots]
        buffers: list[list[Any] | None] = [None] * end
        for index, items in placed.items():
            outs: list[Any] = [None] * len(self._steps[index].outputs)
            for pos, slot, t in items:
                flat = memory[slot][: t.numel() * t.element_size()].view(t.dtype)
                outs[pos] = flat.as_strided(t.shape, t.stride())
            buffers[index] = outs
        stats = {"tensors": sum(len(v) for v in placed.values()), "naive_bytes": naive,
                 "planned_bytes": sum(slots), "slots": len(slots)}  # fmt: skip
        return buffers, stats


class _CapturedGraph:
    """One CUDA graph replaying the whole plan for one input signature (GPU only)."""

    def __init__(self, plan, graph, static_inputs, static_outputs):
        self.plan, self.graph = plan, graph
        self.static_inputs, self.static_outputs = static_inputs, static_outputs

    @classmethod
    def capture(cls, plan: CudaPlan, feeds, buffers):
        import torch

        try:
            static_inputs = [torch.from_numpy(_c_order(f)).to("cuda") for f in feeds]
            env: dict[int, Any] = dict(plan._constants)
            for value, t in zip(plan._inputs, static_inputs, strict=True):
                env[id(value)] = t
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                plan._execute(dict(env), buffers)  # warm: every autotuner has decided
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                plan._execute(env, buffers)
            outputs = [env[id(v)] for v in plan._outputs]
            return cls(plan, graph, static_inputs, outputs)
        except Exception:  # capture is an optimization: never let it break a run
            return None

    def replay(self, feeds):
        import torch

        for t, f in zip(self.static_inputs, feeds, strict=True):
            t.copy_(torch.from_numpy(_c_order(f)))
        self.graph.replay()
        return [_to_host(t) for t in self.static_outputs]


def _is_token(a: Any, kind: str) -> bool:
    return isinstance(a, tuple) and len(a) == 2 and a[0] == kind


def _to_host(x: Any) -> Any:
    if x is None or isinstance(x, np.ndarray | list):
        return x
    return x.detach().cpu().numpy().copy()


def _to_device(x: Any, device: str) -> Any:
    import torch

    if isinstance(x, np.ndarray):
        return torch.from_numpy(_c_order(x)).to(device)
    return x


# ================================================================================ planning =====
def build_cuda_plan(
    model: Model,
    *,
    precision: str | None = None,
    cuda_graphs: bool = False,
    frozen_defaults: bool = True,
) -> CudaPlan:
    """Lower ``model`` to Triton launches. ``precision`` (ieee|tf32|bf16|fp16, default
    ``$INFOPT_CUDA_PRECISION`` or ieee) is how fp32 GEMMs, convolutions and attention
    multiply. ``frozen_defaults``: IR v3 initializer-inputs are constants."""
    reason = cuda_unavailable_reason()
    if reason is not None:
        from ..errors import InfoptError

        raise InfoptError(f"CUDA plan unavailable: {reason}")
    import torch

    device = "cpu" if _interpreting() else "cuda"
    precision = precision or os.environ.get("INFOPT_CUDA_PRECISION", "ieee")
    graph = model.graph
    feedable = [v for v in graph.inputs if not (frozen_defaults and v.name in graph.initializers)]
    feedable_ids = {id(v) for v in feedable}
    constants: dict[int, np.ndarray] = {}
    for value in graph.initializers.values():
        if id(value) not in feedable_ids:
            constants[id(value)] = value.const.numpy()
    plan = CudaPlan(
        [v.name for v in feedable],
        [v.name for v in graph.outputs],
        device=device,
        precision=precision,
        cuda_graphs=cuda_graphs,
        _inputs=feedable,
        _outputs=list(graph.outputs),
    )
    remaining: list[Node] = []
    for node in graph.nodes:
        if computable_ahead(node, constants):
            args = [constants[id(v)] if v is not None else None for v in node.inputs]
            results = NodeEvaluator(node, model)(args)
            for out, result in zip(node.outputs, results, strict=False):
                constants[id(out)] = _c_order(result)
            plan.precomputed += 1
        else:
            remaining.append(node)
    lowering = _Lowering(model, plan, constants, remaining, torch, device)
    lowering.run()
    if not lowering.shapes_follow_signature():
        plan._shape_results = None  # a Shape downstream could change with the data
    # constants kernels or outputs read, uploaded once; those read on the host stay numpy
    host_read, device_read = set(), {id(v) for v in graph.outputs}
    for step in plan._steps:
        for i, v in enumerate(step.inputs):
            if v is not None:
                (host_read if step.host or i in step.host_args else device_read).add(id(v))
    for key in host_read & constants.keys():
        plan._host_constants[key] = constants[key]
    for key in device_read & constants.keys():
        plan._constants[key] = lowering.device_const(key)
    return plan


def _hard_swish(y):
    """x * HardSigmoid(x; 1/6, 1/2) in place: no GEMM/conv epilogue computes it."""
    from infopt.kernels.pointwise import pointwise

    return pointwise([("hard_sigmoid", 0, 1.0 / 6.0, 0.5), ("mul", 0, 1)], [y], out=y)


def _same_shape(a: Value, b: Value) -> bool:
    """False only when both shapes are known and differ."""
    return a.shape is None or b.shape is None or tuple(a.shape) == tuple(b.shape)


_ACTIVATION_OPS = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "Clip", "Gelu"}
_POINTWISE_UNARY = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Exp": "exp",
    "Log": "log",
    "Sqrt": "sqrt",
    "Reciprocal": "reciprocal",
    "Erf": "erf",
    "Neg": "neg",
    "Abs": "abs",
    "Floor": "floor",
    "Ceil": "ceil",
    "Identity": "identity",
    "Cast": "identity",
    "Dropout": "identity",
}
_POINTWISE_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}
_VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Slice"}
# standard ops whose output shape depends on input *values*: the inputs that set it (None: the
# data itself). Every other standard or infopt op's output shape follows from input shapes.
_VALUE_SHAPED: dict[str, tuple[int, ...] | None] = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "ConstantOfShape": (0,), "Range": (0, 1, 2),
    "Slice": (1, 2, 3, 4), "Pad": (1, 3), "Resize": (1, 2, 3), "Upsample": (1,), "OneHot": (1,),
    "TopK": (1,), "Split": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "ReduceSum": (1,),
    "ReduceMean": (1,), "ReduceMax": (1,), "ReduceMin": (1,), "ReduceProd": (1,),
    "ReduceL1": (1,), "ReduceL2": (1,), "ReduceLogSum": (1,), "ReduceLogSumExp": (1,),
    "ReduceSumSquare": (1,), "CenterCropPad": (1,), "Col2Im": (1, 2), "NonZero": None,
    "Unique": None, "Compress": None, "StringSplit": None, "NonMaxSuppression": None,
}  # fmt: skip
_SHAPE_REASON = (
    "shape arithmetic: integer values computed from tensor shapes and constants only (a few "
    "elements); they stay on the host, where Reshape/Expand/Slice/Range read them"
)
# ONNX dtypes a device pointwise kernel reads and writes, and their torch names
_DEVICE_DTYPES = {
    TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16",
    TensorProto.BFLOAT16: "bfloat16", TensorProto.BOOL: "bool", TensorProto.INT64: "int64",
    TensorProto.INT32: "int32",
}  # fmt: skip
# ops whose pointwise form is exact on integer/bool operands (no division, no transcendental)
_EXACT_ON_INTS = {
    "Add", "Sub", "Mul", "Max", "Min", "Sum", "Neg", "Abs", "Identity", "Cast", "Where",
    "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Not",
}  # fmt: skip
_COMPARE = {
    "Equal": "equal", "Less": "less", "Greater": "greater", "LessOrEqual": "less_equal",
    "GreaterOrEqual": "greater_equal", "Xor": "not_equal",
}  # fmt: skip


class _Lowering:
    def __init__(self, model, plan, constants, nodes, torch, device):
        self.model, self.plan, self.constants = model, plan, constants
        self.nodes, self.torch, self.device = nodes, torch, device
        self.opset = model.opset("")
        self.graph_outputs = {id(v) for v in model.graph.outputs}
        self.consumed: set[int] = set()
        self._device_consts: dict[int, Any] = {}
        self.groups: dict[int, dict] = {}  # output value id -> open pointwise group
        self.position = {id(n): i for i, n in enumerate(nodes)}
        self._keep: list[Value] = []
        self.shape_derived: set[int] = set()  # values computed by shape arithmetic

    # ----------------------------------------------------------------------------- helpers ---
    def device_const(self, key: int):
        if key not in self._device_consts:
            array = self.constants[key]
            self._device_consts[key] = self.torch.from_numpy(_c_order(array)).to(self.device)
        return self._device_consts[key]

    def const(self, value: Value | None) -> np.ndarray | None:
        if value is None:
            return None
        return self.constants.get(id(value))

    def single_consumer(self, value: Value) -> Node | None:
        """The one node reading ``value`` when nothing else (graph outputs included) does."""
        if id(value) in self.graph_outputs:
            return None
        users = value.consumers()
        if len(users) != 1 or len(value.uses) != 1:
            return None
        user = users[0]
        if id(user) in self.consumed or user.domain not in ("", "ai.onnx", "infopt"):
            return None
        return user

    def is_float(self, value: Value | None) -> bool:
        return value is not None and value.dtype in _FLOATS

    def add_step(
        self, nodes: list[Node], inputs, outputs, fn, *, allocates=True, key=None, host_args=()
    ):
        label = "+".join(n.op_type for n in nodes)
        order = max(self.position[id(n)] for n in nodes)
        self.plan._steps.append(
            _Step(label, list(inputs), list(outputs), fn, False, allocates, order, host_args)
        )
        for n in nodes:
            self.consumed.add(id(n))
        op = key or nodes[0].qualified_op
        self.plan.native_ops[op] = self.plan.native_ops.get(op, 0) + 1
        if len(nodes) > 1:
            self.plan.fused[label] = self.plan.fused.get(label, 0) + 1

    def shapes_follow_signature(self) -> bool:
        """Whether every tensor's shape is a function of the input shapes alone: no op sets an
        output shape from values other than constants and shape arithmetic. Then shape
        arithmetic's results are computed once per input signature."""
        fixed = self.constants.keys() | self.shape_derived
        for node in self.nodes:
            if any(True for _ in node.subgraphs()) or node.domain not in ("", "ai.onnx", "infopt"):
                return False
            if node.domain == "infopt" or node.op_type not in _VALUE_SHAPED:
                continue
            which = _VALUE_SHAPED[node.op_type]
            if which is None:
                return False
            for i in which:
                v = node.inputs[i] if i < len(node.inputs) else None
                if v is not None and id(v) not in fixed:
                    return False
        return True

    def shape_arithmetic(self) -> set[int]:
        """Nodes computing integer/bool values from tensor shapes and constants only (Shape,
        then Gather/Concat/Range/Slice/... of its result): they stay on the host."""
        derived: set[int] = set()
        nodes: set[int] = set()
        for node in self.nodes:
            if node.domain not in ("", "ai.onnx") or any(True for _ in node.subgraphs()):
                continue
            if any(v.dtype in _FLOATS for v in node.outputs if v.name):
                continue
            present = [v for v in node.inputs if v is not None]
            if node.op_type in ("Shape", "Size") or (
                any(id(v) in derived for v in present)
                and all(id(v) in derived or id(v) in self.constants for v in present)
            ):
                nodes.add(id(node))
                derived.update(id(v) for v in node.outputs)
        self.shape_derived = derived
        return nodes

    def add_fallback(self, node: Node, why: str, shape: bool = False) -> None:
        evaluator = NodeEvaluator(node, self.model)
        n_inputs = len(node.inputs)
        outer = evaluator.outer

        def fn(args, _outs):
            results = evaluator(args[:n_inputs], args[n_inputs:])
            return [_c_order(r) if isinstance(r, np.ndarray) else r for r in results]

        self.plan._steps.append(
            _Step(
                evaluator.label,
                [*node.inputs, *outer],
                list(node.outputs),
                fn,
                True,
                False,
                self.position[id(node)],
                shape=shape,
            )
        )
        key = node.qualified_op
        self.plan.fallback_ops[key] = self.plan.fallback_ops.get(key, 0) + 1
        if shape:
            self.plan.shape_ops[key] = self.plan.shape_ops.get(key, 0) + 1
            why = _SHAPE_REASON
        elif key in self.plan.shape_ops:
            why = f"{why}; other {key} nodes: {_SHAPE_REASON}"
        if self.plan.fallback_reasons.get(key, _SHAPE_REASON) == _SHAPE_REASON:
            self.plan.fallback_reasons[key] = why

    def activation_of(self, node: Node) -> tuple[str, float, float] | None:
        """(epilogue activation, p0, p1) when ``node`` is one, else None."""
        op = node.op_type
        if node.domain == "infopt" and op in ("Gelu", "GeluTanh"):
            return op, 0.0, 0.0
        if op not in _ACTIVATION_OPS or node.domain not in ("", "ai.onnx"):
            return None
        if op == "Relu":
            return "Relu", 0.0, 0.0
        if op == "Sigmoid" or op == "Tanh":
            return op, 0.0, 0.0
        if op == "LeakyRelu":
            return "LeakyRelu", float(node.attr("alpha", 0.01)), 0.0
        if op == "HardSigmoid":
            return "HardSigmoid", float(node.attr("alpha", 0.2)), float(node.attr("beta", 0.5))
        if op == "Gelu":
            return ("GeluTanh" if node.attr("approximate", "none") == "tanh" else "Gelu"), 0.0, 0.0
        if op == "Clip":
            lo, hi = -3.4e38, 3.4e38
            if self.opset < 11:
                lo, hi = float(node.attr("min", lo)), float(node.attr("max", hi))
            else:
                for index in (1, 2):
                    if index < len(node.inputs) and node.inputs[index] is not None:
                        c = self.const(node.inputs[index])
                        if c is None:
                            return None
                        if index == 1:
                            lo = float(c)
                        else:
                            hi = float(c)
            return "Clip", lo, hi
        return None

    # ------------------------------------------------------------------------------- driver ---
    def run(self) -> None:
        shape_nodes = self.shape_arithmetic()
        for node in self.nodes:
            if id(node) in self.consumed:
                continue
            if id(node) in shape_nodes:
                self.add_fallback(node, _SHAPE_REASON, shape=True)
                continue
            try:
                self.lower(node)
            except _NotLowered as why:
                self.add_fallback(node, str(why))
        self.flush_groups()
        self.plan._steps.sort(key=lambda step: step.order)

    def lower(self, node: Node) -> None:
        if node.domain == "infopt":
            return self.lower_infopt(node)
        if node.domain not in ("", "ai.onnx"):
            raise _NotLowered(f"custom-domain op {node.qualified_op}")
        if any(True for _ in node.subgraphs()):
            raise _NotLowered(f"{node.op_type} has subgraphs")
        op = node.op_type
        if op == "Conv":
            return self.lower_conv(node, None)
        if op in ("MatMul", "Gemm"):
            return self.lower_gemm(node)
        if op in ("Softmax", "LogSoftmax"):
            return self.lower_softmax(node)
        if op in ("LayerNormalization", "SimplifiedLayerNormalization", "RMSNormalization"):
            return self.lower_norm(node)
        if op in ("MaxPool", "AveragePool"):
            return self.lower_pool(node)
        if op in ("GlobalAveragePool", "GlobalMaxPool") or op.startswith("Reduce"):
            return self.lower_reduce(node)
        if self._softmax_mask_user(node) is not None:
            return  # lowered with its Softmax
        if op in _VIEW_OPS or op in ("Expand", "Split"):
            return self.lower_view(node)
        if op == "Concat":
            return self.lower_concat(node)
        if op in ("Gather", "GatherND"):
            return self.lower_gather(node)
        if self.pointwise_expr(node) is not None:
            return self.lower_pointwise(node)
        raise _NotLowered(f"no Triton kernel for {op}")

    # ---------------------------------------------------------------------------- infopt -------
    def lower_infopt(self, node: Node) -> None:
        op = node.op_type
        parsed = parse_op_name(op)
        if parsed is not None:
            return self.lower_conv(node, parsed)
        if op.startswith(("FusedGemm", "FusedMatMul")):
            return self.lower_gemm(node)
        if op in ("LayerNorm", "RMSNorm"):
            return self.lower_norm(node)
        if op in ("Gelu", "GeluTanh"):
            return self.lower_pointwise(node)
        if op == "Attention":
            return self.lower_attention(node)
        raise _NotLowered(f"no Triton kernel for infopt.{op}")

    def fused_activation(self, node: Node, act: str, prefix: str) -> tuple[str, float, float]:
        """(epilogue name, p0, p1) of an infopt op's activation, its parameters read from the
        op's attributes (``prefix`` + alpha/beta/min/max, as ``ops._body`` names them).
        HardSwish has no epilogue code: the step applies it as a pointwise pass after."""

        def param(name: str, default: float) -> float:
            return float(node.attr(prefix + name, default))

        if act in ("Relu", "Sigmoid", "Tanh", "Silu", "Gelu", "GeluTanh", "HardSwish"):
            return act, 0.0, 0.0
        if act == "LeakyRelu":
            return act, param("alpha", 0.01), 0.0
        if act == "HardSigmoid":
            return act, param("alpha", 0.2), param("beta", 0.5)
        if act == "Clip":
            return act, param("min", -3.4e38), param("max", 3.4e38)
        raise _NotLowered(f"infopt.{node.op_type}: unknown activation {act}")

    # ---------------------------------------------------------------------------- attention ----
    def lower_attention(self, node: Node) -> None:
        q, kt, v = node.inputs[:3]
        mask = node.inputs[3] if len(node.inputs) > 3 else None
        if not all(self.is_float(t) for t in (q, kt, v)):
            raise _NotLowered("Attention inputs are not float")
        if mask is not None and not (self.is_float(mask) or mask.dtype == TensorProto.BOOL):
            raise _NotLowered("Attention mask is neither float nor bool")
        if q.shape is not None and len(q.shape) not in (3, 4):
            raise _NotLowered(f"Attention on {len(q.shape)}-D Q (kernel takes [B, H, S, D])")
        scale = float(node.attr("scale", 1.0))
        precision = self.plan.precision
        from infopt.kernels.attention import attention

        def fn(args, outs):
            qt, ktt, vt = args[:3]
            m = args[3] if len(args) > 3 else None
            three = qt.dim() == 3
            if three:  # [B*H, S, D]: one "batch" of B*H heads
                qt, ktt, vt = qt.unsqueeze(0), ktt.unsqueeze(0), vt.unsqueeze(0)
            kt4 = ktt.transpose(-1, -2)  # Kt is [.., D, S]: the kernel reads K through strides
            lead = tuple(qt.shape[:2])
            if tuple(kt4.shape[:2]) != lead and lead[1] % kt4.shape[1] == 0:
                kt4 = kt4.expand(lead[0], *kt4.shape[1:])  # batch-broadcast K/V: stride 0
                vt = vt.expand(lead[0], *vt.shape[1:])
            out = outs[0] if outs else None
            if out is not None and three:
                out = out.unsqueeze(0)
            y = attention(qt, kt4, vt, m, scale=scale, precision=precision, out=out)
            return [y.squeeze(0) if three else y]

        inputs = [q, kt, v] + ([mask] if mask is not None else [])
        self.add_step([node], inputs, node.outputs[:1], fn, key=node.qualified_op)

    # ---------------------------------------------------------------------------- gather -------
    def lower_gather(self, node: Node) -> None:
        data, ids = node.inputs[0], node.inputs[1]
        if data.dtype not in _DEVICE_DTYPES or ids.dtype not in (
            TensorProto.INT64,
            TensorProto.INT32,
        ):
            raise _NotLowered("Gather of an unsupported dtype or with non-int32/64 indices")
        from infopt.kernels.gather import gather_nd, gather_rows

        if node.op_type == "GatherND":
            if int(node.attr("batch_dims", 0)):
                raise _NotLowered("GatherND with batch_dims > 0")

            def fn(args, outs):
                return [gather_nd(args[0], args[1], out=outs[0] if outs else None)]

            self.add_step([node], [data, ids], node.outputs[:1], fn)
            return
        axis = int(node.attr("axis", 0))
        if axis != 0 and not (data.shape is not None and axis == -len(data.shape)):
            raise _NotLowered(f"Gather along axis {axis} (the kernel gathers rows, axis 0)")

        def fn(args, outs):
            return [gather_rows(args[0], args[1], out=outs[0] if outs else None)]

        self.add_step([node], [data, ids], node.outputs[:1], fn)

    # ---------------------------------------------------------------------------- conv ---------
    def lower_conv(self, node: Node, parsed) -> None:
        x, w = node.inputs[0], node.inputs[1]
        wc = self.const(w)
        if wc is None or wc.ndim != 4 or not self.is_float(x):
            raise _NotLowered("Conv needs a constant 4-D weight and a float 2-D image input")
        bias_c = self.const(node.inputs[2]) if len(node.inputs) > 2 else None
        if len(node.inputs) > 2 and node.inputs[2] is not None and bias_c is None:
            raise _NotLowered("Conv bias is not constant")
        auto_pad = node.attr("auto_pad", "NOTSET")
        if auto_pad not in ("NOTSET", "VALID", b"NOTSET", b"VALID"):
            raise _NotLowered(f"Conv auto_pad={auto_pad}")
        group = int(node.attr("group", 1))
        strides = tuple(node.attr("strides", [1, 1]))
        dilations = tuple(node.attr("dilations", [1, 1]))
        pads = node.attr("pads", [0, 0, 0, 0])
        pads = (pads[0], pads[1], pads[2], pads[3])
        weight = wc.astype(np.float64)
        bias = bias_c.astype(np.float64) if bias_c is not None else None
        nodes = [node]
        residual: Value | None = None
        act = None
        out = node.outputs[0]
        if parsed is not None:
            has_res, act_name = parsed
            if has_res:
                residual = node.inputs[3]
            if act_name:
                act = self.fused_activation(node, act_name, "")
        else:
            # BatchNormalization folded into the weights
            user = self.single_consumer(out)
            if (
                user is not None
                and user.op_type == "BatchNormalization"
                and user.inputs[0] is out
                and sum(1 for v in user.outputs if v.name) == 1
                and not user.attr("training_mode", 0)
                and all(self.const(v) is not None for v in user.inputs[1:5])
            ):
                scale, b, mean, var = (self.const(v).astype(np.float64) for v in user.inputs[1:5])
                inv = scale / np.sqrt(var + float(user.attr("epsilon", 1e-5)))
                weight = weight * inv.reshape(-1, 1, 1, 1)
                bias = (bias if bias is not None else 0.0) - mean
                bias = bias * inv + b
                nodes.append(user)
                out = user.outputs[0]
            user = self.single_consumer(out)
            if (
                user is not None
                and user.op_type in ("Add", "Sum")
                and len(user.inputs) == 2
                and _same_shape(user.outputs[0], out)
            ):
                other = user.inputs[1] if user.inputs[0] is out else user.inputs[0]
                if other is not out and self.is_float(other):
                    residual = other
                    nodes.append(user)
                    out = user.outputs[0]
            user = self.single_consumer(out)
            if user is not None and user.inputs[0] is out:
                act = self.activation_of(user)
                if act is not None:
                    nodes.append(user)
                    out = user.outputs[0]
        torch = self.torch
        dtype = {TensorProto.FLOAT16: torch.float16, TensorProto.BFLOAT16: torch.bfloat16}.get(
            x.dtype, torch.float32
        )
        w_dev = torch.from_numpy(weight.astype(np.float32)).to(self.device, dtype)
        b_dev = (
            torch.from_numpy(bias.astype(np.float32)).to(self.device, torch.float32)
            if bias is not None
            else None
        )
        from infopt.kernels.conv import conv2d, prepack_weight

        packed = prepack_weight(w_dev, group)
        precision = self.plan.precision
        act_name, p0, p1 = act if act is not None else (None, 0.0, 0.0)
        post = _hard_swish if act_name == "HardSwish" else None
        if post is not None:
            act_name = None
        if auto_pad in ("VALID", b"VALID"):
            pads = (0, 0, 0, 0)

        def fn(args, outs):
            xt = args[0]
            if xt.dim() != 4:
                raise ValueError(f"Conv input must be 4-D, got {list(xt.shape)}")
            y = conv2d(
                xt, w_dev, b_dev, args[1] if len(args) > 1 else None,
                strides=strides, pads=pads, dilations=dilations, groups=group,
                activation=act_name, act_params=(p0, p1), precision=precision,
                packed=packed, out=outs[0] if outs else None,
            )  # fmt: skip
            return [post(y) if post else y]

        inputs = [x] + ([residual] if residual is not None else [])
        self.add_step(nodes, inputs, [out], fn, key="Conv" if parsed is None else None)

    # ---------------------------------------------------------------------------- gemm ---------
    def lower_gemm(self, node: Node) -> None:
        """MatMul/Gemm with what follows fused in; infopt.FusedGemm<Act> / FusedMatMul<Act>
        carry their bias and activation themselves."""
        a, b = node.inputs[0], node.inputs[1]
        if not (self.is_float(a) and self.is_float(b)):
            raise _NotLowered(f"{node.op_type} inputs are not float")
        alpha = 1.0
        bias_c = None
        residual = None
        trans_a = trans_b = False
        nodes = [node]
        out = node.outputs[0]
        op = node.op_type
        fused_act = None
        if node.domain == "infopt":
            base = "FusedGemm" if op.startswith("FusedGemm") else "FusedMatMul"
            if op[len(base) :]:
                fused_act = self.fused_activation(node, op[len(base) :], "activation_")
        if op == "Gemm" or op.startswith("FusedGemm"):
            alpha = float(node.attr("alpha", 1.0))
            beta = float(node.attr("beta", 1.0))
            trans_a, trans_b = bool(node.attr("transA", 0)), bool(node.attr("transB", 0))
            if len(node.inputs) > 2 and node.inputs[2] is not None:
                c = self.const(node.inputs[2])
                if c is not None and c.ndim >= 1 and c.size == c.shape[-1] > 1:
                    bias_c = (beta * c.astype(np.float64)).reshape(-1)
                elif c is not None:
                    residual = ("const", beta * c.astype(np.float64))
                elif beta == 1.0:
                    residual = node.inputs[2]
                else:
                    raise _NotLowered("Gemm with a non-constant C and beta != 1")
        elif node.domain == "infopt":  # FusedMatMul: C broadcasts over the output (a bias)
            if len(node.inputs) > 2 and node.inputs[2] is not None:
                c = self.const(node.inputs[2])
                if c is not None and c.ndim >= 1 and c.size == c.shape[-1] > 1:
                    bias_c = c.astype(np.float64).reshape(-1)
                elif c is not None:
                    residual = ("const", c.astype(np.float64))
                else:
                    residual = node.inputs[2]
        else:
            user = self.single_consumer(out)
            if user is not None and user.op_type in ("Mul", "Div") and len(user.inputs) == 2:
                other = user.inputs[1] if user.inputs[0] is out else user.inputs[0]
                c = self.const(other)
                if (
                    c is not None
                    and c.size == 1
                    and not (user.op_type == "Div" and other is user.inputs[0])
                ):
                    alpha = (
                        float(c.reshape(()))
                        if user.op_type == "Mul"
                        else 1.0 / float(c.reshape(()))
                    )
                    nodes.append(user)
                    out = user.outputs[0]
            user = self.single_consumer(out)
            if user is not None and user.op_type == "Add" and len(user.inputs) == 2:
                other = user.inputs[1] if user.inputs[0] is out else user.inputs[0]
                c = self.const(other)
                if c is not None and c.ndim == 1 and other is not out:
                    bias_c = c.astype(np.float64)
                    nodes.append(user)
                    out = user.outputs[0]
        user = self.single_consumer(out)
        if (
            residual is None
            and fused_act is None  # act(x @ w + c) + r: the residual would come after the act
            and user is not None
            and user.op_type == "Add"
            and len(user.inputs) == 2
            and _same_shape(user.outputs[0], out)
        ):
            other = user.inputs[1] if user.inputs[0] is out else user.inputs[0]
            if other is not out and self.is_float(other) and self.const(other) is None:
                residual = other
                nodes.append(user)
                out = user.outputs[0]
        act = fused_act
        user = self.single_consumer(out)
        if act is None and user is not None and user.inputs[0] is out:
            act = self.activation_of(user)
            if act is not None:
                nodes.append(user)
                out = user.outputs[0]
        torch = self.torch
        bias_dev = (
            torch.from_numpy(bias_c.astype(np.float32)).to(self.device)
            if bias_c is not None
            else None
        )
        res_const = None
        if isinstance(residual, tuple):
            res_const = torch.from_numpy(residual[1].astype(np.float32)).to(self.device)
            residual = None
        from infopt.kernels.gemm import gemm

        precision = self.plan.precision
        act_name, p0, p1 = act if act is not None else (None, 0.0, 0.0)
        post = _hard_swish if act_name == "HardSwish" else None
        if post is not None:
            act_name = None

        def fn(args, outs):
            at, bt = args[0], args[1]
            if trans_a:
                at = at.transpose(-1, -2)
            if trans_b:
                bt = bt.transpose(-1, -2)
            squeeze_a = at.dim() == 1
            squeeze_b = bt.dim() == 1
            if squeeze_a:
                at = at.unsqueeze(0)
            if squeeze_b:
                bt = bt.unsqueeze(-1)
            if at.dtype != bt.dtype:
                bt = bt.to(at.dtype)
            res = args[2] if len(args) > 2 else res_const
            y = gemm(
                at, bt, bias_dev, None if squeeze_a or squeeze_b else res,
                activation=act_name, act_params=(p0, p1), alpha=alpha, precision=precision,
                out=outs[0] if outs and not (squeeze_a or squeeze_b) else None,
            )  # fmt: skip
            if squeeze_a:
                y = y.squeeze(-2)
            if squeeze_b:
                y = y.squeeze(-1)
            return [post(y) if post else y]

        inputs = [a, b] + ([residual] if residual is not None else [])
        self.add_step(nodes, inputs, [out], fn, key=node.qualified_op)

    # -------------------------------------------------------------------------- softmax --------
    def lower_softmax(self, node: Node) -> None:
        x = node.inputs[0]
        if not self.is_float(x):
            raise _NotLowered("Softmax input is not float")
        legacy = self.opset < 13
        axis = int(node.attr("axis", 1 if legacy else -1))
        log = node.op_type == "LogSoftmax"
        nodes = [node]
        mask = None
        producer = x.producer
        if producer is not None and self._softmax_mask_user(producer) is node:
            # Add(scores, mask) -> Softmax: the Add moves into the softmax
            nodes.insert(0, producer)
            x, mask = producer.inputs[0], producer.inputs[1]
        from infopt.kernels.pointwise import pointwise
        from infopt.kernels.softmax import softmax

        torch = self.torch

        def fn(args, outs):
            xt = args[0]
            if legacy:
                a = axis + xt.dim() if axis < 0 else axis
                shape = xt.shape
                flat = xt.reshape(int(np.prod(shape[:a], dtype=np.int64)), -1)
                return [softmax(flat, log=log).reshape(shape)]
            m = args[1] if len(args) > 1 else None
            if m is not None:
                full = tuple(torch.broadcast_shapes(xt.shape, m.shape))
                if tuple(xt.shape) != full:
                    xt, m = m, xt
                if tuple(xt.shape) != full:
                    xt, m = pointwise([("add", 0, 1)], [xt, m]), None
            return [softmax(xt, m, axis=axis, log=log, out=outs[0] if outs else None)]

        inputs = [x] + ([mask] if mask is not None else [])
        self.add_step(nodes, inputs, [node.outputs[0]], fn, key=node.op_type)

    def _softmax_mask_user(self, add: Node) -> Node | None:
        """The Softmax that will absorb this Add as its additive mask, if one will."""
        if add.op_type != "Add" or len(add.inputs) != 2 or self.opset < 13:
            return None
        if id(add) in self.consumed or add.inputs[0] is add.inputs[1]:
            return None
        if not all(self.is_float(v) for v in add.inputs):
            return None
        user = self.single_consumer(add.outputs[0])
        if user is None or user.op_type not in ("Softmax", "LogSoftmax"):
            return None
        return user

    # ---------------------------------------------------------------------------- norms --------
    def lower_norm(self, node: Node) -> None:
        x = node.inputs[0]
        if not self.is_float(x) or any(v.name for v in node.outputs[1:]):
            raise _NotLowered(f"{node.op_type}: non-float input or statistics outputs used")
        rms = node.op_type not in ("LayerNormalization", "LayerNorm")
        axis = int(node.attr("axis", -1))
        eps = float(node.attr("epsilon", 1e-5))
        scale = node.inputs[1]
        bias = node.inputs[2] if len(node.inputs) > 2 else None
        from infopt.kernels.norm import layer_norm

        def fn(args, outs):
            return [
                layer_norm(
                    args[0], args[1], args[2], axis=axis, eps=eps, rms=rms,
                    out=outs[0] if outs else None,
                )
            ]  # fmt: skip

        self.add_step([node], [x, scale, bias], [node.outputs[0]], fn, key=node.qualified_op)

    # ---------------------------------------------------------------------------- pooling ------
    def lower_pool(self, node: Node) -> None:
        x = node.inputs[0]
        if not self.is_float(x) or (x.shape is not None and len(x.shape) != 4):
            raise _NotLowered(f"{node.op_type} on a non-float or non-4-D input")
        if len(node.outputs) > 1 and node.outputs[1].name:
            raise _NotLowered("MaxPool indices output")
        auto_pad = node.attr("auto_pad", "NOTSET")
        if auto_pad not in ("NOTSET", "VALID", b"NOTSET", b"VALID"):
            raise _NotLowered(f"{node.op_type} auto_pad={auto_pad}")
        kind = "max" if node.op_type == "MaxPool" else "avg"
        kernel = tuple(node.attr("kernel_shape"))
        strides = tuple(node.attr("strides", [1, 1]))
        dilations = tuple(node.attr("dilations", [1, 1]))
        if kind == "avg" and dilations != (1, 1):
            raise _NotLowered("AveragePool with dilations")
        pads = (
            tuple(node.attr("pads", [0, 0, 0, 0]))
            if auto_pad in ("NOTSET", b"NOTSET")
            else (0,) * 4
        )
        ceil = bool(node.attr("ceil_mode", 0))
        include = bool(node.attr("count_include_pad", 0))
        from infopt.kernels.pool import pool2d

        def fn(args, outs):
            return [
                pool2d(
                    args[0], kind, kernel, strides=strides, pads=pads, dilations=dilations,
                    ceil_mode=ceil, count_include_pad=include, out=outs[0] if outs else None,
                )
            ]  # fmt: skip

        self.add_step([node], [x], [node.outputs[0]], fn)

    def lower_reduce(self, node: Node) -> None:
        x = node.inputs[0]
        if not self.is_float(x):
            raise _NotLowered(f"{node.op_type} on a non-float input")
        op = node.op_type
        table = {
            "GlobalAveragePool": "mean", "GlobalMaxPool": "max", "ReduceMean": "mean",
            "ReduceSum": "sum", "ReduceMax": "max", "ReduceMin": "min",
            "ReduceSumSquare": "sumsquare",
        }  # fmt: skip
        if op not in table:
            raise _NotLowered(f"no Triton kernel for {op}")
        kind = table[op]
        keepdims = True
        axes = None
        noop = False
        if op.startswith("Reduce"):
            keepdims = bool(node.attr("keepdims", 1))
            noop = bool(node.attr("noop_with_empty_axes", 0))
            axes_attr = node.attr("axes")
            if len(node.inputs) > 1 and node.inputs[1] is not None:
                c = self.const(node.inputs[1])
                if c is None:
                    raise _NotLowered(f"{op} axes are not constant")
                axes = [int(a) for a in c.reshape(-1)]
            elif axes_attr is not None:
                axes = [int(a) for a in axes_attr]
            if not axes:
                if noop:
                    raise _NotLowered(f"{op} with noop_with_empty_axes")
                axes = None
        from infopt.kernels.reduce import reduce

        def fn(args, outs):
            xt = args[0]
            ax = axes if op.startswith("Reduce") else list(range(2, xt.dim()))
            return [reduce(xt, ax, kind, keepdims=keepdims, out=outs[0] if outs else None)]

        self.add_step([node], [x], [node.outputs[0]], fn)

    # ---------------------------------------------------------------------------- views --------
    def lower_view(self, node: Node) -> None:
        op = node.op_type
        x = node.inputs[0]
        from infopt.kernels.pointwise import contiguous

        def view(t, shape):
            try:
                return t.view(shape)
            except RuntimeError:
                return contiguous(t).view(shape)

        if op == "Reshape":
            allowzero = bool(node.attr("allowzero", 0))
            if self.opset < 5:
                raise _NotLowered("Reshape-1")

            def fn(args, outs):
                shape = [int(s) for s in np.asarray(args[1]).reshape(-1)]
                t = args[0]
                if not allowzero:
                    shape = [t.shape[i] if s == 0 else s for i, s in enumerate(shape)]
                return [view(t, shape)]

            self.add_step(
                [node], [x, node.inputs[1]], node.outputs[:1], fn, allocates=False, host_args=(1,)
            )
            return
        if op == "Split":
            axis = int(node.attr("axis", 0))
            sizes = node.attr("split")
            if len(node.inputs) > 1 and node.inputs[1] is not None:
                c = self.const(node.inputs[1])
                if c is None:
                    raise _NotLowered("Split sizes are not constant")
                sizes = [int(a) for a in c.reshape(-1)]
            parts = len(node.outputs)

            def fn(args, outs):
                t = args[0]
                a = axis + t.dim() if axis < 0 else axis
                if sizes is None:  # equal parts, the last one smaller (opset 18 num_outputs)
                    step = -(-t.shape[a] // parts)
                    cut = [min(step, t.shape[a] - i * step) for i in range(parts)]
                else:
                    cut = list(sizes)
                return list(t.split(cut, dim=a))  # views: the next kernels take strides

            self.add_step([node], [x], list(node.outputs), fn, allocates=False)
            return
        if op == "Expand":

            def fn(args, outs):
                t = args[0]
                target = tuple(int(s) for s in np.asarray(args[1]).reshape(-1))
                return [t.expand(np.broadcast_shapes(tuple(t.shape), target))]

            self.add_step(
                [node], [x, node.inputs[1]], node.outputs[:1], fn, allocates=False, host_args=(1,)
            )
            return
        if op == "Flatten":
            axis = int(node.attr("axis", 1))

            def fn(args, outs):
                t = args[0]
                a = axis + t.dim() if axis < 0 else axis
                lead = int(np.prod(t.shape[:a], dtype=np.int64))
                return [view(t, (lead, -1) if t.numel() else (lead, 0))]

            self.add_step([node], [x], node.outputs[:1], fn, allocates=False)
            return
        if op in ("Squeeze", "Unsqueeze"):
            axes = node.attr("axes")
            if len(node.inputs) > 1 and node.inputs[1] is not None:
                c = self.const(node.inputs[1])
                if c is None:
                    raise _NotLowered(f"{op} axes are not constant")
                axes = [int(a) for a in c.reshape(-1)]

            def fn(args, outs):
                t = args[0]
                if op == "Squeeze":
                    ax = axes if axes is not None else [i for i, s in enumerate(t.shape) if s == 1]
                    ax = {a + t.dim() if a < 0 else a for a in ax}
                    shape = [s for i, s in enumerate(t.shape) if i not in ax]
                else:
                    rank = t.dim() + len(axes)
                    ax = {a + rank if a < 0 else a for a in axes}
                    it = iter(t.shape)
                    shape = [1 if i in ax else next(it) for i in range(rank)]
                return [view(t, shape)]

            self.add_step([node], [x], node.outputs[:1], fn, allocates=False)
            return
        if op == "Transpose":
            perm = node.attr("perm")

            def fn(args, outs):
                t = args[0]
                p = perm if perm is not None else list(range(t.dim()))[::-1]
                return [t.permute(*p)]

            self.add_step([node], [x], node.outputs[:1], fn, allocates=False)
            return
        if op == "Slice":
            if self.opset < 10:
                starts, ends = node.attr("starts"), node.attr("ends")
                axes, steps = node.attr("axes"), None
            else:
                vals = [self.const(v) if v is not None else None for v in node.inputs[1:5]]
                if any(v is None and i < len(node.inputs) - 1 and node.inputs[i + 1] is not None
                       for i, v in enumerate(vals)):  # fmt: skip
                    raise _NotLowered("Slice with non-constant starts/ends/axes/steps")
                vals += [None] * (4 - len(vals))
                starts, ends, axes, steps = (
                    [int(a) for a in v.reshape(-1)] if v is not None else None for v in vals
                )
            if steps is not None and any(s <= 0 for s in steps):
                raise _NotLowered("Slice with a negative step")

            def fn(args, outs):
                t = args[0]
                ax = axes if axes is not None else list(range(len(starts)))
                index = [slice(None)] * t.dim()
                for i, a in enumerate(ax):
                    a = a + t.dim() if a < 0 else a
                    n = t.shape[a]
                    s, e = starts[i], ends[i]
                    s = max(0, min(n, s + n if s < 0 else s))
                    e = max(0, min(n, e + n if e < 0 else e))
                    index[a] = slice(s, max(s, e), steps[i] if steps else 1)
                return [t[tuple(index)]]

            self.add_step([node], [x], node.outputs[:1], fn, allocates=False)
            return
        raise _NotLowered(f"no lowering for {op}")

    def lower_concat(self, node: Node) -> None:
        dtypes = {v.dtype for v in node.inputs}
        if len(dtypes) != 1 or not dtypes <= _DEVICE_DTYPES.keys():
            raise _NotLowered(f"Concat of {dtypes} tensors")
        axis = int(node.attr("axis"))
        from infopt.kernels.pointwise import pointwise

        def fn(args, outs):
            a = axis + args[0].dim() if axis < 0 else axis
            shape = list(args[0].shape)
            shape[a] = sum(t.shape[a] for t in args)
            out = (
                outs[0]
                if outs
                else self.torch.empty(shape, dtype=args[0].dtype, device=args[0].device)
            )
            offset = 0
            for t in args:
                if t.shape[a]:
                    pointwise([("identity", 0)], [t], out=out.narrow(a, offset, t.shape[a]))
                offset += t.shape[a]
            return [out]

        self.add_step([node], list(node.inputs), node.outputs[:1], fn)

    # ------------------------------------------------------------------------- pointwise -------
    def pointwise_expr(self, node: Node):
        """(input values, literal map, steps builder) or None when not elementwise-lowerable."""
        op = node.op_type
        out = node.outputs[0]
        ins = [v for v in node.inputs]
        if node.domain == "infopt":
            if op in ("Gelu", "GeluTanh") and self.is_float(out):
                name = "gelu" if op == "Gelu" else "gelu_tanh"
                return ins[:1], lambda s: [(name, s[0])]
            return None
        if node.domain not in ("", "ai.onnx"):
            return None
        if out.dtype not in _DEVICE_DTYPES or any(
            v is not None and v.dtype not in _DEVICE_DTYPES for v in ins
        ):
            return None
        # integer/bool values: only ops exact in the kernel's int64 / 0-1 arithmetic
        data = ins[1:] if op == "Where" else ins
        if not self.is_float(out) or not all(self.is_float(v) for v in data if v is not None):
            if op not in _EXACT_ON_INTS:
                return None
        if op == "Cast":
            if out.dtype == TensorProto.BOOL:
                return ins[:1], lambda s: [("not_equal", s[0], 0.0)]
            if not self.is_float(out) and self.is_float(ins[0]):
                return ins[:1], lambda s: [("to_int", s[0])]
            if self.is_float(out) and not self.is_float(ins[0]):
                return ins[:1], lambda s: [("to_float", s[0])]
            return ins[:1], lambda s: [("identity", s[0])]
        if op in _COMPARE:
            name = _COMPARE[op]
            return ins[:2], lambda s: [(name, s[0], s[1])]
        if op in ("And", "Or"):
            name = "mul" if op == "And" else "max"  # bool operands are 0/1 in the kernel
            return ins[:2], lambda s: [(name, s[0], s[1])]
        if op == "Not":
            return ins[:1], lambda s: [("not", s[0])]
        if op == "Dropout":
            if (len(ins) > 2 and ins[2] is not None) or any(v.name for v in node.outputs[1:]):
                return None
            return ins[:1], lambda s: [("identity", s[0])]
        if op in _POINTWISE_UNARY:
            name = _POINTWISE_UNARY[op]
            return ins[:1], lambda s: [(name, s[0])]
        if op in _POINTWISE_BINARY:
            name = _POINTWISE_BINARY[op]
            return ins[:2], lambda s: [(name, s[0], s[1])]
        if op in ("Sum", "Max", "Min", "Mean") and ins:
            name = {"Sum": "add", "Mean": "add", "Max": "max", "Min": "min"}[op]

            count = len(ins)

            def build(s, n=count, name=name, op=op):
                if n == 1:
                    return [("identity", s[0])]
                steps, acc = [], s[0]
                for i in range(1, n):
                    steps.append((name, acc, s[i]))
                    acc = ("local", len(steps) - 1)
                if op == "Mean":
                    steps.append(("mul", acc, 1.0 / n))
                return steps

            return ins, build
        act = self.activation_of(node)
        if act is not None:
            name, p0, p1 = act
            table = {
                "Gelu": [("gelu",)], "GeluTanh": [("gelu_tanh",)],
                "LeakyRelu": [("leaky_relu", p0)], "HardSigmoid": [("hard_sigmoid", p0, p1)],
                "Clip": [("clip", p0, p1)],
            }  # fmt: skip
            steps = table[name][0]
            return ins[:1], lambda s: [(steps[0], s[0], *steps[1:])]
        if op == "Pow":
            c = self.const(ins[1])
            if c is None or c.size != 1:
                return None
            e = float(c.reshape(()))
            if e == 0.5:
                return ins[:1], lambda s: [("sqrt", s[0])]
            if e.is_integer() and abs(e) <= 8:
                return ins[:1], lambda s: [("pow_int", s[0], e)]
            return None
        if op == "Where":
            if ins[0] is None or ins[0].dtype != TensorProto.BOOL:
                return None
            return ins[:3], lambda s: [("where", s[0], s[1], s[2])]
        if op == "BatchNormalization":
            if sum(1 for v in node.outputs if v.name) > 1 or node.attr("training_mode", 0):
                return None
            params = [self.const(v) for v in ins[1:5]]
            if any(p is None for p in params):
                return None
            scale, b, mean, var = (p.astype(np.float64) for p in params)
            inv = scale / np.sqrt(var + float(node.attr("epsilon", 1e-5)))
            shift = b - mean * inv
            rank = len(ins[0].shape) if ins[0].shape is not None else 4
            shape = (-1,) + (1,) * (rank - 2)
            a_val = self._new_const(inv.astype(np.float32).reshape(shape), node, "scale")
            s_val = self._new_const(shift.astype(np.float32).reshape(shape), node, "shift")
            return [ins[0], a_val, s_val], lambda s: [
                ("mul", s[0], s[1]),
                ("add", ("local", 0), s[2]),
            ]
        return None

    def _new_const(self, array: np.ndarray, node: Node, tag: str) -> Value:
        value = Value(f"{node.name or node.op_type}__{tag}")
        self.constants[id(value)] = array
        self._keep.append(value)
        return value

    def lower_pointwise(self, node: Node) -> None:
        ins, build = self.pointwise_expr(node)
        # join the open group that produced our single-use input, if any
        group = None
        for v in ins:
            if v is not None and id(v) in self.groups and self.single_consumer(v) is node:
                group = self.groups.pop(id(v))
                break
        if group is None:
            group = {"nodes": [], "inputs": [], "literals": {}, "steps": [], "slot_of": {}}
        # an input that another open group produces: that group must run first
        for v in ins:
            if v is not None and id(v) in self.groups:
                self.emit_group(self.groups.pop(id(v)))
        slots = [self._group_operand(group, v) for v in ins]
        base = len(group["steps"])
        fixed = []
        for name, *args in build(slots):
            fixed.append(
                (name, *(("step", base + a[1]) if _is_token(a, "local") else a for a in args))
            )
        group["steps"].extend(fixed)
        group["nodes"].append(node)
        group["result"] = ("step", len(group["steps"]) - 1)
        out = node.outputs[0]
        group["slot_of"][id(out)] = group["result"]
        group["output"] = out
        self.groups[id(out)] = group
        # close the group unless exactly one later elementwise node can join it
        user = self.single_consumer(out)
        if user is None or self.pointwise_expr(user) is None:
            self.emit_group(self.groups.pop(id(out)))

    def _group_operand(self, group, v: Value | None):
        if v is None:
            return 0.0
        if id(v) in group["slot_of"]:
            return group["slot_of"][id(v)]
        c = self.const(v)
        if c is not None and c.size == 1 and c.ndim <= 1 and c.dtype.kind == "f":
            return float(c.reshape(()))
        for i, existing in enumerate(group["inputs"]):
            if existing is v:
                return ("input", i)
        group["inputs"].append(v)
        return ("input", len(group["inputs"]) - 1)

    def flush_groups(self) -> None:
        for key in list(self.groups):
            self.emit_group(self.groups.pop(key))

    def emit_group(self, group) -> None:
        n = len(group["inputs"])
        expr = []
        for name, *args in group["steps"]:
            new = []
            for a in args:
                if isinstance(a, tuple) and a[0] == "input":
                    new.append(a[1])
                elif isinstance(a, tuple) and a[0] == "step":
                    new.append(n + a[1])
                else:
                    new.append(float(a))
            expr.append((name, *new))
        out = group["output"]
        torch = self.torch
        out_dtype = getattr(torch, _DEVICE_DTYPES.get(out.dtype, "float32"))
        if n == 0:
            raise _NotLowered("pointwise chain of constants")
        from infopt.kernels.pointwise import pointwise

        def fn(args, outs):
            return [pointwise(expr, args, out_dtype=out_dtype, out=outs[0] if outs else None)]

        self.add_step(group["nodes"], group["inputs"], [out], fn, key="Pointwise")
