"""The in-memory IR: Model, Graph, Node, Value, Tensor, Attr and Function.

Values keep use-def links in both directions: ``value.producer`` / ``value.uses`` and
``node.inputs`` / ``node.outputs``. Mutate the graph only through the methods here
(``Node.set_input``, ``Graph.remove_node``, ``Value.replace_all_uses_with``...) so the links stay
consistent; ``ir.verify`` checks that they are.

Nothing in this module touches ONNX protobufs except as opaque payloads that ``ir.serde`` owns
(a lazily converted initializer, a non-tensor type).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .types import Shape, from_numpy_dtype


class Tensor:
    """A constant tensor. Holds either a numpy array or a loader that produces one on demand,
    so that importing a large model does not convert every initializer up front."""

    def __init__(
        self,
        array: np.ndarray | None = None,
        *,
        dtype: int | None = None,
        shape: tuple[int, ...] | None = None,
        loader: Callable[[], np.ndarray] | None = None,
        payload: Any = None,
    ):
        if array is None and loader is None:
            raise ValueError("Tensor needs an array or a loader")
        self._array = array
        self._loader = loader
        # serde keeps the original proto here so that an untouched tensor is written back as is
        self.payload = payload
        if array is not None:
            dtype = from_numpy_dtype(array.dtype) if dtype is None else dtype
            shape = tuple(array.shape)
        self.dtype: int = dtype  # type: ignore[assignment]
        self.shape: tuple[int, ...] = tuple(shape or ())

    def numpy(self) -> np.ndarray:
        if self._array is None:
            self._array = self._loader()  # type: ignore[misc]
        return self._array

    @property
    def loader(self) -> Callable[[], np.ndarray] | None:
        return self._loader

    def drop_array(self) -> bool:
        """Forget the cached array when the loader can produce it again, so that its memory
        goes once nobody else holds it (the runtime does this for weights it has taken over).
        Returns whether it was dropped."""
        if self._loader is None:
            return False
        self._array = None
        return True

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class Value:
    """An SSA value: a graph input, an initializer, or one output of a node."""

    def __init__(
        self,
        name: str,
        dtype: int | None = None,
        shape: Shape | None = None,
        *,
        const: Tensor | None = None,
    ):
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.const = const
        self.producer: Node | None = None
        self.output_index: int = -1
        self.uses: list[tuple[Node, int]] = []
        self.doc_string = ""
        # serde's record of a non-tensor type (sequence, map, optional) that we carry opaquely
        self.type_payload: Any = None
        self.metadata: dict[str, str] = {}

    def __repr__(self) -> str:
        from .printer import format_value

        return format_value(self)

    @property
    def is_constant(self) -> bool:
        return self.const is not None

    def consumers(self) -> list[Node]:
        seen: dict[int, Node] = {}
        for node, _ in self.uses:
            seen.setdefault(id(node), node)
        return list(seen.values())

    def replace_all_uses_with(self, other: Value) -> None:
        for node, index in list(self.uses):
            node.set_input(index, other)


@dataclass
class Attr:
    """A node attribute. ``type`` is the ONNX AttributeProto type name (``"INT"``, ``"FLOATS"``,
    ``"GRAPH"``...). Graph attributes hold ``Graph`` objects. ``ref`` names the enclosing
    function's attribute when this one is a reference (function bodies only)."""

    name: str
    type: str
    value: Any = None
    ref: str | None = None
    doc_string: str = ""


class Node:
    def __init__(
        self,
        op_type: str,
        inputs: Iterable[Value | None] = (),
        outputs: Iterable[Value] = (),
        *,
        domain: str = "",
        name: str = "",
        attrs: Iterable[Attr] = (),
        overload: str = "",
    ):
        self.op_type = op_type
        self.domain = domain
        self.name = name
        self.overload = overload
        self.doc_string = ""
        self.metadata: dict[str, str] = {}
        self.graph: Graph | None = None
        self.attrs: dict[str, Attr] = {a.name: a for a in attrs}
        self.inputs: list[Value | None] = []
        self.outputs: list[Value] = []
        for value in inputs:
            self.append_input(value)
        for value in outputs:
            self.append_output(value)

    def __repr__(self) -> str:
        from .printer import format_node

        return format_node(self)

    # --- wiring ------------------------------------------------------------------------------
    def append_input(self, value: Value | None) -> None:
        self.inputs.append(value)
        if value is not None:
            value.uses.append((self, len(self.inputs) - 1))

    def set_input(self, index: int, value: Value | None) -> None:
        old = self.inputs[index]
        if old is not None:
            old.uses.remove((self, index))
        self.inputs[index] = value
        if value is not None:
            value.uses.append((self, index))

    def drop_inputs(self) -> None:
        for index in range(len(self.inputs)):
            self.set_input(index, None)

    def append_output(self, value: Value) -> None:
        if value.producer is not None:
            raise ValueError(f"value %{value.name} already has a producer")
        value.producer = self
        value.output_index = len(self.outputs)
        self.outputs.append(value)

    # --- attributes ----------------------------------------------------------------------------
    def attr(self, name: str, default: Any = None) -> Any:
        a = self.attrs.get(name)
        return default if a is None else a.value

    def set_attr(self, name: str, value: Any, type: str | None = None) -> None:
        self.attrs[name] = Attr(name, type or attr_type_of(value), value)

    @property
    def qualified_op(self) -> str:
        """``Conv`` for the default domain, ``infopt.FusedConvRelu`` otherwise."""
        if self.domain in ("", "ai.onnx"):
            return self.op_type
        return f"{self.domain}.{self.op_type}"

    def subgraphs(self) -> Iterator[Graph]:
        for a in self.attrs.values():
            if a.type == "GRAPH" and a.value is not None:
                yield a.value
            elif a.type == "GRAPHS":
                yield from a.value


def attr_type_of(value: Any) -> str:
    """The ONNX attribute type a Python value maps to."""
    if isinstance(value, bool | int | np.integer):
        return "INT"
    if isinstance(value, float | np.floating):
        return "FLOAT"
    if isinstance(value, str | bytes):
        return "STRING"
    if isinstance(value, Tensor):
        return "TENSOR"
    if isinstance(value, Graph):
        return "GRAPH"
    if isinstance(value, list | tuple):
        if not value:
            return "INTS"
        return attr_type_of(value[0]) + "S"
    raise TypeError(f"cannot infer the attribute type of {type(value).__name__}")


def claim_name(taken: set[str], base: str) -> str:
    """``base``, or ``base__1``, ``base__2``, ... if taken; the name returned is added to
    ``taken``. For rewrites that keep their own set of the graph's names instead of scanning
    the graph per new value (``Graph.unique_name``)."""
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}__{k}"
    taken.add(name)
    return name


class Graph:
    """A list of nodes kept in topological order, with graph inputs, outputs and initializers.

    ``initializers`` maps names to constant Values; in IR v3 style models an initializer may
    also be listed among ``inputs`` (it then acts as an overridable default)."""

    def __init__(self, name: str = "", parent: Graph | None = None):
        self.name = name
        self.parent = parent
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.initializers: dict[str, Value] = {}
        self.nodes: list[Node] = []
        self.doc_string = ""
        self.metadata: dict[str, str] = {}
        # serde's opaque leftovers (sparse initializers, quantization annotations)
        self.extra_payload: dict[str, Any] = {}
        self._name_counter = itertools.count()

    def __repr__(self) -> str:
        from .printer import format_graph

        return format_graph(self)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self.nodes))

    def __len__(self) -> int:
        return len(self.nodes)

    # --- construction ---------------------------------------------------------------------------
    def add_input(self, value: Value) -> Value:
        self.inputs.append(value)
        return value

    def add_initializer(self, value: Value) -> Value:
        if value.const is None:
            raise ValueError(f"initializer %{value.name} has no constant tensor")
        self.initializers[value.name] = value
        return value

    def append(self, node: Node) -> Node:
        node.graph = self
        self.nodes.append(node)
        return node

    def insert_before(self, anchor: Node, node: Node) -> Node:
        node.graph = self
        self.nodes.insert(self.nodes.index(anchor), node)
        return node

    def remove_node(self, node: Node) -> None:
        """Unlink a node whose outputs are no longer used (raises otherwise)."""
        for out in node.outputs:
            if out.uses or out in self.outputs:
                raise ValueError(f"cannot remove {node.op_type} node: output %{out.name} is used")
        node.drop_inputs()
        self.nodes.remove(node)
        node.graph = None

    def remove_initializer(self, name: str) -> None:
        value = self.initializers.pop(name)
        if value in self.inputs:
            self.inputs.remove(value)

    # --- queries --------------------------------------------------------------------------------
    def all_values(self) -> Iterator[Value]:
        seen: set[int] = set()
        for v in itertools.chain(self.inputs, self.initializers.values()):
            if id(v) not in seen:
                seen.add(id(v))
                yield v
        for node in self.nodes:
            yield from node.outputs

    def unique_name(self, base: str) -> str:
        taken = self._all_names()
        while True:
            name = f"{base}__{next(self._name_counter)}"
            if name not in taken:
                return name

    def _all_names(self) -> set[str]:
        names = {v.name for v in self.all_values()}
        root: Graph | None = self
        while root is not None:
            names.update(root.initializers)
            root = root.parent
        return names

    def is_graph_output(self, value: Value) -> bool:
        return any(v is value for v in self.outputs)

    def sort(self) -> None:
        """Re-order nodes topologically (stable); raises ModelError on a cycle."""
        from ..errors import ModelError

        pending = {id(n): n for n in self.nodes}
        produced_here = {id(v): n for n in self.nodes for v in n.outputs}
        done: set[int] = set()
        order: list[Node] = []
        state: dict[int, int] = {}

        def deps(n: Node) -> Iterator[Node]:
            for v in itertools.chain(n.inputs, _outer_refs(n)):
                if v is not None and id(v) in produced_here:
                    yield produced_here[id(v)]

        for start in self.nodes:
            if id(start) in done:
                continue
            stack = [(start, deps(start))]
            state[id(start)] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    state[id(node)] = 2
                    done.add(id(node))
                    order.append(node)
                elif state.get(id(nxt)) == 1:
                    raise ModelError(
                        f"graph '{self.name}' has a cycle through node {nxt.name or nxt.op_type}"
                    )
                elif id(nxt) not in done:
                    state[id(nxt)] = 1
                    stack.append((nxt, deps(nxt)))
        assert len(order) == len(pending)
        self.nodes = order


def _outer_refs(node: Node) -> Iterator[Value]:
    """Values of enclosing scopes that a node's subgraphs read (implicit inputs)."""
    for sub in node.subgraphs():
        yield from sub.outer_references()


def _outer_references(self: Graph) -> list[Value]:
    local = {id(v) for v in self.all_values()}
    refs: dict[int, Value] = {}
    for node in self.nodes:
        for v in itertools.chain(node.inputs, _outer_refs(node)):
            if v is not None and id(v) not in local:
                refs.setdefault(id(v), v)
    return list(refs.values())


Graph.outer_references = _outer_references  # type: ignore[attr-defined]


@dataclass
class Function:
    """A model-local ONNX function (``domain.name``): the decomposition of a custom op."""

    domain: str
    name: str
    inputs: list[str]
    outputs: list[str]
    body: Graph
    attributes: list[str] = field(default_factory=list)
    attribute_defaults: dict[str, Attr] = field(default_factory=dict)
    opset_imports: dict[str, int] = field(default_factory=dict)
    overload: str = ""
    doc_string: str = ""


@dataclass
class Model:
    graph: Graph
    opset_imports: dict[str, int]
    ir_version: int = 8
    producer_name: str = ""
    producer_version: str = ""
    domain: str = ""
    model_version: int = 0
    doc_string: str = ""
    metadata_props: dict[str, str] = field(default_factory=dict)
    functions: list[Function] = field(default_factory=list)
    # serde's opaque leftovers (training_info, configuration)
    extra_payload: dict[str, Any] = field(default_factory=dict)

    def opset(self, domain: str = "") -> int:
        if domain in ("", "ai.onnx"):
            return self.opset_imports.get("", self.opset_imports.get("ai.onnx", 1))
        return self.opset_imports.get(domain, 1)

    def function(self, domain: str, name: str) -> Function | None:
        for fn in self.functions:
            if fn.domain == domain and fn.name == name:
                return fn
        return None
