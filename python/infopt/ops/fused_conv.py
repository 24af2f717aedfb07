"""``FusedConv<Add?><Activation?>``: Conv with bias, optional residual add and activation.

    Y = act(Conv(X, W, B) + Z)

The epilogue's structure is part of the op name (``FusedConvAddRelu``) rather than an attribute,
because an ONNX function body cannot branch on an attribute; Conv's own attributes and the
activation's parameters (``ACTIVATIONS``: e.g. ``alpha`` for LeakyRelu, ``min``/``max`` for Clip)
pass through as attribute references. Native kernel: ``infopt.FusedConv`` (X, W, B, Z; Conv
attributes + ``activation`` name + ``activation_params``).
"""

from __future__ import annotations

from ..ir import Attr, Function, Model
from ._body import ACTIVATIONS, Body, apply_activation

CONV_ATTRS = ["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"]


def op_name(residual: bool, activation: str | None, stem: str = "FusedConv") -> str:
    return stem + ("Add" if residual else "") + (activation or "")


def parse_op_name(op_type: str, stem: str = "FusedConv") -> tuple[bool, str | None] | None:
    """Inverse of ``op_name``: (residual, activation), or None if not a ``stem`` op."""
    if not op_type.startswith(stem):
        return None
    rest = op_type[len(stem) :]
    residual = rest.startswith("Add")
    rest = rest[3:] if residual else rest
    if rest and rest not in ACTIVATIONS:
        return None
    return residual, rest or None


def _builder(residual: bool, activation: str | None):
    def build(model: Model) -> Function:
        body = Body(op_name(residual, activation))
        x, w, b = body.input("X"), body.input("W"), body.input("B")
        refs = {a: (_attr_kind(a), a) for a in CONV_ATTRS}
        current = body.op("Conv", x, w, b, refs=refs)
        if residual:
            current = body.op("Add", current, body.input("Z"))
        current = apply_activation(body, current, activation, model.opset(""))
        attributes = CONV_ATTRS + (ACTIVATIONS[activation] if activation else [])
        doc = f"Y = {activation or ''}(Conv(X, W, B){' + Z' if residual else ''})"
        return body.function(model, current, attributes, doc, min_opset=9)

    return build


def _attr_kind(name: str) -> str:
    return {"auto_pad": "STRING", "group": "INT"}.get(name, "INTS")


FUNCTIONS = {
    op_name(residual, act): _builder(residual, act)
    for residual in (False, True)
    for act in [None, *ACTIVATIONS]
    if residual or act
}

__all__ = ["ACTIVATIONS", "CONV_ATTRS", "FUNCTIONS", "Attr", "op_name", "parse_op_name"]
