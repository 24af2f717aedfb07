"""Shape and type inference: record dtypes and shapes (static or symbolic) on every value.

Uses ONNX's shape inference with data propagation, so Shape->Gather->Concat chains give static
shapes where they can. Advisory: a model it cannot handle keeps the types it had.
"""

from __future__ import annotations

from ..ir import Model
from ..ir.serde import infer_types
from .base import Pass, PassResult


class InferShapes(Pass):
    name = "infer_shapes"
    description = "annotate values with dtype and shape"

    def run(self, model: Model) -> PassResult:
        changed = infer_types(model)
        return PassResult(model, changed > 0, {"values_typed": changed})
