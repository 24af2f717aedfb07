"""Symbolic shapes and shape values (infopt.ir.symbolic): sound, and precise where provable."""

from __future__ import annotations

import onnx.parser

import infopt
from infopt.ir.symbolic import Sym, SymbolicShapes, atom, equal, floordiv, mul, sub


def _shapes(text: str) -> tuple[SymbolicShapes, dict]:
    model = infopt.load(
        onnx.parser.parse_model('<ir_version: 8, opset_import: ["" : 17]>\n' + text)
    )
    values = {v.name: v for v in model.graph.all_values()}
    return SymbolicShapes(model.graph), values


B, S = atom("batch"), atom("seq")


def test_arithmetic_keeps_products_canonical():
    assert mul(B, 12) == Sym(12, ("batch",))
    assert mul(S, B) == mul(B, S)
    assert floordiv(mul(mul(B, S), 384), mul(S, 12)) == mul(B, 32)
    assert floordiv(mul(B, 12), 5) not in (B, mul(B, 2))  # not exact: an opaque symbol
    assert sub(mul(B, 3), mul(B, 3)) == 0


def test_comparisons_use_non_negative_dims_only():
    assert equal(B, -1) is False  # dims are never negative
    assert equal(B, B) is True
    assert equal(B, 4) is None  # depends on the run
    assert equal(B, S) is None
    assert equal(sub(B, S), -1) is None  # a difference may be negative


def test_shape_values_flow_through_gather_concat():
    ctx, v = _shapes(
        """
        g (float[batch, seq, 384] x) => (int64[4] t) {
            s = Shape(x)
            i = Constant<value = int64 {1}>()
            n = Gather<axis = 0>(s, i)
            n1 = Unsqueeze(n, zero)
            h = Constant<value = int64[2] {12, 32}>()
            z = Constant<value = int64[1] {0}>()
            o = Constant<value = int64[1] {1}>()
            first = Slice(s, z, o)
            t = Concat<axis = 0>(first, n1, h)
        }
        """.replace("n1 = Unsqueeze(n, zero)", "n1 = Unsqueeze(n, z0)").replace(
            "i = Constant", "z0 = Constant<value = int64[1] {0}>()\n            i = Constant"
        )
    )
    assert ctx.value(v["n"]).elems == (S,)
    assert ctx.value(v["n"]).rank == 0
    assert ctx.value(v["n1"]).elems == (S,)
    assert ctx.value(v["t"]).elems == (B, S, 12, 32)


def test_reshape_minus_one_divides_symbols():
    ctx, v = _shapes(
        """
        g (float[batch, seq, 12, 32] x) => (float[z] y) {
            t = Constant<value = int64[2] {-1, 384}>()
            y = Reshape(x, t)
        }
        """
    )
    assert ctx.shape(v["y"]) == (mul(B, S), 384)


def test_broadcast_of_two_symbols_is_fresh_not_either():
    # [batch] + [seq]: equal to batch only if seq is 1 or batch; nothing proves which
    ctx, v = _shapes(
        """
        g (float[batch] a, float[seq] b, float[7] c) => (float[z] y, float[z] w) {
            y = Add(a, b)
            w = Add(a, c)
        }
        """
    )
    (dim,) = ctx.shape(v["y"])
    assert dim not in (B, S)
    assert ctx.shape(v["w"]) == (7,)  # a valid model broadcasts batch against 7 only if 1 or 7


def test_unknown_dims_are_distinct_fresh_symbols():
    ctx, v = _shapes(
        """
        g (float[?, ?] x) => (int64[2] s) {
            s = Shape(x)
        }
        """
    )
    a, b = ctx.value(v["s"]).elems
    assert isinstance(a, Sym) and isinstance(b, Sym) and a != b
