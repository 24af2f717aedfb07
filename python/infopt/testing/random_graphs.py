"""Seeded random graphs of 2-12 nodes drawn from the ops the passes touch, for differential
testing of the -O2 pipeline against onnxruntime.

Each graph is a chain-with-branches over float32 4-D ("image") or 2-D/3-D ("matrix") tensors:
Conv with constant weights (then often BatchNormalization, Mul/Add by per-channel constants,
residual Add, activations), MatMul/Gemm with constant weights and biases, Transpose pairs,
Reshape/Squeeze/Unsqueeze round trips, Cast no-ops, Identity/Dropout, duplicated subexpressions
and the decomposed GELU / LayerNorm forms; in matrix graphs also the run-time shape arithmetic of
dynamic exports (Shape/Slice/Concat-built Reshape targets, flatten/unflatten around elementwise
ops), Unsqueeze chains and neutral constants (x*1, x/1), over a symbolic leading dim ``n`` half
the time. Initializers are chosen so that fusions fire; shapes broadcast (per-channel or scalar
constants) where the op allows it.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
OPSET = 17


class _G:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}{self.n}"

    def const(self, array: np.ndarray, base: str = "k") -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def rand(self, *shape, scale=1.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out


def _act(g: _G, x: str) -> str:
    kind = g.rng.choice(
        ["Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Clip", "Silu", "Gelu"]
    )
    if kind == "LeakyRelu":
        return g.op(kind, [x], alpha=float(g.rng.uniform(0.01, 0.3)))
    if kind == "HardSigmoid":
        return g.op(kind, [x], alpha=0.2, beta=0.5)
    if kind == "Clip":
        return g.op("Clip", [x, g.const(np.float32(0)), g.const(np.float32(6))])
    if kind == "Silu":
        return g.op("Mul", [x, g.op("Sigmoid", [x])])
    if kind == "Gelu":
        erf = g.op("Erf", [g.op("Div", [x, g.const(np.float32(math.sqrt(2)))])])
        return g.op(
            "Mul",
            [
                g.op("Mul", [x, g.op("Add", [erf, g.const(np.float32(1))])]),
                g.const(np.float32(0.5)),
            ],
        )
    return g.op(kind, [x])


def _image_step(g: _G, x: str, c: int) -> tuple[str, int]:
    step = g.rng.integers(0, 9)
    if step <= 2:  # Conv (+ BN) (+ act)
        co = int(g.rng.choice([c, 4, 6]))
        w = g.const(g.rand(co, c, 3, 3, scale=1 / math.sqrt(9 * c)))
        ins = [x, w] + ([g.const(g.rand(co, scale=0.1))] if g.rng.random() < 0.7 else [])
        y = g.op("Conv", ins, pads=[1, 1, 1, 1])
        if g.rng.random() < 0.5:
            stats = [
                g.rng.uniform(0.5, 1.5, co),
                g.rand(co),
                g.rand(co),
                g.rng.uniform(0.5, 1.5, co),
            ]
            y = g.op("BatchNormalization", [y, *[g.const(s.astype(np.float32)) for s in stats]])
        if g.rng.random() < 0.6:
            y = _act(g, y)
        return y, co
    if step == 3:  # residual Add of a Conv with the input
        w = g.const(g.rand(c, c, 1, 1, scale=1 / math.sqrt(c)))
        return g.op("Relu", [g.op("Add", [g.op("Conv", [x, w]), x])]), c
    if step == 4:  # per-channel Mul / Add constants
        k = g.const(g.rng.uniform(0.5, 1.5, (c, 1, 1)).astype(np.float32))
        return g.op("Add", [g.op("Mul", [x, k]), g.const(g.rand(1, c, 1, 1))]), c
    if step == 5:  # Transpose pair
        t = g.op("Transpose", [x], perm=[0, 2, 3, 1])
        return g.op("Transpose", [t], perm=[0, 3, 1, 2]), c
    if step == 6:  # Unsqueeze/Squeeze round trip, Cast and Identity no-ops
        u = g.op("Unsqueeze", [x, g.const(np.array([2], np.int64))])
        s = g.op("Squeeze", [u, g.const(np.array([2], np.int64))])
        return g.op("Identity", [g.op("Cast", [s], to=F)]), c
    if step == 7:  # duplicated subexpression
        a, b = g.op("Sigmoid", [x]), g.op("Sigmoid", [x])
        return g.op("Mul", [a, b]), c
    # zero Pad then Conv
    pads = g.const(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))
    w = g.const(g.rand(c, c, 3, 3, scale=1 / math.sqrt(9 * c)))
    return g.op("Conv", [g.op("Pad", [x, pads]), w]), c


def _i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def _shape_step(g: _G, x: str, k: int, rank: int) -> str:
    """Shape arithmetic as dynamic exporters write it, around an elementwise op."""
    kind = g.rng.integers(0, 4)
    if kind == 0:  # flatten, elementwise, unflatten to Shape(x)
        flat = g.op("Reshape", [x, g.const(_i64(-1, k))])
        return g.op("Reshape", [g.op("Tanh", [flat]), g.op("Shape", [x])])
    if kind == 1:  # Reshape(x, Concat(Shape(x)[:-1], [k])): the identity, built at run time
        lead = g.op("Slice", [g.op("Shape", [x]), g.const(_i64(0)), g.const(_i64(-1))])
        return g.op("Reshape", [x, g.op("Concat", [lead, g.const(_i64(k))], axis=0)])
    if kind == 2:  # neutral constants
        y = g.op("Mul", [g.const(np.ones(k, np.float32)), x])
        return g.op("Div", [g.op("Sigmoid", [y]), g.const(np.float32(1))])
    u = g.op("Unsqueeze", [g.op("Unsqueeze", [x, g.const(_i64(0))]), g.const(_i64(-1))])
    return g.op("Squeeze", [g.op("Relu", [u]), g.const(_i64(0, rank + 1))])


def _matrix_step(g: _G, x: str, k: int, rank: int) -> tuple[str, int]:
    step = g.rng.integers(0, 7)
    if step == 6:
        return _shape_step(g, x, k, rank), k
    if step <= 2:  # MatMul + bias (+ act)
        n = int(g.rng.choice([k, 5, 8]))
        y = g.op("MatMul", [x, g.const(g.rand(k, n, scale=1 / math.sqrt(k)))])
        if g.rng.random() < 0.8:
            y = g.op(
                "Add",
                [g.const(g.rand(n, scale=0.1)), y]
                if g.rng.random() < 0.5
                else [y, g.const(g.rand(n, scale=0.1))],
            )
        if g.rng.random() < 0.6:
            y = _act(g, y)
        return y, n
    if step == 3:  # decomposed LayerNorm over the last axis
        mean = g.op("ReduceMean", [x], axes=[-1])
        d = g.op("Sub", [x, mean])
        var = g.op("ReduceMean", [g.op("Pow", [d, g.const(np.float32(2))])], axes=[-1])
        std = g.op("Sqrt", [g.op("Add", [var, g.const(np.float32(1e-5))])])
        n = g.op(
            "Mul", [g.op("Div", [d, std]), g.const(g.rng.uniform(0.5, 1.5, k).astype(np.float32))]
        )
        return g.op("Add", [n, g.const(g.rand(k))]), k
    if step == 4:  # Reshape round trip
        r = g.op("Reshape", [x, g.const(np.array([-1], np.int64))])
        shape = [2] * (rank - 1) + [k]
        return g.op("Reshape", [r, g.const(np.array(shape, np.int64))]), k
    return _act(g, x), k


def random_graph(seed: int) -> onnx.ModelProto:
    """A valid opset-17 model of 2-12 nodes (before fusion), seeded."""
    rng = np.random.default_rng(seed)
    g = _G(rng)
    image = rng.random() < 0.5
    target = int(rng.integers(2, 13))
    if image:
        c = int(rng.choice([3, 4]))
        shape = [1, c, 6, 6]
        x = "x"
        while len(g.nodes) < target:
            before = len(g.nodes)
            y, c = _image_step(g, x, c)
            if len(g.nodes) > 12 and before > 0:
                g.nodes[:] = g.nodes[:before]
                break
            x = y
    else:
        rank = int(rng.choice([2, 3]))
        k = int(rng.choice([4, 6]))
        # a symbolic leading dim (random_feeds makes it 2, which the Reshape steps rely on)
        shape = ["n" if rng.random() < 0.5 else 2] + [2] * (rank - 2) + [k]
        x = "x"
        while len(g.nodes) < target:
            before = len(g.nodes)
            y, k = _matrix_step(g, x, k, rank)
            if len(g.nodes) > 12 and before > 0:
                g.nodes[:] = g.nodes[:before]
                break
            x = y
    if not g.nodes:
        x = g.op("Relu", ["x"])
    used = {i for n in g.nodes for i in n.input}
    inits = [t for t in g.inits if t.name in used]
    graph = helper.make_graph(
        g.nodes,
        f"random_{seed}",
        [helper.make_tensor_value_info("x", F, shape)],
        [helper.make_tensor_value_info(x, F, None)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    inferred = onnx.shape_inference.infer_shapes(model)
    model.graph.output[0].CopyFrom(inferred.graph.output[0])
    return model
