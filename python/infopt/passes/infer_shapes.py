"""Shape and type inference: record dtypes and shapes (static or symbolic) on every value.

Uses ONNX's shape inference with data propagation, so Shape->Gather->Concat chains give static
shapes where they can, then refines the dims ONNX leaves unknown (``None`` or a fresh ``unk__N``)
with infopt's symbolic shapes (:mod:`infopt.ir.symbolic`), which carry ``batch``/``sequence``
through the Reshape/Expand arithmetic of dynamic exports (``12*batch`` where it is a product).
Advisory: a model it cannot handle keeps the types it had.
"""

from __future__ import annotations

from ..ir import Model
from ..ir.serde import infer_types
from ..ir.symbolic import Sym, SymbolicShapes
from ..ir.types import is_unknown_dim
from .base import Pass, PassResult


class InferShapes(Pass):
    name = "infer_shapes"
    description = "annotate values with dtype and shape"

    def run(self, model: Model) -> PassResult:
        changed = refined = 0
        # each side's findings feed the other: iterate to the fixed point (two or three rounds)
        for _ in range(4):
            typed, dims = infer_types(model), refine_symbolic_dims(model)
            changed, refined = changed + typed, refined + dims
            if not typed and not dims:
                break
        return PassResult(
            model, changed + refined > 0, {"values_typed": changed, "dims_refined": refined}
        )


def refine_symbolic_dims(model: Model) -> int:
    """Write provable symbolic dims over the unknown ones; returns how many values changed."""
    shapes = SymbolicShapes(model.graph)
    refined = 0
    for node in model.graph.nodes:
        for v in node.outputs:
            new = shapes.shape(v)
            if v.shape is None or new is None or len(new) != len(v.shape):
                continue
            dims = list(v.shape)
            for i, (old, d) in enumerate(zip(v.shape, new, strict=True)):
                if not is_unknown_dim(old):
                    continue
                if isinstance(d, int) or (isinstance(d, Sym) and "?" not in str(d)):
                    text = d if isinstance(d, int) else str(d)
                    if text != old:
                        dims[i] = text
            if tuple(dims) != v.shape:
                v.shape = tuple(dims)
                refined += 1
    return refined
