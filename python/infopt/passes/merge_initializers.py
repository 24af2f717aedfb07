"""Duplicate-initializer merging: initializers with the same dtype, shape and bytes become one.

Identity relied on: a constant is its value. Exporters repeat small constants (shape vectors,
scalars like 1.0) once per layer; merging them lets CSE see equal subexpressions. Refuses
initializers that are graph inputs (overridable) or graph outputs.
"""

from __future__ import annotations

import hashlib

from ..ir import Model
from .base import Pass, PassResult, walk_graphs


class MergeInitializers(Pass):
    name = "merge_initializers"
    description = "merge initializers that hold equal tensors"

    def run(self, model: Model) -> PassResult:
        merged = 0
        for graph in walk_graphs(model.graph):
            inputs = {id(v) for v in graph.inputs}
            seen: dict[tuple, object] = {}
            # hash only tensors that share a dtype and shape with another (large weights rarely do)
            groups: dict[tuple, int] = {}
            for value in graph.initializers.values():
                sig = (value.const.dtype, tuple(value.const.shape))
                groups[sig] = groups.get(sig, 0) + 1
            for name, value in list(graph.initializers.items()):
                if id(value) in inputs or graph.is_graph_output(value):
                    continue
                if groups[(value.const.dtype, tuple(value.const.shape))] < 2:
                    continue
                array = value.const.numpy()
                key = (array.dtype.str, array.shape, hashlib.sha1(array.tobytes()).digest())
                keep = seen.get(key)
                if keep is None:
                    seen[key] = value
                    continue
                value.replace_all_uses_with(keep)
                graph.remove_initializer(name)
                merged += 1
        return PassResult(model, merged > 0, {"merged": merged})
