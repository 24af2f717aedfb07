"""Helpers to write infopt ops' ONNX function bodies, and the epilogue activations they share.

``apply_activation(body, x, act, opset)`` writes one activation's decomposition; its
parameters are attribute references (``ACTIVATIONS[act]`` names them), so the fused op carries
them as plain float attributes.
"""

from __future__ import annotations

import math

from ..ir import Attr, Function, Graph, Model, Node, Value

# activation -> float attributes the fused op carries for it (all given explicitly by rewrites)
ACTIVATIONS: dict[str, list[str]] = {
    "Relu": [],
    "LeakyRelu": ["alpha"],
    "Sigmoid": [],
    "Tanh": [],
    "HardSigmoid": ["alpha", "beta"],
    "Clip": ["min", "max"],
    "HardSwish": [],
    "Silu": [],
    "Gelu": [],
    "GeluTanh": [],
}


class Body:
    def __init__(self, name: str):
        self.graph = Graph(name)
        self.inputs: list[str] = []
        self._n = 0

    def input(self, name: str) -> Value:
        self.inputs.append(name)
        return self.graph.add_input(Value(name))

    def op(
        self, op_type: str, *inputs: Value | None, refs: dict[str, str] | None = None, **attrs
    ) -> Value:
        self._n += 1
        out = Value(f"t{self._n}")
        node = Node(op_type, inputs, [out])
        for key, value in attrs.items():
            node.set_attr(key, value)
        for key, (kind, ref) in (refs or {}).items():
            node.attrs[key] = Attr(key, kind, ref=ref)
        self.graph.append(node)
        return out

    def const(self, value: float) -> Value:
        return self.op("Constant", value_float=float(value))

    def ref_const(self, attribute: str) -> Value:
        return self.op("Constant", refs={"value_float": ("FLOAT", attribute)})

    def function(
        self, model: Model, y: Value, attributes: list[str], doc: str, min_opset: int = 13
    ) -> Function:
        if y.producer is not None and y.producer.graph is self.graph:
            y.name = "Y"  # the last node writes the output: inlining leaves no Identity behind
            out = y
        else:
            out = Value("Y")
            self.graph.append(Node("Identity", [y], [out]))
        self.graph.outputs.append(out)
        return Function(
            domain="infopt",
            name=self.graph.name,
            inputs=self.inputs,
            outputs=["Y"],
            body=self.graph,
            attributes=attributes,
            opset_imports={"": max(model.opset(""), min_opset)},
            doc_string=doc,
        )


def act_attr_names(act: str | None, prefix: str = "") -> list[str]:
    return [prefix + a for a in ACTIVATIONS.get(act or "", [])]


def apply_activation(body: Body, x: Value, act: str | None, opset: int, prefix: str = "") -> Value:
    """``prefix`` renames the activation's attributes (FusedGemm's own alpha/beta would clash
    with LeakyRelu's alpha and HardSigmoid's alpha/beta)."""
    p = prefix
    if not act:
        return x
    if act in ("Relu", "Sigmoid", "Tanh"):
        return body.op(act, x)
    if act == "LeakyRelu":
        return body.op(act, x, refs={"alpha": ("FLOAT", p + "alpha")})
    if act == "HardSigmoid":
        return body.op(
            act, x, refs={"alpha": ("FLOAT", p + "alpha"), "beta": ("FLOAT", p + "beta")}
        )
    if act == "Clip":
        if opset < 11:
            return body.op(
                "Clip", x, refs={"min": ("FLOAT", p + "min"), "max": ("FLOAT", p + "max")}
            )
        return body.op("Clip", x, body.ref_const(p + "min"), body.ref_const(p + "max"))
    if act == "HardSwish":
        if opset >= 14:
            return body.op("HardSwish", x)
        return body.op("Mul", x, body.op("HardSigmoid", x, alpha=1.0 / 6, beta=0.5))
    if act == "Silu":
        return body.op("Mul", x, body.op("Sigmoid", x))
    if act in ("Gelu", "GeluTanh") and opset >= 20:
        return body.op("Gelu", x, approximate="tanh" if act == "GeluTanh" else "none")
    if act == "Gelu":
        erf = body.op("Erf", body.op("Div", x, body.const(math.sqrt(2.0))))
        return body.op(
            "Mul", body.op("Mul", x, body.const(0.5)), body.op("Add", erf, body.const(1.0))
        )
    if act == "GeluTanh":
        cube = body.op("Pow", x, body.const(3.0))  # as exporters write it: one node, exact
        inner = body.op("Add", x, body.op("Mul", cube, body.const(0.044715)))
        t = body.op("Tanh", body.op("Mul", inner, body.const(math.sqrt(2.0 / math.pi))))
        half = body.op("Mul", x, body.const(0.5))
        return body.op("Mul", half, body.op("Add", t, body.const(1.0)))
    raise KeyError(f"unknown activation {act}")
