"""Turn IR v3 style "initializer also listed as a graph input" into plain constants.

Identity relied on: callers of a deployed model feed only its real inputs, so an initializer's
default is its value. This lets later passes fold and fuse weights. It changes the model's
interface (those inputs can no longer be overridden), which is what deployment tools do; refuses
nothing, and leaves inputs without an initializer alone.
"""

from __future__ import annotations

from ..ir import Model
from .base import Pass, PassResult


class FreezeInitializerInputs(Pass):
    name = "freeze_initializer_inputs"
    description = "initializers listed as graph inputs become constants"

    def run(self, model: Model) -> PassResult:
        graph = model.graph
        before = len(graph.inputs)
        graph.inputs = [v for v in graph.inputs if v.name not in graph.initializers]
        frozen = before - len(graph.inputs)
        if frozen:
            # IR v3 requires every initializer to be a graph input; v4 lifted that
            model.ir_version = max(model.ir_version, 4)
        return PassResult(model, frozen > 0, {"frozen": frozen})
