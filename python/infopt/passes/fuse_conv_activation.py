"""Fuse Conv [+ residual Add] [+ activation] into one infopt ``FusedConv*`` op.

Identity relied on: ``act(Conv(X, W, B) + Z)`` computed in one kernel with the add and the
activation applied while the convolution's output tile is still in registers.
Refuses when an intermediate has a second user or is a graph output, when the residual's shape is
not provably the Conv output's shape (no broadcasting in the epilogue), or when the activation's
parameters are not plain attributes.
"""

from __future__ import annotations

from ..ir import Model, Node, Value
from ..ops import DOMAIN, ensure_function
from ..ops.fused_conv import ACTIVATIONS, CONV_ATTRS, op_name
from .base import Pass, PassResult, single_consumer, walk_graphs


def _is(node: Node | None, *ops: str) -> bool:
    return node is not None and node.domain in ("", "ai.onnx") and node.op_type in ops


def _residual_of(add: Node, conv_out: Value) -> Value | None:
    """The other operand of a two-input Add/Sum, if its shape equals the Conv output's."""
    if len(add.inputs) != 2 or add.inputs[0] is add.inputs[1]:
        return None
    other = add.inputs[1] if add.inputs[0] is conv_out else add.inputs[0]
    if other is None or other.shape is None or conv_out.shape is None:
        return None
    if tuple(other.shape) != tuple(conv_out.shape) or not all(
        isinstance(d, int) for d in other.shape
    ):
        return None
    return other


class FuseConvActivation(Pass):
    name = "fuse_conv_activation"
    description = "Conv + residual Add + activation -> infopt FusedConv*"

    def run(self, model: Model) -> PassResult:
        fused: dict[str, int] = {}
        for graph in walk_graphs(model.graph):
            for conv in list(graph.nodes):
                if conv.graph is not graph or not _is(conv, "Conv") or len(conv.inputs) < 2:
                    continue
                chain = [conv]
                tail = conv
                residual = None
                nxt = single_consumer(tail)
                if _is(nxt, "Add", "Sum"):
                    residual = _residual_of(nxt, tail.outputs[0])
                    if residual is not None:
                        chain.append(nxt)
                        tail = nxt
                        nxt = single_consumer(tail)
                activation = None
                if _is(nxt, *ACTIVATIONS) and nxt.inputs[0] is tail.outputs[0]:
                    activation = nxt.op_type
                    chain.append(nxt)
                    tail = nxt
                if len(chain) == 1:
                    continue
                op = op_name(residual is not None, activation)
                bias = conv.inputs[2] if len(conv.inputs) > 2 else None
                inputs = [conv.inputs[0], conv.inputs[1], bias]
                if residual is not None:
                    inputs.append(residual)
                out = tail.outputs[0]
                attrs = [conv.attrs[a] for a in CONV_ATTRS if a in conv.attrs]
                if activation:
                    attrs += [tail.attrs[a] for a in ACTIVATIONS[activation] if a in tail.attrs]
                # detach the chain's final output so the fused node can produce it under its name
                for node in reversed(chain):
                    node.drop_inputs()
                tail.outputs.remove(out)
                out.producer = None
                fused_node = Node(op, inputs, [], domain=DOMAIN, name=conv.name, attrs=attrs)
                fused_node.append_output(out)
                # at the tail's place: the residual may be computed after the Conv
                graph.insert_before(tail, fused_node)
                for node in chain:
                    node.outputs.clear()  # nothing reads them: the chain was single-use
                    graph.nodes.remove(node)
                    node.graph = None
                ensure_function(model, op)
                fused[op] = fused.get(op, 0) + 1
        graph_ok = sum(fused.values())
        return PassResult(model, graph_ok > 0, {"fused": graph_ok, **fused})
