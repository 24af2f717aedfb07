"""fuse_pad_conv: a zero constant-mode Pad of the spatial axes folds into the Conv's pads."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from passcheck import graph_model, light_model, o2_until, ops, rand, run_pass, run_pipeline

pytest.importorskip("onnxruntime")


def _pad_conv(
    mode="constant", pads=(0, 0, 1, 2, 0, 0, 3, 1), fill=None, conv_attrs=None, in_channels=3
):
    pad_inputs = ["x", "pads"] + (["fill"] if fill is not None else [])
    nodes = [
        helper.make_node("Pad", pad_inputs, ["p"], mode=mode),
        helper.make_node("Conv", ["p", "w"], ["y"], **(conv_attrs or {"pads": [1, 0, 1, 0]})),
    ]
    inits = [("w", rand(4, in_channels, 3, 3)), ("pads", np.array(pads, np.int64))]
    if fill is not None:
        inits.append(("fill", np.array(fill, np.float32)))
    return graph_model(nodes, [("x", [1, 3, 6, 6])], ["y"], inits)


def test_pad_folds_into_conv_and_reflect_pad_does_not():
    model, result = run_pass("fuse_pad_conv", _pad_conv("constant"))
    assert ops(model) == ["Conv"] and model.graph.nodes[0].attr("pads") == [2, 2, 4, 1]
    assert result.stats["applied"] == 1 and result.stats["pad_conv"] == 1
    _, result = run_pass("fuse_pad_conv", _pad_conv("reflect"))
    assert result.modified is False


def test_explicit_zero_fill_folds():
    model, result = run_pass("fuse_pad_conv", _pad_conv(fill=0.0))
    assert ops(model) == ["Conv"] and result.stats["applied"] == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fill": 0.5},
        {"pads": (0, 1, 1, 1, 0, 0, 1, 1), "in_channels": 4},  # pads the channel axis
        {"pads": (0, 0, 1, -1, 0, 0, 1, 1)},  # crops
        {"conv_attrs": {"auto_pad": "SAME_UPPER"}},
    ],
    ids=["non-zero fill", "channel pad", "negative pad", "auto_pad"],
)
def test_refusals(kwargs):
    model, result = run_pass("fuse_pad_conv", _pad_conv(**kwargs))
    assert result.modified is False and ops(model) == ["Pad", "Conv"]


def _explicit_pads(path) -> tuple[onnx.ModelProto, int]:
    """The model with each padded Conv's padding moved into a Pad node before it (the form
    converters from frameworks with a separate padding layer emit), and how many were moved.
    The light models are opset 9: Pad takes its pads as an attribute."""
    proto = onnx.load(str(path))
    nodes, moved = [], 0
    for node in proto.graph.node:
        pads = next((a for a in node.attribute if a.name == "pads"), None)
        if node.op_type == "Conv" and pads is not None and any(pads.ints):
            half = len(pads.ints) // 2
            full = [0, 0, *pads.ints[:half], 0, 0, *pads.ints[half:]]
            padded = f"{node.output[0]}_padded"
            nodes.append(helper.make_node("Pad", [node.input[0]], [padded], pads=full))
            node.input[0] = padded
            pads.ints[:] = [0] * len(pads.ints)
            moved += 1
        nodes.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return proto, moved


def test_squeezenet_with_separate_pads():
    path, feeds = light_model("squeezenet")
    proto, moved = _explicit_pads(path)
    assert moved == 8
    model, result = run_pipeline(proto, o2_until("fuse_pad_conv"), feeds, rtol=1e-5)
    assert result.stats["applied"] == 8 and "Pad" not in ops(model)
