"""infopt as an ``onnx.backend.base.Backend``, for the ONNX conformance node tests.

``run_node_cases`` runs the node cases shipped in the onnx wheel through InferenceSession and
classifies each: passed, failed (wrong numbers) or error (raised), and whether every node ran
natively or some went through the fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from .session import InferenceSession


class InfoptBackendRep(BackendRep):
    def __init__(self, session: InferenceSession):
        self.session = session

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        names = [i.name for i in self.session.get_inputs()]
        if isinstance(inputs, dict):
            feeds = inputs
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            feeds = dict(zip(names, inputs, strict=False))
        return tuple(self.session.run(None, feeds))


class InfoptBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return device.upper() == "CPU"

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> BackendRep:
        return InfoptBackendRep(InferenceSession(model))

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.upper() == "CPU"


@dataclass
class CaseResult:
    name: str
    ops: list[str]
    status: str  # "passed" | "failed" | "error"
    native: bool  # every node ran on a native kernel
    detail: str = ""
    python_plan: bool = False  # the graph holds types the native executor cannot carry


@dataclass
class ConformanceReport:
    results: list[CaseResult] = field(default_factory=list)

    def count(self, status: str, native: bool | None = None) -> int:
        return sum(
            1 for r in self.results if r.status == status and (native is None or r.native == native)
        )

    def ops_all_passing(self) -> set[str]:
        by_op: dict[str, list[CaseResult]] = {}
        for r in self.results:
            for op in r.ops:
                by_op.setdefault(op, []).append(r)
        return {op for op, rs in by_op.items() if all(r.status == "passed" for r in rs)}

    def summary(self) -> str:
        total = len(self.results)
        passed = self.count("passed")
        return (
            f"ONNX node conformance: {passed}/{total} cases pass "
            f"({self.count('passed', True)} fully native, {self.count('passed', False)} with "
            f"fallback); {self.count('failed')} wrong results, {self.count('error')} errors; "
            f"{len(self.ops_all_passing())} ops pass all their cases"
        )


def _outputs_match(expected: Sequence[Any], got: Sequence[Any], rtol: float, atol: float) -> str:
    if len(expected) != len(got):
        return f"{len(got)} outputs, expected {len(expected)}"
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        e, g = np.asarray(e), np.asarray(g)
        if e.shape != g.shape:
            return f"output {i} shape {g.shape}, expected {e.shape}"
        if e.dtype.kind in "fc":
            if not np.allclose(g.astype(e.dtype), e, rtol=rtol, atol=atol, equal_nan=True):
                return f"output {i} differs (max abs {np.nanmax(np.abs(g - e)):.3g})"
        elif not np.array_equal(g.astype(e.dtype) if g.dtype != e.dtype else g, e):
            return f"output {i} differs"
    return ""


def _to_numpy(x: Any) -> Any:
    if isinstance(x, onnx.TensorProto):
        return onnx.numpy_helper.to_array(x)
    if isinstance(x, list):
        return [_to_numpy(i) for i in x]
    return x


def run_node_cases(cases: Iterable[Any]) -> ConformanceReport:
    report = ConformanceReport()
    for case in cases:
        ops = sorted({n.op_type for n in case.model.graph.node})
        try:
            session = InferenceSession(case.model)
            native = not session.fallback_ops
            python_plan = session.uses_python_plan
            names = [i.name for i in session.get_inputs()]
            detail = ""
            for inputs, outputs in case.data_sets:
                inputs, outputs = _to_numpy(list(inputs)), _to_numpy(list(outputs))
                got = session.run(None, dict(zip(names, inputs, strict=False)))
                detail = _outputs_match(outputs, got, case.rtol, case.atol)
                if detail:
                    break
            status = "failed" if detail else "passed"
        except Exception as exc:  # any error is a result to count, not a crash of the harness
            native, status, python_plan = False, "error", False
            detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        report.results.append(CaseResult(case.name, ops, status, native, detail, python_plan))
    return report
