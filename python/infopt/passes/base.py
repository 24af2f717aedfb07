"""What a pass is: a named object whose ``run(model)`` returns a PassResult.

Passes take the whole ``ir.Model`` rather than a bare graph because some need the opset version
or add model-local functions (fusions into infopt-domain ops). A pass mutates in place and says
honestly whether it changed anything; the manager, not the pass, wraps failures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..ir import Graph, Model, Node


@dataclass
class PassResult:
    model: Model
    modified: bool
    stats: dict[str, Any] = field(default_factory=dict)


class Pass:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def run(self, model: Model) -> PassResult:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<pass {self.name}>"


def walk_graphs(graph: Graph):
    """The graph and, depth first, every subgraph of its nodes."""
    yield graph
    for node in graph.nodes:
        for sub in node.subgraphs():
            yield from walk_graphs(sub)


def single_consumer(node: Node) -> Node | None:
    """The only node that reads ``node``'s single output, if that output has exactly one use and
    is not a graph output."""
    if len(node.outputs) != 1:
        return None
    out = node.outputs[0]
    if len(out.uses) != 1 or node.graph is None or node.graph.is_graph_output(out):
        return None
    return out.uses[0][0]
