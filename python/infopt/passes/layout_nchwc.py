"""Run CNN regions in the channel-blocked NCHWc layout (block 8), as onnxruntime's NCHWc
transformer does, so that convolutions use the direct-convolution kernels (``ops.nchwc``).

Walks the nodes in topological order and rewrites, keeping for each value an NCHW and/or an
NCHWc version made on demand:

* Conv / infopt FusedConv* -> ``NchwcConv*`` whenever it qualifies: 2-D, float32, group 1, a
  constant weight ``[M, C, KH, KW]`` with ``M % 8 == 0``, auto_pad made explicit. An input not
  yet in NCHWc gets one shared ``ReorderToNchwc``; with ``C < 8`` (a first layer) the conv reads
  it as it is (``NchwcConvNchw*``). A residual Z is reordered when needed.
* Only when their main input already has an NCHWc version: MaxPool / AveragePool (2-D, no
  indices output), GlobalAveragePool, unary activations, binary elementwise ops whose other
  operand is NCHWc (same N and C, H/W equal or 1) or a per-channel / scalar constant (re-laid out
  as ``[Cb, 1, 1, 8]``), and Concat on the channel axis when every input is NCHWc with
  ``C % 8 == 0``.
* Inference BatchNormalization (``scale = gamma / sqrt(var + eps)``, ``shift = beta - mean *
  scale``, in float64), and a Mul by a per-channel constant whose only reader adds one, ->
  ``NchwcScaleShift`` (one pass over the data instead of a broadcast Mul and Add); an activation
  that is its only reader becomes its epilogue (``NchwcScaleShiftRelu``), with ``C % 8 != 0``
  only one with ``f(0) = 0`` (Clip when ``min <= 0 <= max``).
* Any other reader of a rewritten value, and every graph output, reads it back through one
  shared ``ReorderFromNchwc``; graph outputs keep their names and shapes.

The padded lanes of a value whose C is not a multiple of 8 must stay 0, so such values only go
through ops that map 0 to 0 (Relu, Add of zero-padded constants, pooling...); below opset 12
(``ReorderFromNchwc``'s ONNX function cannot drop padded channels there) they are not blocked
at all and a conv reads them in NCHW. Refuses the whole model below opset 9.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ..ir import Model, Node, Tensor, Value, claim_name
from ..ops import ensure_function
from ..ops.fused_conv import parse_op_name
from ..ops.nchwc import BLOCK, MIN_OPSET, SLICE_OPSET, conv_name, scale_shift_name
from ..runtime.fallback import NONDETERMINISTIC_OPS
from .base import Pass, PassResult

UNARY = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Clip", "Elu"}
BINARY = {"Add", "Sub", "Mul", "Div", "Max", "Min"}
POOLS = {"MaxPool": "NchwcMaxPool", "AveragePool": "NchwcAveragePool"}
# ops with f(0) = 0 (operands' padded lanes 0): safe on values whose C is not a multiple of 8
ZERO_KEEPING = {"Relu", "LeakyRelu", "Tanh", "HardSwish", "Elu", "BatchNormalization"}
ZERO_KEEPING |= {"GlobalAveragePool", *BINARY, *POOLS}
_F32 = TensorProto.FLOAT
_FMAX = 3.4028234663852886e38
# activations NchwcScaleShift takes as its epilogue -> their attributes' defaults
FUSABLE: dict[str, dict[str, float]] = {
    **{op: {} for op in ("Relu", "Sigmoid", "Tanh", "HardSwish")},
    "LeakyRelu": {"alpha": 0.01},
    "HardSigmoid": {"alpha": 0.2, "beta": 0.5},
    "Clip": {"min": -_FMAX, "max": _FMAX},  # attributes below opset 11, inputs from it on
}


class Refused(Exception):
    pass


def _channels(v: Value | None) -> int:
    """C of a float32 rank-4 value with a static channel count (raises Refused otherwise)."""
    if v is None or v.dtype != _F32 or v.shape is None or len(v.shape) != 4:
        raise Refused(f"%{v.name if v else None} is not a float32 rank-4 tensor")
    if not isinstance(v.shape[1], int):
        raise Refused(f"%{v.name} has no static channel count")
    return v.shape[1]


def blocked_shape(shape) -> tuple:
    n, c, h, w = shape
    return (n, -(-c // BLOCK), h, w, BLOCK)


def explicit_pads(node: Node, x: Value, kernel: list[int]) -> dict:
    """Pads/strides/dilations of a 2-D Conv or pool with ``auto_pad`` resolved to ``pads``."""
    strides = list(node.attr("strides", [1, 1]))
    dilations = list(node.attr("dilations", [1, 1]))
    auto = node.attr("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if len(kernel) != 2 or len(strides) != 2:
        raise Refused(f"{node.op_type} %{node.outputs[0].name} is not 2-D")
    if auto == "NOTSET":
        return {"pads": list(node.attr("pads", [0, 0, 0, 0]))}
    if auto == "VALID":
        return {"pads": [0, 0, 0, 0]}
    if node.attr("ceil_mode", 0):
        raise Refused(f"%{node.outputs[0].name}: auto_pad {auto} with ceil_mode")
    begin, end = [], []
    for axis in range(2):
        size = x.shape[2 + axis]
        if not isinstance(size, int):
            raise Refused(f"auto_pad {auto} on %{x.name} with a symbolic spatial size")
        out = -(-size // strides[axis])
        extent = (kernel[axis] - 1) * dilations[axis] + 1
        total = max(0, (out - 1) * strides[axis] + extent - size)
        small = total // 2
        begin.append(small if auto == "SAME_UPPER" else total - small)
        end.append(total - begin[-1])
    return {"pads": begin + end}


class LayoutNchwc(Pass):
    name = "layout_nchwc"
    description = "CNN regions -> channel-blocked NCHWc layout with direct-convolution ops"

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}  # node -> why it stayed NCHW (last run)

    def run(self, model: Model) -> PassResult:
        if model.opset("") < MIN_OPSET:
            return PassResult(model, False, {"refused_opset": model.opset("")})
        rewriter = _Rewriter(model)
        rewriter.run()
        self.reasons = rewriter.reasons
        return PassResult(model, rewriter.changed, rewriter.stats)


class _Rewriter:
    def __init__(self, model: Model):
        self.model = model
        self.graph = model.graph
        self.opset = model.opset("")
        self.blocked: dict[int, Value] = {}  # NCHW value -> its NCHWc version
        self.detached: list[Value] = []  # outputs of rewritten nodes, NCHW versions pending
        self.names = {v.name for v in self.graph.all_values()}
        self.const_memo: dict[int, bool] = {}
        self.stats: dict[str, int] = {"reorder_to": 0, "reorder_from": 0}
        self.reasons: dict[str, str] = {}
        self.changed = False
        for node in self.graph.nodes:  # a previous run's reorders keep serving
            if node.domain == "infopt" and node.op_type == "ReorderFromNchwc":
                self.blocked[id(node.outputs[0])] = node.inputs[0]
            elif node.domain == "infopt" and node.op_type == "ReorderToNchwc":
                self.blocked.setdefault(id(node.inputs[0]), node.outputs[0])

    # --- the walk ------------------------------------------------------------------------------
    def run(self) -> None:
        handlers = {
            "Conv": self.conv,
            "BatchNormalization": self.batchnorm,
            "Concat": self.concat,
            "GlobalAveragePool": self.global_pool,
            **{op: self.pool for op in POOLS},
            **{op: self.unary for op in UNARY},
            **{op: self.binary for op in BINARY},
        }
        for node in list(self.graph.nodes):
            if node.graph is None:  # an activation fused into an NchwcScaleShift
                continue
            if node.domain == "infopt" and parse_op_name(node.op_type) is not None:
                handler = self.conv
            elif node.domain in ("", "ai.onnx"):
                handler = handlers.get(node.op_type)
            else:
                handler = None
            if handler is None:
                continue
            try:
                handler(node)
            except Refused as why:  # "why didn't it fire": LayoutNchwc().reasons after a run
                self.reasons[node.name or node.outputs[0].name] = str(why)
                if handler == self.conv:
                    self.stats["conv_refused"] = self.stats.get("conv_refused", 0) + 1
        for y in self.detached:
            if y.uses or self.graph.is_graph_output(y):
                from_node = self.add("ReorderFromNchwc", [self.blocked[id(y)]], y)
                from_node.set_attr("channels", y.shape[1])
                self.graph.append(from_node)
                self.stats["reorder_from"] += 1
        if self.changed:
            self.graph.sort()

    # --- handlers ------------------------------------------------------------------------------
    def conv(self, node: Node) -> None:
        residual, act = (False, None) if node.domain == "" else parse_op_name(node.op_type)
        x, w = node.inputs[0], node.inputs[1]
        c, y = _channels(x), node.outputs[0]
        _channels(y)
        if w is None or not self.is_constant(w) or w.shape is None or len(w.shape) != 4:
            raise Refused(f"weight of %{y.name} is not a constant rank-4 tensor")
        m = w.shape[0]
        if node.attr("group", 1) != 1 or w.shape[1] != c:
            raise Refused(f"%{y.name} is a grouped convolution")
        if m % BLOCK:
            raise Refused(f"%{y.name} has {m} output channels, not a multiple of {BLOCK}")
        attrs = {
            k: node.attr(k) for k in ("dilations", "strides", "kernel_shape") if k in node.attrs
        }
        attrs.update(explicit_pads(node, x, list(node.attr("kernel_shape", w.shape[2:]))))
        for name in ("alpha", "beta", "min", "max"):
            if name in node.attrs:
                attrs[name] = node.attr(name)
        z = node.inputs[3] if residual else None
        if z is not None and (_channels(z) != m or z.shape != y.shape):
            raise Refused(f"residual %{z.name} of %{y.name} is not of the output's shape")
        # a first layer (C < 8) reads NCHW: its few channels would be mostly padding
        plain = id(x) not in self.blocked and (c < BLOCK or c % BLOCK and self.opset < SLICE_OPSET)
        b = node.inputs[2] if len(node.inputs) > 2 else None
        inputs = [x if plain else self.nchwc(x, node), w, b]
        if z is not None:
            inputs.append(self.nchwc(z, node))
        self.replace(node, conv_name(plain, residual, act), inputs, attrs, "infopt")
        key = "conv_nchw_input" if plain else "conv"
        self.stats[key] = self.stats.get(key, 0) + 1

    def pool(self, node: Node) -> None:
        x = self.main_input(node)
        if any(v.name for v in node.outputs[1:]):
            raise Refused(f"MaxPool %{node.outputs[0].name} has an indices output")
        attrs = {
            k: a.value for k, a in node.attrs.items() if k not in ("storage_order", "auto_pad")
        }
        attrs.update(explicit_pads(node, x, list(node.attr("kernel_shape", []))))
        self.replace(node, POOLS[node.op_type], [self.blocked[id(x)]], attrs, "infopt")

    def global_pool(self, node: Node) -> None:
        x = self.main_input(node)
        self.replace(node, "NchwcGlobalAveragePool", [self.blocked[id(x)]], {}, "infopt")

    def unary(self, node: Node) -> None:
        x = self.main_input(node)
        if node.op_type == "Clip" and any(not self.is_constant(v) for v in node.inputs[1:] if v):
            raise Refused(f"Clip %{node.outputs[0].name} has non-constant bounds")
        inputs = [self.blocked[id(x)], *node.inputs[1:]]
        self.replace(node, node.op_type, inputs, {k: a.value for k, a in node.attrs.items()})

    def binary(self, node: Node) -> None:
        y = node.outputs[0]
        c = _channels(y)
        if node.op_type == "Mul" and self.affine(node, c):
            return
        if not any(
            v is not None and id(v) in self.blocked and v.shape == y.shape for v in node.inputs
        ):
            raise Refused(f"%{y.name} has no NCHWc operand of its shape")
        self.check_lanes(node, c)
        constants = {}  # operand index -> per-channel vector; made only once all qualify
        for i, v in enumerate(node.inputs):
            if v is not None and id(v) in self.blocked:
                if v.shape is None or len(v.shape) != 4 or v.shape[:2] != y.shape[:2]:
                    raise Refused(f"%{v.name} does not broadcast as NCHWc to %{y.name}")
                if node.op_type == "Div" and i == 1:
                    raise Refused(f"%{y.name} divides by an NCHWc value (0/0 in padded lanes)")
            else:
                constants[i] = self.channel_vector(v, c)
        divisor = 1 if node.op_type == "Div" else None  # its padded lanes are 1: 0 / 1 = 0
        operands = [
            self.relaid(constants[i], 1.0 if i == divisor else 0.0, y.name)
            if i in constants
            else self.blocked[id(v)]
            for i, v in enumerate(node.inputs)
        ]
        self.replace(node, node.op_type, operands, {})

    def batchnorm(self, node: Node) -> None:
        x = self.main_input(node)
        y, c = node.outputs[0], _channels(x)
        if any(v.name for v in node.outputs[1:]) or node.attr("training_mode", 0):
            raise Refused(f"BatchNormalization %{y.name} is in training mode")
        stats = [self.const_array(v) for v in node.inputs[1:5]]
        if any(a is None or a.shape != (c,) for a in stats):
            raise Refused(f"BatchNormalization %{y.name} has non-constant statistics")
        scale, bias, mean, var = (a.astype(np.float64) for a in stats)
        s = scale / np.sqrt(var + float(node.attr("epsilon", 1e-5)))
        self.scale_shift([node], x, s, bias - mean * s)

    def affine(self, mul: Node, c: int) -> bool:
        """A Mul of an NCHWc value by a per-channel constant whose only reader adds one."""
        y, add = mul.outputs[0], self.only_reader(mul.outputs[0], ("", "ai.onnx"))
        x = next((v for v in mul.inputs if id(v) in self.blocked and v.shape == y.shape), None)
        if add is None or add.op_type != "Add" or x is None or add.outputs[0].shape != y.shape:
            return False
        try:
            scale = self.channel_vector(mul.inputs[mul.inputs[0] is x], c)
            shift = self.channel_vector(add.inputs[add.inputs[0] is y], c)
        except Refused:
            return False
        self.scale_shift([mul, add], x, scale.astype(np.float64), shift.astype(np.float64))
        return True

    def scale_shift(self, nodes: list[Node], x: Value, scale, shift) -> None:
        """``nodes`` (a BatchNormalization, or a Mul and an Add) computing ``x * scale + shift``
        become one NchwcScaleShift, which takes the activation that is their only reader."""
        y, c = nodes[-1].outputs[0], _channels(x)
        act, params = self.fusable_activation(y, c)
        vectors = [
            self.graph.add_initializer(
                Value(self.fresh(f"{y.name}_{k}"), _F32, (c,), const=Tensor(v.astype(np.float32)))
            )
            for k, v in (("scale", scale), ("shift", shift))
        ]
        op = scale_shift_name(act and act.op_type)
        last, *rest = [act, *nodes[::-1]] if act else nodes[::-1]
        self.replace(last, op, [self.blocked[id(x)], *vectors], params, "infopt")
        for node in rest:  # each output's only reader was the node after it
            node.drop_inputs()
            self.graph.nodes.remove(node)
            node.graph = None
        self.stats[op] = self.stats.get(op, 0) + 1

    def fusable_activation(self, y: Value, c: int) -> tuple[Node | None, dict]:
        """The activation that is ``y``'s only reader, and its attributes; with ``C % 8 != 0``
        only one with ``f(0) = 0`` (the ONNX function would write f(0) to padded lanes)."""
        act = self.only_reader(y, ("", "ai.onnx"))
        if act is None or act.op_type not in FUSABLE or act.outputs[0].shape != y.shape:
            return None, {}
        params = {k: float(act.attr(k, d)) for k, d in FUSABLE[act.op_type].items()}
        bounds = act.inputs[1:3] if act.op_type == "Clip" else []
        for key, v in zip(("min", "max"), bounds, strict=False):
            array = None if v is None else self.const_array(v)
            if v is not None and (array is None or array.size != 1):
                return None, {}
            params[key] = params[key] if array is None else float(array.reshape(-1)[0])
        zero = act.op_type != "Clip" or params["min"] <= 0 <= params["max"]
        if c % BLOCK and not (zero and act.op_type in ZERO_KEEPING | {"Clip"}):
            return None, {}
        return act, params

    def concat(self, node: Node) -> None:
        y = node.outputs[0]
        if node.attr("axis") not in (1, -3):
            raise Refused(f"Concat %{y.name} is not on the channel axis")
        for v in node.inputs:
            if _channels(v) % BLOCK or id(v) not in self.blocked:
                raise Refused(f"Concat input %{v.name} is not NCHWc with C % {BLOCK} == 0")
        _channels(y)
        self.replace(node, "Concat", [self.blocked[id(v)] for v in node.inputs], {"axis": 1})

    # --- helpers -------------------------------------------------------------------------------
    def main_input(self, node: Node) -> Value:
        x = node.inputs[0]
        c = _channels(x)
        _channels(node.outputs[0])
        if id(x) not in self.blocked:
            raise Refused(f"input %{x.name} of %{node.outputs[0].name} is not in NCHWc")
        self.check_lanes(node, c)
        return x

    def only_reader(self, y: Value, domains: tuple) -> Node | None:
        if len(y.uses) != 1 or self.graph.is_graph_output(y):
            return None
        return y.uses[0][0] if y.uses[0][0].domain in domains else None

    def check_lanes(self, node: Node, c: int) -> None:
        if c % BLOCK and node.op_type not in ZERO_KEEPING:
            raise Refused(f"{node.op_type} %{node.outputs[0].name} would fill padded lanes")

    def replace(self, node: Node, op: str, inputs: list, attrs: dict, domain: str = "") -> None:
        """``node`` becomes ``op`` on NCHWc values; its NCHW outputs are re-made on demand."""
        y = node.outputs[0]
        new = self.add(
            op, inputs, Value(self.fresh(y.name + "_nchwc"), _F32, blocked_shape(y.shape)), domain
        )
        new.name = node.name
        for key, value in attrs.items():
            new.set_attr(key, value)
        self.graph.insert_before(node, new)
        node.drop_inputs()
        self.graph.nodes.remove(node)
        node.graph = None
        for out in node.outputs:
            out.producer = None
        node.outputs = []
        self.blocked[id(y)] = new.outputs[0]
        self.detached.append(y)
        self.changed = True

    def add(self, op: str, inputs: list, out: Value, domain: str = "infopt") -> Node:
        if domain == "infopt":
            ensure_function(self.model, op)
        return Node(op, inputs, [out], domain=domain, name=self.fresh(op) if domain else "")

    def nchwc(self, x: Value, before: Node) -> Value:
        """The NCHWc version of ``x``, made by one shared ReorderToNchwc if needed."""
        if id(x) not in self.blocked:
            c = _channels(x)
            if c % BLOCK and self.opset < SLICE_OPSET:
                raise Refused(f"%{x.name}: {c} channels below opset {SLICE_OPSET}")
            out = Value(self.fresh(x.name + "_nchwc"), _F32, blocked_shape(x.shape))
            self.graph.insert_before(before, self.add("ReorderToNchwc", [x], out))
            self.blocked[id(x)] = out
            self.stats["reorder_to"] += 1
        return self.blocked[id(x)]

    def channel_vector(self, v: Value | None, c: int) -> np.ndarray:
        """A constant operand broadcast along channels only, as one value per channel."""
        array = self.const_array(v)
        if array is None or array.ndim > 4 or array.dtype != np.float32:
            raise Refused(f"operand %{v.name if v else None} is not a float32 constant")
        array = array.reshape((1,) * (4 - array.ndim) + array.shape)
        if array.shape[0] != 1 or array.shape[1] not in (1, c) or array.shape[2:] != (1, 1):
            raise Refused(f"constant %{v.name} is not per-channel")
        return np.broadcast_to(array.reshape(-1), (c,))

    def relaid(self, vector: np.ndarray, pad: float, base: str) -> Value:
        """A per-channel vector as a ``[Cb, 1, 1, 8]`` initializer, padded lanes ``pad``."""
        c = vector.shape[0]
        lanes = np.full(-(-c // BLOCK) * BLOCK, pad, np.float32)
        lanes[:c] = vector
        array = lanes.reshape(-1, 1, 1, BLOCK)
        value = Value(self.fresh(base + "_nchwc"), _F32, array.shape, const=Tensor(array))
        return self.graph.add_initializer(value)

    def const_array(self, v: Value | None) -> np.ndarray | None:
        if v is None or v.const is None or any(v is i for i in self.graph.inputs):
            return None
        return v.const.numpy()

    def is_constant(self, v: Value) -> bool:
        """An initializer, or computed from initializers only (a ConstantOfShape fill)."""
        if id(v) not in self.const_memo:
            self.const_memo[id(v)] = False
            if v.const is not None:
                result = not any(v is i for i in self.graph.inputs)
            elif (
                v.producer is not None
                and v.producer.op_type not in NONDETERMINISTIC_OPS
                and not any(True for _ in v.producer.subgraphs())
            ):
                result = all(self.is_constant(i) for i in v.producer.inputs if i is not None)
            else:
                result = False
            self.const_memo[id(v)] = result
        return self.const_memo[id(v)]

    def fresh(self, base: str) -> str:
        return claim_name(self.names, base)
