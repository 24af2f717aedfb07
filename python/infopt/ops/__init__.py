"""The infopt operator domain.

Every infopt op is defined twice: by its native kernel in the runtime, and as an ONNX function
(its decomposition into standard ops) that the compiler writes into the model, so that any ONNX
runtime can run a ``.opt`` file. ``ensure_function`` adds the definition a node needs.
"""

from __future__ import annotations

from ..ir import Model, Node
from . import fused_conv, fused_ops, nchwc

DOMAIN = "infopt"
DOMAIN_VERSION = 1

# op_type -> builder(model) -> ir.Function
_BUILDERS = {**fused_conv.FUNCTIONS, **fused_ops.FUNCTIONS, **nchwc.FUNCTIONS}


def is_infopt_op(node: Node) -> bool:
    return node.domain == DOMAIN


def ensure_function(model: Model, op_type: str) -> None:
    """Make ``model`` import the infopt domain and define ``op_type``'s decomposition."""
    if op_type not in _BUILDERS:
        raise KeyError(f"unknown infopt op {op_type}")
    model.opset_imports.setdefault(DOMAIN, DOMAIN_VERSION)
    if model.function(DOMAIN, op_type) is None:
        model.functions.append(_BUILDERS[op_type](model))
    # functions need IR v8+; keep the model's own version when it is newer
    model.ir_version = max(model.ir_version, 8)


def known_ops() -> list[str]:
    return sorted(_BUILDERS)
