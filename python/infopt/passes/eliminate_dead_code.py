"""Dead-code elimination: drop nodes whose outputs nobody reads, unused initializers, and the
definitions of infopt ops that no node calls any more (a rewrite replaced them).

Identity relied on: a node without side effects whose outputs reach no graph output can be
removed. Refuses nothing; graph inputs (even unused ones) are kept because they are the model's
interface, except IR v3 style inputs that only exist to override an initializer nobody reads.
"""

from __future__ import annotations

from ..ir import Model
from .base import Pass, PassResult, walk_graphs


class EliminateDeadCode(Pass):
    name = "eliminate_dead_code"
    description = "remove nodes and initializers that no output depends on"

    def run(self, model: Model) -> PassResult:
        nodes_removed = inits_removed = 0
        for graph in walk_graphs(model.graph):
            for node in reversed(list(graph.nodes)):
                if all(not out.uses and not graph.is_graph_output(out) for out in node.outputs):
                    graph.remove_node(node)
                    nodes_removed += 1
            for name, value in list(graph.initializers.items()):
                if not value.uses and not graph.is_graph_output(value):
                    graph.remove_initializer(name)
                    inits_removed += 1
        called = {
            (node.domain, node.op_type)
            for graph in [model.graph, *(fn.body for fn in model.functions)]
            for sub in walk_graphs(graph)
            for node in sub.nodes
        }
        functions = [
            fn for fn in model.functions if fn.domain != "infopt" or (fn.domain, fn.name) in called
        ]
        functions_removed = len(model.functions) - len(functions)
        model.functions = functions
        stats = {
            "nodes_removed": nodes_removed,
            "initializers_removed": inits_removed,
            "functions_removed": functions_removed,
        }
        return PassResult(model, bool(nodes_removed or inits_removed or functions_removed), stats)
