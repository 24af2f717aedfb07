"""infopt's intermediate representation."""

from __future__ import annotations

from .graph import Attr, Function, Graph, Model, Node, Tensor, Value, attr_type_of, claim_name
from .printer import format_graph, format_node, format_value
from .serde import load, model_from_proto, model_to_proto, save, to_bytes
from .types import Dim, Shape, dtype_name, from_numpy_dtype, to_numpy_dtype
from .verify import VerificationError, check_graph, verify

__all__ = [
    "Attr",
    "Dim",
    "Function",
    "Graph",
    "Model",
    "Node",
    "Shape",
    "Tensor",
    "Value",
    "VerificationError",
    "attr_type_of",
    "check_graph",
    "claim_name",
    "dtype_name",
    "format_graph",
    "format_node",
    "format_value",
    "from_numpy_dtype",
    "load",
    "model_from_proto",
    "model_to_proto",
    "save",
    "to_bytes",
    "to_numpy_dtype",
    "verify",
]
