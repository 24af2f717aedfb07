"""The pattern-rewrite API: matching, commutative variants, outside users, check reasons, the
tracer, and the counts a RuleSet reports."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import infopt
from infopt.ir import verify
from infopt.rewrite import Rule, RuleSet, Tracer, trace, variants


def _model(text: str) -> infopt.ir.Model:
    return infopt.load(onnx.parser.parse_model(text))


def _relu_of_add(op, x, y):
    return op.Relu(op.Add(x, y, _name="add"), _name="act")


def _to_custom(m, b):
    return b.op("AddRelu", m["x"], m["y"], _domain="test")


ADD_RELU = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[2,3] a, float[2,3] b) => (float[2,3] y) {
    s = Add(a, b)
    y = Relu(s)
}
"""


def test_trace_records_nodes_and_vars():
    pat = trace(_relu_of_add)
    assert [n.op_type for n in pat.nodes] == ["Add", "Relu"]
    assert set(pat.vars) == {"x", "y"} and pat.root.op_type == "Relu"


def test_commutative_variants_are_generated():
    assert len(variants(trace(_relu_of_add))) == 2
    assert len(variants(trace(lambda op, x: op.Relu(op.Add(x, x))))) == 1


def test_rule_rewrites_and_keeps_output_name():
    model = _model(ADD_RELU)
    stats = RuleSet([Rule("add_relu", _relu_of_add, _to_custom)]).apply(model)
    assert stats == {"applied": 1, "attempted": 1, "failed": 0, "add_relu": 1}
    assert [n.op_type for n in model.graph.nodes] == ["AddRelu"]
    assert model.graph.outputs[0].name == "y" and model.graph.outputs[0].producer.op_type == (
        "AddRelu"
    )
    verify(model.graph)


def test_intermediate_with_outside_user_is_refused_and_traced():
    model = _model(
        """
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2,3] a, float[2,3] b) => (float[2,3] y, float[2,3] z) {
            s = Add(a, b)
            y = Relu(s)
            z = Neg(s)
        }
        """
    )
    tracer = Tracer()
    stats = RuleSet([Rule("add_relu", _relu_of_add, _to_custom)]).apply(model, tracer)
    assert stats["applied"] == 0 and stats["failed"] == 1
    why = tracer.why("add_relu", "y")
    assert "%s has a user outside the pattern" in why, why
    assert tracer.best("add_relu").depth == 2
    assert "add_relu: attempted=1 applied=0 failed=1" in tracer.report()


def test_check_reason_names_the_value():
    model = _model(ADD_RELU)
    tracer = Tracer()
    rule = Rule(
        "add_relu",
        _relu_of_add,
        _to_custom,
        check=lambda m: f"%{m['y'].name} is not constant" if m.const("y") is None else None,
    )
    RuleSet([rule]).apply(model, tracer)
    assert "check: %" in tracer.why("add_relu", "y") and "is not constant" in tracer.why(
        "add_relu", "y"
    )
    assert [n.op_type for n in model.graph.nodes] == ["Add", "Relu"]


def test_wrong_op_names_node_and_wanted_op():
    model = _model(ADD_RELU.replace("Add(a, b)", "Sub(a, b)"))
    tracer = Tracer()
    RuleSet([Rule("add_relu", _relu_of_add, _to_custom)]).apply(model, tracer)
    assert "is Sub, pattern wants Add" in tracer.why("add_relu", "y")
    assert "was not attempted" in tracer.why("add_relu", "s")


def test_constant_pattern_value_and_swapped_operands():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["half", "x"], ["y"])], "g", [x], [y], [half]
    )
    model = infopt.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    rule = Rule(
        "halve",
        lambda op, v: op.Mul(v, op.const(0.5)),
        lambda m, b: b.op("Div", m["v"], b.const(np.array(2.0, np.float32))),
    )
    assert RuleSet([rule]).apply(model)["halve"] == 1
    assert [n.op_type for n in model.graph.nodes] == ["Div"]
    verify(model)


def test_declined_rewrite_leaves_graph_unchanged():
    model = _model(ADD_RELU)
    rule = Rule("no", _relu_of_add, lambda m, b: (b.const(np.ones(1)), None)[1])
    stats = RuleSet([rule]).apply(model)
    assert stats["applied"] == 0 and len(model.graph.initializers) == 0
    verify(model)


def test_replacing_a_graph_output_by_an_input_is_refused():
    model = _model(ADD_RELU)
    stats = RuleSet([Rule("drop", _relu_of_add, lambda m, b: m["x"])]).apply(model)
    assert stats["applied"] == 0
    assert [n.op_type for n in model.graph.nodes] == ["Add", "Relu"]


@pytest.mark.parametrize("name", ["fuse_conv_activation", "fuse_gelu", "fuse_attention"])
def test_pass_stats_carry_rule_counts(name):
    model = _model(ADD_RELU)
    result = infopt.passes.create(name).run(model)
    assert {"applied", "attempted", "failed"} <= set(result.stats)
