"""``FusedConv<Add?><Activation?>``: Conv with bias, optional residual add and activation.

    Y = act(Conv(X, W, B) + Z)

The epilogue's structure is part of the op name (``FusedConvAddRelu``) rather than an attribute,
because an ONNX function body cannot branch on an attribute; Conv's own attributes and the
activation's parameters pass through as attribute references.
"""

from __future__ import annotations

from ..ir import Attr, Function, Graph, Model, Node, Value

CONV_ATTRS = ["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"]

# activation op -> its attributes (passed through by reference)
ACTIVATIONS: dict[str, list[str]] = {
    "Relu": [],
    "LeakyRelu": ["alpha"],
    "Sigmoid": [],
    "Tanh": [],
    "HardSigmoid": ["alpha", "beta"],
}


def op_name(residual: bool, activation: str | None) -> str:
    return "FusedConv" + ("Add" if residual else "") + (activation or "")


def parse_op_name(op_type: str) -> tuple[bool, str | None] | None:
    """Inverse of ``op_name``: (residual, activation), or None if not a FusedConv op."""
    if not op_type.startswith("FusedConv"):
        return None
    rest = op_type[len("FusedConv") :]
    residual = rest.startswith("Add")
    rest = rest[3:] if residual else rest
    if rest and rest not in ACTIVATIONS:
        return None
    return residual, rest or None


def _builder(residual: bool, activation: str | None):
    def build(model: Model) -> Function:
        body = Graph(op_name(residual, activation))
        x, w, b = Value("X"), Value("W"), Value("B")
        for v in (x, w, b):
            body.add_input(v)
        inputs = ["X", "W", "B"]
        conv_out = Value("conv")
        conv_attrs = [Attr(a, _attr_kind(a), ref=a) for a in CONV_ATTRS]
        body.append(Node("Conv", [x, w, b], [conv_out], attrs=conv_attrs))
        current = conv_out
        if residual:
            z = body.add_input(Value("Z"))
            inputs.append("Z")
            added = Value("sum")
            body.append(Node("Add", [current, z], [added]))
            current = added
        if activation:
            act_out = Value("act")
            act_attrs = [Attr(a, "FLOAT", ref=a) for a in ACTIVATIONS[activation]]
            body.append(Node(activation, [current], [act_out], attrs=act_attrs))
            current = act_out
        y = Value("Y")
        body.append(Node("Identity", [current], [y]))
        body.outputs.append(y)
        attributes = CONV_ATTRS + (ACTIVATIONS[activation] if activation else [])
        return Function(
            domain="infopt",
            name=op_name(residual, activation),
            inputs=inputs,
            outputs=["Y"],
            body=body,
            attributes=attributes,
            opset_imports={"": max(model.opset(""), 9)},
            doc_string=f"Y = {activation or ''}(Conv(X, W, B){' + Z' if residual else ''})",
        )

    return build


def _attr_kind(name: str) -> str:
    return {"auto_pad": "STRING", "group": "INT"}.get(name, "INTS")


FUNCTIONS = {
    op_name(residual, act): _builder(residual, act)
    for residual in (False, True)
    for act in [None, *ACTIVATIONS]
    if residual or act
}
