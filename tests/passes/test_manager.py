"""The pass manager: statistics, failure wrapping, instruments, the numeric verify mode."""

from __future__ import annotations

import io

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import infopt
from infopt.passes import Pass, PassError, PassManager, PassResult
from infopt.passes.instruments import DumpIR, MiscompileError, NumericCheck, PrintIRAfter


def _model():
    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32), "w"
    )
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Identity", ["m"], ["i"]),
        helper.make_node("Tanh", ["i"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        initializer=[w],
    )
    return infopt.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


class Explode(Pass):
    name = "explode"

    def run(self, model):
        raise RuntimeError("boom at node 3")


class CorruptWeights(Pass):
    """Deliberately miscompiles: scales the MatMul weight."""

    name = "corrupt_weights"

    def run(self, model):
        w = model.graph.initializers["w"]
        w.const = infopt.ir.Tensor(w.const.numpy() * 1.01)
        return PassResult(model, True)


def test_records_stats_per_pass():
    model = _model()
    log = PassManager(["remove_identity", "eliminate_dead_code"]).run(model)
    assert [r.name for r in log] == ["remove_identity", "eliminate_dead_code"]
    assert (log[0].nodes_before, log[0].nodes_after, log[0].modified) == (3, 2, True)
    assert log[1].modified is False and log[0].seconds >= 0
    assert log[0].stats == {"removed": 1}


def test_failure_names_the_pass_and_what_ran_before():
    with pytest.raises(PassError, match=r"pass explode failed \(after remove_identity\): boom"):
        PassManager(["remove_identity", Explode()]).run(_model())


def test_unknown_pass_name():
    with pytest.raises(infopt.InputError, match="unknown pass 'nope'"):
        PassManager(["nope"])


def test_print_ir_after_selected_pass():
    stream = io.StringIO()
    PassManager(
        ["remove_identity", "eliminate_dead_code"], [PrintIRAfter(["remove_identity"], stream)]
    ).run(_model())
    text = stream.getvalue()
    assert "IR after remove_identity" in text and "IR after eliminate_dead_code" not in text
    assert "Tanh(%m)" in text


def test_dump_ir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("INFOPT_DEBUG", str(tmp_path / "dump"))
    PassManager(["remove_identity"]).run(_model())
    assert sorted(p.name for p in (tmp_path / "dump").iterdir()) == [
        "00_input.txt",
        "01_remove_identity.txt",
    ]


def test_dump_ir_instrument(tmp_path):
    PassManager(["remove_identity"], [DumpIR(tmp_path)], use_environment=False).run(_model())
    assert "Identity" in (tmp_path / "00_input.txt").read_text()
    assert "Identity" not in (tmp_path / "01_remove_identity.txt").read_text()


def test_numeric_check_names_the_miscompiling_pass():
    pytest.importorskip("infopt._C")
    with pytest.raises(MiscompileError, match="pass corrupt_weights changed output %y"):
        PassManager(
            ["remove_identity", CorruptWeights(), "eliminate_dead_code"], [NumericCheck(rtol=1e-4)]
        ).run(_model())


def test_numeric_check_passes_a_correct_pipeline():
    pytest.importorskip("infopt._C")
    model, report = infopt.compile(_model(), level=2, verify_numerics=True)
    assert report.nodes_after == 2
