"""simplify_shape_ops: Unsqueezes of an Unsqueeze composed into one."""

from __future__ import annotations

import onnx.parser
import pytest
from passcheck import ops, run_pass

import infopt
from infopt.passes import create

pytest.importorskip("onnxruntime")


def _parse(text: str, opset: int = 17) -> onnx.ModelProto:
    return onnx.parser.parse_model(f'<ir_version: 8, opset_import: ["" : {opset}]>\n' + text)


def test_unsqueeze_chain_with_two_readers_composes():
    # dynamo's causal-mask export: one Unsqueeze feeding two more
    proto = _parse(
        """
        g (float[5] x) => (float[1, 1, 5, 1] a, float[1, 1, 1, 5] b) {
            a0 = Constant<value = int64[2] {0, 1}>()
            a1 = Constant<value = int64[1] {-1}>()
            a2 = Constant<value = int64[1] {2}>()
            m = Unsqueeze(x, a0)
            a = Unsqueeze(m, a1)
            b = Unsqueeze(m, a2)
        }
        """
    )
    model, result = run_pass("simplify_shape_ops", proto, before=("fold_constants", "infer_shapes"))
    assert result.stats["unsqueeze_composed"] == 2
    assert ops(model) == ["Unsqueeze", "Unsqueeze"]
    axes = sorted(n.inputs[1].const.numpy().tolist() for n in model.graph.nodes)
    assert axes == [[0, 1, 2], [0, 1, 3]]


def test_opset11_attribute_axes_compose():
    proto = _parse(
        """
        g (float[3, 4] x) => (float[3, 1, 4, 1] y) {
            m = Unsqueeze<axes = [1]>(x)
            y = Unsqueeze<axes = [3]>(m)
        }
        """,
        opset=11,
    )
    model, result = run_pass("simplify_shape_ops", proto)
    assert result.stats["unsqueeze_composed"] == 1
    assert len(model.graph.nodes) == 1 and model.graph.nodes[0].attr("axes") == [1, 3]


def test_unsqueeze_with_another_reader_stays():
    proto = _parse(
        """
        g (float[5] x) => (float[1, 5, 1] a, float[1, 5] m) {
            a0 = Constant<value = int64[1] {0}>()
            a1 = Constant<value = int64[1] {2}>()
            m = Unsqueeze(x, a0)
            a = Unsqueeze(m, a1)
        }
        """
    )
    model = infopt.load(proto)
    for p in ("fold_constants", "infer_shapes"):
        create(p).run(model)
    assert create("simplify_shape_ops").run(model).modified is False
