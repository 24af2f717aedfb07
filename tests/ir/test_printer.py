"""The printer: every IR object in one line, in the format the design document shows."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto

import infopt
from infopt.ir import (
    Attr,
    Graph,
    Node,
    Tensor,
    Value,
    format_graph,
    format_node,
    format_value,
)
from infopt.testing.models import resolve

F32 = TensorProto.FLOAT


def _conv() -> tuple[Node, Value]:
    x = Value("x", F32, (1, 64, 56, 56))
    w = Value("w", F32, (64, 64, 3, 3))
    y = Value("y", F32, (1, 64, 56, 56))
    node = Node("Conv", [x, w], [y], attrs=[Attr("strides", "INTS", [1, 1])])
    return node, y


def test_node_in_design_document_form():
    node, _ = _conv()
    assert format_node(node) == "%y: f32[1,64,56,56] = Conv(%x, %w) {strides=[1,1]}"
    assert repr(node) == format_node(node)


@pytest.mark.parametrize(
    ("dtype", "shape", "text"),
    [
        (F32, (1, 3, 224, 224), "%v: f32[1,3,224,224]"),
        (F32, ("batch", 3, None), "%v: f32[batch,3,?]"),
        (TensorProto.INT64, (), "%v: i64[]"),
        (TensorProto.FLOAT16, None, "%v: f16"),
        (TensorProto.BOOL, ("N",), "%v: bool[N]"),
        (TensorProto.UINT8, (2,), "%v: u8[2]"),
        (None, None, "%v: ?"),
        (None, (None, "s"), "%v: ?[?,s]"),
    ],
)
def test_value_forms(dtype, shape, text):
    v = Value("v", dtype, shape)
    assert format_value(v) == text
    assert repr(v) == text


def test_value_of_unlisted_dtype_uses_its_onnx_name():
    assert format_value(Value("v", TensorProto.FLOAT8E4M3FN, (2,))) == "%v: float8e4m3fn[2]"


def test_non_tensor_value_prints_as_opaque():
    v = Value("seq")
    v.type_payload = onnx.helper.make_sequence_type_proto(
        onnx.helper.make_tensor_type_proto(F32, [2])
    )
    assert format_value(v) == "%seq: <opaque>"


def test_attribute_kinds_sorted_by_name():
    x, y = Value("x", F32, (2,)), Value("y", F32, (2,))
    node = Node("Op", [x], [y])
    node.set_attr("zeta", 3)
    node.set_attr("alpha", 0.5)
    node.set_attr("mode", "constant")
    node.set_attr("pads", [0, 1, 2])
    node.set_attr("scales", [1.5, 2.0])
    node.set_attr("raw", b"ab")
    node.attrs["ref"] = Attr("ref", "FLOAT", ref="beta")
    assert format_node(node) == (
        "%y: f32[2] = Op(%x) {alpha=0.5, mode='constant', pads=[0,1,2], raw='ab', "
        "ref=@beta, scales=[1.5,2], zeta=3}"
    )


def test_long_list_attribute_is_truncated_with_its_length():
    node = Node("Op", [], [Value("y", F32)])
    node.set_attr("ints", list(range(20)))
    assert format_node(node) == "%y: f32 = Op() {ints=[0,1,2,3,4,5,6,7,...(20)]}"


def test_tensor_attributes_small_inline_large_summarized():
    node = Node("Constant", [], [Value("c", F32, (2,))])
    node.set_attr("value", Tensor(np.array([1.5, -2.0], np.float32)))
    assert format_node(node) == "%c: f32[2] = Constant() {value=f32[2][1.5,-2]}"
    node.set_attr("value", Tensor(np.zeros((3, 3), np.float32)))
    assert format_node(node) == "%c: f32[2] = Constant() {value=<tensor f32[3,3]>}"


def test_string_attribute_with_newline_stays_on_one_line():
    node = Node("Op", [], [Value("y", F32)])
    node.set_attr("text", "two\nlines")
    node.set_attr("blob", b"a\nb")
    text = format_node(node)
    assert "\n" not in text
    assert text == "%y: f32 = Op() {blob='a\\nb', text='two\\nlines'}"


def test_domain_multiple_outputs_and_omitted_optional_input():
    x = Value("x", F32, (1, 8))
    a, b = Value("a", F32, (1, 8)), Value("b", TensorProto.INT64, (1, 8))
    node = Node("FusedThing", [x, None, x], [a, b], domain="infopt")
    assert format_node(node) == ("%a: f32[1,8], %b: i64[1,8] = infopt.FusedThing(%x, None, %x)")
    node.domain = "ai.onnx"
    assert " = FusedThing(" in format_node(node)


def test_graph_attribute_is_summarized_in_the_node_line():
    body = Graph("body")
    body.append(Node("Identity", [Value("x")], [Value("t")]))
    node = Node("If", [Value("c", TensorProto.BOOL, ())], [Value("y", F32)])
    node.set_attr("then_branch", body)
    node.set_attr("else_branch", Graph(""))
    assert format_node(node) == (
        "%y: f32 = If(%c) {else_branch=<graph ?: 0 nodes>, then_branch=<graph body: 1 nodes>}"
    )


def test_graph_layout():
    g = Graph("main")
    x = g.add_input(Value("x", F32, ("N", 4)))
    w = g.add_input(Value("w", F32, (4,), const=Tensor(np.ones(4, np.float32))))
    g.add_initializer(w)
    b = g.add_initializer(Value("b", F32, (4,), const=Tensor(np.zeros(4, np.float32))))
    s, y = Value("s", F32, ("N", 4)), Value("y", F32, ("N", 4))
    g.append(Node("Mul", [x, w], [s]))
    g.append(Node("Add", [s, b], [y]))
    g.outputs.append(y)
    assert format_graph(g) == "\n".join(
        [
            "graph main (",
            "  %x: f32[N,4]",
            "  %w: f32[4]  # has initializer",
            ") {",
            "  const %b: f32[4]",
            "  %s: f32[N,4] = Mul(%x, %w)",
            "  %y: f32[N,4] = Add(%s, %b)",
            "  return %y",
            "}",
        ]
    )
    assert repr(g) == format_graph(g)


def test_unnamed_graph_and_many_initializers():
    g = Graph()
    for i in range(11):
        g.add_initializer(Value(f"c{i}", F32, (1,), const=Tensor(np.ones(1, np.float32))))
    text = format_graph(g)
    assert text.splitlines()[0] == "graph <unnamed> ("
    assert "const %c7: f32[1]" in text and "%c8" not in text
    assert "  ... 3 more initializers" in text.splitlines()


def test_graph_printing_includes_subgraphs_indented():
    model = infopt.load(
        onnx.parser.parse_model(
            """
        <ir_version: 8, opset_import: ["" : 17]>
        outer (float[N, 4] x, bool c) => (float[N, 4] y) {
            y = If(c) <
                then_branch = g_then () => (float[N, 4] t) { t = Add(x, x) },
                else_branch = g_else () => (float[N, 4] e) { e = Neg(x) }
            >
        }
        """
        )
    )
    lines = format_graph(model.graph).splitlines()
    assert lines[0] == "graph outer ("
    assert "  %x: f32[N,4]" in lines
    node_line = next(i for i, line in enumerate(lines) if " = If(%c)" in line)
    assert lines[node_line] == (
        "  %y: f32[N,4] = If(%c) {else_branch=<graph g_else: 1 nodes>, "
        "then_branch=<graph g_then: 1 nodes>}"
    )
    # both branches follow their node, indented one level deeper
    assert lines[node_line + 1] in ("    graph g_then (", "    graph g_else (")
    assert "    graph g_then (" in lines and "    graph g_else (" in lines
    assert "      %e: f32[N,4] = Neg(%x)" in lines
    assert "      %t: f32[N,4] = Add(%x, %x)" in lines
    assert "      return %t" in lines and "      return %e" in lines
    assert lines[-2:] == ["  return %y", "}"]


def test_real_model_prints_one_line_per_node():
    model = infopt.load(resolve("squeezenet"))
    g = model.graph
    lines = format_graph(g).splitlines()
    for node in g.nodes:
        assert "  " + format_node(node) in lines
    conv = next(n for n in g.nodes if n.op_type == "Conv")
    assert format_node(conv).startswith(f"%{conv.outputs[0].name}")
    assert " = Conv(%" in format_node(conv)
