"""The shared pass checks themselves: they must fail on a pass that breaks a property, or the
pass tests built on them could not fail."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from passcheck import graph_model, rand, run_pass

from infopt.passes import Pass, PassResult

pytest.importorskip("onnxruntime")


def _relu_neg():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])]
    return graph_model(nodes, [("x", [2, 3])], ["y"])


class NegToRelu(Pass):
    """Miscompiles: Neg becomes Relu."""

    name = "neg_to_relu"

    def run(self, model):
        for node in model.graph.nodes:
            if node.op_type == "Neg":
                node.op_type = "Relu"
                return PassResult(model, True)
        return PassResult(model, False)


class AlwaysModified(Pass):
    """Changes nothing but says it did."""

    name = "always_modified"

    def run(self, model):
        return PassResult(model, True)


class RenameOutput(Pass):
    name = "rename_output"

    def run(self, model):
        model.graph.outputs[0].name = "renamed"
        return PassResult(model, True)


@pytest.mark.parametrize(
    "bad,message",
    [
        (NegToRelu, "relative L2"),
        (AlwaysModified, "changed the graph on a second run"),
        (RenameOutput, "renamed a graph output"),
    ],
)
def test_run_pass_catches_a_broken_pass(bad, message):
    with pytest.raises(AssertionError, match=message):
        run_pass(bad, _relu_neg())


def test_rand_helper_is_never_constant():
    assert np.std(rand(100)) > 0.5
