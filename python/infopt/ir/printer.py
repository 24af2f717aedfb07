"""One-line text forms of IR objects; the single place that defines the format.

%y: f32[1,64,56,56] = Conv(%x, %w) {strides=[1,1]}
"""

from __future__ import annotations

import numpy as np

from .graph import Attr, Graph, Node, Tensor, Value
from .types import dtype_name, shape_str

_MAX_LIST = 8


def format_type(value: Value) -> str:
    if value.dtype is None and value.type_payload is not None:
        return "<opaque>"
    return dtype_name(value.dtype) + shape_str(value.shape)


def format_value(value: Value) -> str:
    return f"%{value.name}: {format_type(value)}"


def _format_attr_value(a: Attr) -> str:
    if a.ref is not None:
        return f"@{a.ref}"
    v = a.value
    if isinstance(v, Graph):
        return f"<graph {v.name or '?'}: {len(v.nodes)} nodes>"
    if isinstance(v, Tensor):
        if v.size <= _MAX_LIST:
            values = ",".join(_format_scalar(x) for x in np.asarray(v.numpy()).ravel().tolist())
            return f"{dtype_name(v.dtype)}{shape_str(v.shape)}[{values}]"
        return f"<tensor {dtype_name(v.dtype)}{shape_str(v.shape)}>"
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, list | tuple):
        items = [_format_scalar(x) for x in v[:_MAX_LIST]]
        if len(v) > _MAX_LIST:
            items.append(f"...({len(v)})")
        return "[" + ",".join(items) + "]"
    return _format_scalar(v)


def _format_scalar(v: object) -> str:
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, Graph):
        return f"<graph {v.name or '?'}>"
    return str(v)


def format_node(node: Node) -> str:
    outs = ", ".join(format_value(v) for v in node.outputs)
    ins = ", ".join("%" + v.name if v is not None else "None" for v in node.inputs)
    text = f"{outs} = {node.qualified_op}({ins})"
    if node.attrs:
        attrs = ", ".join(f"{k}={_format_attr_value(a)}" for k, a in sorted(node.attrs.items()))
        text += " {" + attrs + "}"
    return text


def format_graph(graph: Graph, indent: str = "") -> str:
    lines = [f"{indent}graph {graph.name or '<unnamed>'} ("]
    for v in graph.inputs:
        tag = "  # has initializer" if v.name in graph.initializers else ""
        lines.append(f"{indent}  {format_value(v)}{tag}")
    lines.append(f"{indent}) {{")
    inputs = {v.name for v in graph.inputs}
    consts = [v for n, v in graph.initializers.items() if n not in inputs]
    for v in consts[:_MAX_LIST]:
        lines.append(f"{indent}  const {format_value(v)}")
    if len(consts) > _MAX_LIST:
        lines.append(f"{indent}  ... {len(consts) - _MAX_LIST} more initializers")
    for node in graph.nodes:
        lines.append(f"{indent}  {format_node(node)}")
        for sub in node.subgraphs():
            lines.append(format_graph(sub, indent + "    "))
    lines.append(f"{indent}  return " + ", ".join("%" + v.name for v in graph.outputs))
    lines.append(f"{indent}}}")
    return "\n".join(lines)
