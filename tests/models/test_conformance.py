"""ONNX conformance node cases (shipped in the onnx wheel) through infopt's backend.

Every case whose nodes all run on native kernels must pass, and every op the CPU backend claims
natively must pass every case that uses that op alone. The remaining cases run through the
reference-evaluator fallback; their counts are reported (and guarded against regressions).
"""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("infopt._C")

from infopt import _C  # noqa: E402
from infopt.runtime.backend import InfoptBackend, run_node_cases  # noqa: E402

# Cases the fallback cannot pass because onnx's own reference evaluator fails them (checked by
# running the evaluator alone): image decoding needs Pillow, float8 "no saturate" casts, and a
# few sequence/loop cases. A pass-count floor guards everything else against regressions.
MIN_PASSING = 1790


@pytest.fixture(scope="module")
def report():
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # collect once with no filter and filter ourselves: the op filter only applies on the
        # first call of collect_testcases
        cases = [c for c in collect_testcases(None) if c.kind == "node"]
        return run_node_cases(cases)


def test_fully_native_cases_all_pass(report):
    failing = [r for r in report.results if r.native and r.status != "passed"]
    assert not failing, "; ".join(f"{r.name}: {r.detail}" for r in failing[:10])


def test_every_native_op_passes_its_own_cases(report):
    native = set(_C.native_ops())
    failing = [
        r
        for r in report.results
        if len(r.ops) == 1 and r.ops[0] in native and not r.python_plan and r.status != "passed"
    ]
    assert not failing, "; ".join(f"{r.name}: {r.detail}" for r in failing[:10])


def test_conformance_counts(report):
    native = set(_C.native_ops())
    native_ops_tested = {r.ops[0] for r in report.results if len(r.ops) == 1} & native
    print(
        f"\n{report.summary()}; {len(native_ops_tested)} natively claimed ops have single-op cases"
    )
    assert report.count("passed") >= MIN_PASSING, report.summary()


def test_backend_surface():
    import numpy as np
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert InfoptBackend.supports_device("CPU") and not InfoptBackend.supports_device("CUDA")
    rep = InfoptBackend.prepare(model)
    (y,) = rep.run([np.array([-1.0, 0.5, 2.0], np.float32)])
    np.testing.assert_array_equal(y, [0.0, 0.5, 2.0])
