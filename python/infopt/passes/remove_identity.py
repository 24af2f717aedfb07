"""No-op removal: Identity, and Dropout in inference (no training_mode input set, mask unused).

Identity relied on: the output equals the input. Refuses when the output is a graph output whose
input is also a graph output or graph input (the model's interface would lose a name).
"""

from __future__ import annotations

from ..ir import Model, Node, Value
from .base import Pass, PassResult, walk_graphs


def _is_noop(node: Node) -> bool:
    if node.domain not in ("", "ai.onnx"):
        return False
    if node.op_type == "Identity":
        return True
    if node.op_type == "Dropout":
        mask_used = len(node.outputs) > 1 and bool(node.outputs[1].uses)
        training = len(node.inputs) > 2 and node.inputs[2] is not None
        return not mask_used and not training
    return False


class RemoveIdentity(Pass):
    name = "remove_identity"
    description = "remove Identity and inference-mode Dropout"

    def run(self, model: Model) -> PassResult:
        removed = 0
        for graph in walk_graphs(model.graph):
            for node in list(graph.nodes):
                if not _is_noop(node) or node.inputs[0] is None:
                    continue
                src, out = node.inputs[0], node.outputs[0]
                if any(extra.uses for extra in node.outputs[1:]):
                    continue
                if graph.is_graph_output(out):
                    if graph.is_graph_output(src) or src.producer is None:
                        continue
                    # keep the interface name: the producer now writes the output directly
                    _rename_through(src, out)
                else:
                    out.replace_all_uses_with(src)
                graph.remove_node(node)
                removed += 1
        return PassResult(model, removed > 0, {"removed": removed})


def _rename_through(src: Value, out: Value) -> None:
    """Make ``out`` (a graph output) take the place of ``src`` as its producer's output."""
    node = out.producer
    node.set_input(0, None)
    producer, index = src.producer, src.output_index
    src.replace_all_uses_with(out)
    # detach both values, then swap them in the producer's and the Identity's output slots
    out.producer, src.producer = producer, node
    out.output_index, src.output_index = index, 0
    producer.outputs[index] = out
    node.outputs[0] = src
    out.dtype = out.dtype or src.dtype
    out.shape = out.shape or src.shape
