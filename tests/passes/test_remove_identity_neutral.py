"""remove_identity: elementwise ops with a neutral constant (x*1, x/1, x-0, And(x, True))."""

from __future__ import annotations

import numpy as np
import onnx.parser
import pytest
from onnx import numpy_helper
from passcheck import ops, run_pass

import infopt
from infopt.passes import create

pytest.importorskip("onnxruntime")


def _parse(text: str, inits=()) -> onnx.ModelProto:
    proto = onnx.parser.parse_model('<ir_version: 8, opset_import: ["" : 17]>\n' + text)
    proto.graph.initializer.extend(inits)
    return proto


def test_neutral_constants_removed():
    proto = _parse(
        """
        g (float[2, 3] x, bool[2, 3] m) => (float[2, 3] y, bool[2, 3] k) {
            a = Mul(one, x)
            b = Div(a, one)
            c = Sub(b, zero)
            y = Relu(c)
            k = And(m, yes)
        }
        """,
        [
            numpy_helper.from_array(np.ones((1, 3), np.float32), "one"),
            numpy_helper.from_array(np.zeros((), np.float32), "zero"),
            numpy_helper.from_array(np.ones((2, 3), bool), "yes"),
        ],
    )
    # k = And(m, True) is a graph output read straight from a graph input: it keeps its node
    model, result = run_pass("remove_identity", proto)
    assert result.stats["removed"] == 3
    assert ops(model) == ["Relu", "And"]


def test_constants_that_broadcast_or_differ_stay():
    proto = _parse(
        """
        g (float[3] x) => (float[2, 3] y, float[3] z, float[3] w) {
            y = Mul(x, ones23)
            z = Mul(x, almost)
            w = Add(x, zero)
        }
        """,
        [
            numpy_helper.from_array(np.ones((2, 3), np.float32), "ones23"),
            numpy_helper.from_array(np.array([1, 1, 0.5], np.float32), "almost"),
            # float x + 0 turns -0.0 into +0.0: not an identity
            numpy_helper.from_array(np.zeros((), np.float32), "zero"),
        ],
    )
    model = infopt.load(proto)
    create("infer_shapes").run(model)
    assert create("remove_identity").run(model).modified is False
