"""The IR verifier: the invariants every pass result must keep.

Checked: use-def links agree in both directions; every value is defined once and before its
first use (so the node list is acyclic and topologically sorted); graph outputs are defined;
initializers match their declared type; inputs of standard ops that share a schema type
variable have one dtype. Each problem is reported in one line naming the node and the invariant.
"""

from __future__ import annotations

from collections.abc import Iterable

from onnx import defs

from ..errors import ModelError
from .graph import Graph, Model, Node, Value
from .types import dtype_name


class VerificationError(ModelError):
    pass


def _describe(node: Node) -> str:
    return f"node '{node.name}' ({node.qualified_op})" if node.name else f"{node.qualified_op} node"


def check_graph(graph: Graph, opset: int | None = None, outer: Iterable[Value] = ()) -> list[str]:
    """All invariant violations in ``graph`` (and its subgraphs), as one-line messages."""
    problems: list[str] = []
    defined: dict[int, Value] = {id(v): v for v in outer}
    names: dict[str, Value] = {v.name: v for v in outer if v.name}
    produced_later = {id(v): n for n in graph.nodes for v in n.outputs}

    def define(value: Value, where: str) -> None:
        if id(value) in defined and not any(value is o for o in outer):
            problems.append(f"value %{value.name} is defined twice ({where})")
        if value.name:
            other = names.get(value.name)
            if other is not None and other is not value:
                problems.append(f"two values are named %{value.name} ({where})")
            names[value.name] = value
        defined[id(value)] = value

    for v in graph.inputs:
        define(v, "graph input")
    for name, v in graph.initializers.items():
        if id(v) not in defined:
            define(v, "initializer")
        if v.name != name:
            problems.append(f"initializer key '{name}' holds value %{v.name}")
        if v.const is None:
            problems.append(f"initializer %{v.name} has no constant tensor")
        elif v.dtype is not None and v.const.dtype != v.dtype:
            problems.append(
                f"initializer %{v.name} is declared {dtype_name(v.dtype)} "
                f"but holds {dtype_name(v.const.dtype)}"
            )
        elif (
            v.shape is not None
            and tuple(v.shape) != tuple(v.const.shape)
            and all(isinstance(d, int) for d in v.shape)
        ):
            problems.append(
                f"initializer %{v.name} is declared {list(v.shape)} but holds {list(v.const.shape)}"
            )

    for node in graph.nodes:
        where = _describe(node)
        if node.graph is not graph:
            problems.append(f"{where} does not belong to graph '{graph.name}'")
        for i, v in enumerate(node.inputs):
            if v is None:
                continue
            if (node, i) not in v.uses:
                problems.append(f"{where} input {i} %{v.name} is missing from its use list")
            if id(v) not in defined:
                if id(v) in produced_later:
                    problems.append(
                        f"{where} reads %{v.name} before it is defined (cycle or unsorted graph)"
                    )
                else:
                    problems.append(f"{where} reads %{v.name}, which is defined nowhere")
        for sub in node.subgraphs():
            problems.extend(check_graph(sub, opset, list(defined.values())))
        for j, out in enumerate(node.outputs):
            if out.producer is not node or out.output_index != j:
                problems.append(f"{where} output {j} %{out.name} names another producer")
            if out.name == "":
                continue  # an omitted optional output
            define(out, where)
        problems.extend(_check_use_lists(node))
        if opset is not None:
            problems.extend(_check_type_constraints(node, opset))

    problems.extend(_check_use_lists([*graph.inputs, *graph.initializers.values()]))
    for v in graph.outputs:
        if id(v) not in defined:
            problems.append(f"graph output %{v.name} is not produced by any node or input")
    return problems


def _check_use_lists(node_or_values: Node | Iterable[Value]) -> list[str]:
    problems = []
    values = node_or_values.outputs if isinstance(node_or_values, Node) else node_or_values
    for out in values:
        for user, index in out.uses:
            if index >= len(user.inputs) or user.inputs[index] is not out:
                problems.append(
                    f"%{out.name} lists a use by {_describe(user)} input {index} that is not there"
                )
    return problems


def _check_type_constraints(node: Node, opset: int) -> list[str]:
    if node.domain not in ("", "ai.onnx"):
        return []
    try:
        schema = defs.get_schema(node.op_type, opset, "")
    except defs.SchemaError:
        return []
    bound: dict[str, tuple[int, str]] = {}
    problems = []
    formal = [(p.type_str, p.option) for p in schema.inputs]
    for i, v in enumerate(node.inputs):
        if v is None or v.dtype is None or not formal:
            continue
        type_str, option = formal[min(i, len(formal) - 1)]
        if i >= len(formal) and option != defs.OpSchema.FormalParameterOption.Variadic:
            break
        if not type_str.isidentifier() or type_str.startswith("tensor"):
            continue
        if type_str in bound and bound[type_str][0] != v.dtype:
            problems.append(
                f"{_describe(node)} input %{v.name} is {dtype_name(v.dtype)} but %"
                f"{bound[type_str][1]} bound type {type_str} to {dtype_name(bound[type_str][0])}"
            )
        bound.setdefault(type_str, (v.dtype, v.name))
    return problems


def verify(target: Graph | Model) -> None:
    """Raise VerificationError naming the first broken invariant."""
    if isinstance(target, Model):
        problems = check_graph(target.graph, target.opset(""))
    else:
        problems = check_graph(target)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise VerificationError(problems[0] + more)
