"""The IR verifier: one hand-broken graph per invariant, each reported in one line that names the
node or value at fault; real models verify cleanly."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import infopt
from infopt.ir import Graph, Model, Node, Tensor, Value, check_graph, verify
from infopt.ir.verify import VerificationError
from infopt.testing.models import LIGHT_MODELS, resolve

F32 = TensorProto.FLOAT
I64 = TensorProto.INT64


def _graph_with_input(name: str = "g") -> tuple[Graph, Value]:
    g = Graph(name)
    x = g.add_input(Value("x", F32, (2, 3)))
    return g, x


def _single_problem(graph: Graph, opset: int | None = None) -> str:
    problems = check_graph(graph, opset)
    assert len(problems) == 1, problems
    assert "\n" not in problems[0]
    return problems[0]


def _raises_one_line(target: Graph | Model, *fragments: str) -> str:
    with pytest.raises(VerificationError) as info:
        verify(target)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_verification_error_is_a_model_error():
    assert issubclass(VerificationError, infopt.ModelError)
    assert issubclass(VerificationError, infopt.InfoptError)


def test_well_formed_hand_built_graph_has_no_problems():
    g, x = _graph_with_input()
    w = g.add_initializer(Value("w", F32, (2, 3), const=Tensor(np.ones((2, 3), np.float32))))
    s, y = Value("s", F32, (2, 3)), Value("y", F32, (2, 3))
    g.append(Node("Add", [x, w], [s], name="add"))
    g.append(Node("Relu", [s], [y], name="relu"))
    g.outputs.append(y)
    assert check_graph(g) == []
    verify(Model(g, {"": 17}))


def test_cycle_between_two_nodes_is_reported_and_sort_refuses_it():
    g, x = _graph_with_input()
    a, b = Value("a", F32), Value("b", F32)
    g.append(Node("Add", [x, b], [a], name="n1"))
    g.append(Node("Relu", [a], [b], name="n2"))
    g.outputs.append(b)
    msg = _single_problem(g)
    assert msg == "node 'n1' (Add) reads %b before it is defined (cycle or unsorted graph)"
    _raises_one_line(g, "'n1'", "%b", "cycle")
    with pytest.raises(infopt.ModelError, match="cycle"):
        g.sort()


def test_cycle_is_reported_whichever_node_comes_first():
    g, x = _graph_with_input()
    a, b = Value("a", F32), Value("b", F32)
    n1 = Node("Add", [x, b], [a], name="n1")
    n2 = Node("Relu", [a], [b], name="n2")
    g.append(n2)
    g.append(n1)
    g.outputs.append(b)
    msg = _single_problem(g)
    assert "'n2'" in msg and "%a" in msg and "before it is defined" in msg


def test_use_before_definition_in_unsorted_list_then_sort_repairs_it():
    g, x = _graph_with_input()
    a, y = Value("a", F32), Value("y", F32)
    relu = Node("Relu", [x], [a], name="first")
    neg = Node("Neg", [a], [y], name="second")
    g.append(neg)
    g.append(relu)
    g.outputs.append(y)
    assert _single_problem(g) == (
        "node 'second' (Neg) reads %a before it is defined (cycle or unsorted graph)"
    )
    g.sort()
    assert [n.name for n in g.nodes] == ["first", "second"]
    assert check_graph(g) == []


def test_value_defined_nowhere():
    g, _ = _graph_with_input()
    ghost, y = Value("ghost", F32), Value("y", F32)
    g.append(Node("Relu", [ghost], [y]))
    g.outputs.append(y)
    assert _single_problem(g) == "Relu node reads %ghost, which is defined nowhere"
    _raises_one_line(g, "%ghost", "defined nowhere")


def test_value_defined_twice_as_input_and_node_output():
    g, x = _graph_with_input()
    y = Value("y", F32)
    g.append(Node("Relu", [x], [y], name="r"))
    g.add_input(y)  # y now also claims to be a graph input
    g.outputs.append(y)
    msg = _single_problem(g)
    assert msg == "value %y is defined twice (node 'r' (Relu))"


def test_same_value_listed_twice_as_graph_input():
    g, x = _graph_with_input()
    g.add_input(x)
    g.outputs.append(x)
    assert _single_problem(g) == "value %x is defined twice (graph input)"


def test_two_distinct_values_with_one_name():
    g, x = _graph_with_input()
    t1, t2 = Value("t", F32), Value("t", F32)
    y = Value("y", F32)
    g.append(Node("Relu", [x], [t1], name="a"))
    g.append(Node("Neg", [x], [t2], name="b"))
    g.append(Node("Add", [t1, t2], [y]))
    g.outputs.append(y)
    assert _single_problem(g) == "two values are named %t (node 'b' (Neg))"


def test_graph_output_not_produced():
    g, x = _graph_with_input()
    y = Value("y", F32)
    g.append(Node("Relu", [x], [y]))
    g.outputs.extend([y, Value("orphan", F32)])
    assert _single_problem(g) == "graph output %orphan is not produced by any node or input"
    _raises_one_line(g, "%orphan")


def test_input_appended_without_updating_use_list():
    g, x = _graph_with_input()
    y = Value("y", F32)
    node = Node("Add", [x], [y], name="add")
    g.append(node)
    g.outputs.append(y)
    node.inputs.append(x)  # bypasses append_input: x.uses does not learn about input 1
    assert _single_problem(g) == "node 'add' (Add) input 1 %x is missing from its use list"


def test_stale_use_entry_on_node_output():
    g, x = _graph_with_input()
    a, y = Value("a", F32), Value("y", F32)
    g.append(Node("Relu", [x], [a]))
    neg = g.append(Node("Neg", [a], [y], name="neg"))
    g.outputs.append(y)
    a.uses.append((neg, 3))
    assert _single_problem(g) == "%a lists a use by node 'neg' (Neg) input 3 that is not there"


def test_use_list_left_behind_by_direct_input_overwrite():
    g, x = _graph_with_input()
    a, b, y = Value("a", F32), Value("b", F32), Value("y", F32)
    g.append(Node("Relu", [x], [a]))
    g.append(Node("Neg", [x], [b]))
    add = g.append(Node("Add", [a, a], [y], name="add"))
    g.outputs.append(y)
    add.inputs[1] = b  # neither a.uses nor b.uses updated
    problems = check_graph(g)
    assert "node 'add' (Add) input 1 %b is missing from its use list" in problems
    assert "%a lists a use by node 'add' (Add) input 1 that is not there" in problems
    _raises_one_line(g, "'add'", "(and 1 more)")


def test_stale_use_entry_on_graph_input():
    g, x = _graph_with_input()
    y = Value("y", F32)
    relu = g.append(Node("Relu", [x], [y], name="relu"))
    g.outputs.append(y)
    x.uses.append((relu, 3))
    msg = _single_problem(g)
    assert "%x" in msg and "'relu'" in msg


def test_output_with_wrong_producer_link():
    g, x = _graph_with_input()
    y = Value("y", F32)
    other = Node("Neg", name="other")
    g.append(Node("Relu", [x], [y], name="relu"))
    g.outputs.append(y)
    y.producer = other
    assert _single_problem(g) == "node 'relu' (Relu) output 0 %y names another producer"


def test_output_with_wrong_output_index():
    g, x = _graph_with_input()
    y = Value("y", F32)
    g.append(Node("Relu", [x], [y], name="relu"))
    g.outputs.append(y)
    y.output_index = 1
    assert "output 0 %y names another producer" in _single_problem(g)


def test_node_not_attached_to_graph():
    g, x = _graph_with_input()
    y = Value("y", F32)
    g.nodes.append(Node("Relu", [x], [y], name="stray"))  # bypasses Graph.append
    g.outputs.append(y)
    assert _single_problem(g) == "node 'stray' (Relu) does not belong to graph 'g'"


def _graph_with_initializer(w: Value) -> Graph:
    g, x = _graph_with_input()
    g.add_initializer(w)
    y = Value("y", F32)
    g.append(Node("Add", [x, w], [y]))
    g.outputs.append(y)
    return g


def test_initializer_dtype_disagrees_with_tensor():
    w = Value("w", I64, (2, 3), const=Tensor(np.ones((2, 3), np.float32)))
    msg = _single_problem(_graph_with_initializer(w))
    assert msg == "initializer %w is declared i64 but holds f32"


def test_initializer_shape_disagrees_with_tensor():
    w = Value("w", F32, (3, 2), const=Tensor(np.ones((2, 3), np.float32)))
    msg = _single_problem(_graph_with_initializer(w))
    assert msg == "initializer %w is declared [3, 2] but holds [2, 3]"


def test_initializer_with_symbolic_declared_shape_is_accepted():
    w = Value("w", F32, ("n", 3), const=Tensor(np.ones((2, 3), np.float32)))
    assert check_graph(_graph_with_initializer(w)) == []


def test_initializer_stored_under_another_key():
    w = Value("w", F32, (2, 3), const=Tensor(np.ones((2, 3), np.float32)))
    g = _graph_with_initializer(w)
    g.initializers["v"] = g.initializers.pop("w")
    assert _single_problem(g) == "initializer key 'v' holds value %w"


def test_initializer_without_tensor():
    w = Value("w", F32, (2, 3), const=Tensor(np.ones((2, 3), np.float32)))
    g = _graph_with_initializer(w)
    w.const = None
    assert _single_problem(g) == "initializer %w has no constant tensor"


def _add_of(dtype_a: int, dtype_b: int) -> Graph:
    g = Graph("g")
    a = g.add_input(Value("a", dtype_a, (4,)))
    b = g.add_input(Value("b", dtype_b, (4,)))
    y = Value("y", dtype_a, (4,))
    g.append(Node("Add", [a, b], [y], name="add"))
    g.outputs.append(y)
    return g


def test_type_constraint_violation_through_model_opset():
    g = _add_of(F32, I64)
    msg = _raises_one_line(Model(g, {"": 17}), "'add'", "%b", "i64", "f32")
    assert msg == "node 'add' (Add) input %b is i64 but %a bound type T to f32"


def test_type_constraints_are_only_checked_when_an_opset_is_known():
    g = _add_of(F32, I64)
    assert check_graph(g) == []
    verify(g)  # a bare Graph has no opset
    assert check_graph(_add_of(F32, F32), 17) == []


def test_type_constraint_of_variadic_input():
    g = Graph("g")
    a = g.add_input(Value("a", F32, (4,)))
    b = g.add_input(Value("b", F32, (4,)))
    c = g.add_input(Value("c", TensorProto.INT32, (4,)))
    y = Value("y", F32, (4,))
    g.append(Node("Sum", [a, b, c], [y], name="sum"))
    g.outputs.append(y)
    msg = _single_problem(g, 17)
    assert "'sum'" in msg and "%c is i32" in msg


def test_custom_domain_nodes_are_not_type_checked():
    g = Graph("g")
    a = g.add_input(Value("a", F32, (4,)))
    b = g.add_input(Value("b", I64, (4,)))
    y = Value("y", F32, (4,))
    g.append(Node("Add", [a, b], [y], domain="infopt"))
    g.outputs.append(y)
    assert check_graph(g, 17) == []


def _if_node(outer: Graph, cond: Value, then_reads: Value) -> tuple[Node, Value]:
    then_g = Graph("then", parent=outer)
    t = Value("t", F32)
    then_g.append(Node("Identity", [then_reads], [t], name="then_id"))
    then_g.outputs.append(t)
    else_g = Graph("else", parent=outer)
    e = Value("e", F32)
    else_g.append(Node("Neg", [cond], [e], name="else_neg"))
    else_g.outputs.append(e)
    out = Value("out", F32)
    node = Node("If", [cond], [out], name="branch")
    node.set_attr("then_branch", then_g)
    node.set_attr("else_branch", else_g)
    return node, out


def test_subgraph_reading_outer_value_is_valid():
    g = Graph("g")
    cond = g.add_input(Value("cond", TensorProto.BOOL, ()))
    x = g.add_input(Value("x", F32, (2,)))
    node, out = _if_node(g, cond, x)
    g.append(node)
    g.outputs.append(out)
    assert check_graph(g) == []


def test_broken_subgraph_reading_undefined_value():
    g = Graph("g")
    cond = g.add_input(Value("cond", TensorProto.BOOL, ()))
    node, out = _if_node(g, cond, Value("ghost", F32))
    g.append(node)
    g.outputs.append(out)
    assert _single_problem(g) == "node 'then_id' (Identity) reads %ghost, which is defined nowhere"
    _raises_one_line(g, "'then_id'", "%ghost")


def test_subgraph_may_not_read_a_value_defined_after_its_node():
    g = Graph("g")
    cond = g.add_input(Value("cond", TensorProto.BOOL, ()))
    x = g.add_input(Value("x", F32, (2,)))
    late = Value("late", F32)
    node, out = _if_node(g, cond, late)
    g.append(node)
    g.append(Node("Relu", [x], [late], name="late_relu"))
    g.outputs.extend([out, late])
    problems = check_graph(g)
    assert problems and all("\n" not in p for p in problems)
    assert any("%late" in p and "'then_id'" in p for p in problems), problems


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_verifies_cleanly(name):
    model = infopt.load(resolve(name))
    assert check_graph(model.graph, model.opset("")) == []
    verify(model)


def test_imported_tiny_model_verifies_cleanly(tiny_model):
    model = infopt.load(tiny_model.SerializeToString())
    assert [n.op_type for n in model.graph.nodes] == ["Add", "Relu"]
    assert check_graph(model.graph, model.opset("")) == []
    verify(model)


def test_compiled_model_verifies_cleanly():
    model, _ = infopt.compile(str(resolve("squeezenet")), level=2, target="cpu")
    verify(model)
    for fn in model.functions:
        assert check_graph(fn.body) == [], fn.name


def _cyclic_proto() -> onnx.ModelProto:
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "b"], ["a"], name="n1"),
            helper.make_node("Relu", ["a"], ["b"], name="n2"),
        ],
        "cyc",
        [helper.make_tensor_value_info("x", F32, [2])],
        [helper.make_tensor_value_info("b", F32, [2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_importing_cyclic_onnx_model_raises_model_error():
    with pytest.raises(infopt.ModelError, match="cycle") as info:
        infopt.load(_cyclic_proto().SerializeToString())
    assert "\n" not in str(info.value)


def test_importing_unsorted_onnx_model_sorts_it():
    graph = helper.make_graph(
        [
            helper.make_node("Neg", ["a"], ["y"], name="second"),
            helper.make_node("Relu", ["x"], ["a"], name="first"),
        ],
        "unsorted",
        [helper.make_tensor_value_info("x", F32, [2])],
        [helper.make_tensor_value_info("y", F32, [2])],
    )
    model = infopt.load(helper.make_model(graph).SerializeToString())
    assert [n.name for n in model.graph.nodes] == ["first", "second"]
    verify(model)
