"""The compiler driver: import, run a pipeline of passes, lower for a target, record metadata."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import __version__
from .errors import InputError
from .ir import Model, load, verify
from .ir.serde import ModelSource, inline_functions
from .passes import PassManager, PassRecord, pipeline
from .passes.instruments import Instrument, NumericCheck, PrintIRAfter

TARGETS = ("cpu", "cuda", "onnx")


@dataclass
class CompileReport:
    target: str
    level: int
    passes: list[PassRecord] = field(default_factory=list)
    nodes_before: int = 0
    nodes_after: int = 0
    seconds: float = 0.0
    op_counts_before: dict[str, int] = field(default_factory=dict)
    op_counts_after: dict[str, int] = field(default_factory=dict)

    def summary_lines(self) -> list[str]:
        lines = []
        for r in self.passes:
            detail = ", ".join(f"{k}={v}" for k, v in r.stats.items() if v)
            lines.append(
                f"  {r.name:<28} {r.nodes_before:>5} -> {r.nodes_after:<5} nodes "
                f"{r.seconds * 1000:8.1f} ms  {detail}"
            )
        lines.append(
            f"  total: {self.nodes_before} -> {self.nodes_after} nodes in {self.seconds:.2f} s "
            f"(-O{self.level}, target {self.target})"
        )
        return lines


def op_counts(model: Model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.nodes:
        counts[node.qualified_op] = counts.get(node.qualified_op, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def compile(
    source: ModelSource | Model,
    *,
    level: int = 2,
    target: str = "cpu",
    passes: Sequence[str] | None = None,
    verify_numerics: bool = False,
    print_ir_after: Sequence[str] = (),
    instruments: Sequence[Instrument] = (),
    progress: Callable[[str], None] | None = None,
) -> tuple[Model, CompileReport]:
    """Optimize a model. ``passes`` overrides the level's pipeline. ``verify_numerics`` runs the
    model after every pass and names the first pass that changes its outputs."""
    if target not in TARGETS:
        raise InputError(f"unknown target '{target}'; choose one of {', '.join(TARGETS)}")
    start = time.perf_counter()
    model = source if isinstance(source, Model) else load(source)
    report = CompileReport(target=target, level=level)
    report.nodes_before = len(model.graph.nodes)
    report.op_counts_before = op_counts(model)
    if passes is not None:
        names = list(passes)
    else:
        names = pipeline(level, target, model.opset(""))
    inst = list(instruments)
    if print_ir_after:
        inst.append(PrintIRAfter(list(print_ir_after)))
    if verify_numerics:
        inst.append(NumericCheck())
    manager = PassManager(names, inst)
    if progress is not None:
        manager.instruments.insert(0, _Progress(progress, len(manager.passes)))
    report.passes = manager.run(model)
    model = lower(model, target)
    verify(model)
    report.nodes_after = len(model.graph.nodes)
    report.op_counts_after = op_counts(model)
    report.seconds = time.perf_counter() - start
    model.metadata_props.update(
        {
            "infopt.version": __version__,
            "infopt.target": target,
            "infopt.level": str(level),
            "infopt.passes": json.dumps([r.as_dict() for r in report.passes]),
        }
    )
    return model, report


def lower(model: Model, target: str) -> Model:
    """Target-specific lowering. ``onnx`` inlines every infopt op into standard ops; ``cpu`` and
    ``cuda`` keep infopt ops, which their runtimes run natively."""
    if target == "onnx" and model.functions:
        model = inline_functions(model)
        model.opset_imports.pop("infopt", None)
        # function bodies bring their own constants and repeated subexpressions
        PassManager(ONNX_TARGET_CLEANUP).run(model)
    return model


ONNX_TARGET_CLEANUP = [
    "fold_constants",
    "merge_initializers",
    "eliminate_common_subexpressions",
    "eliminate_dead_code",
]


class _Progress(Instrument):
    def __init__(self, report: Callable[[str], None], total: int):
        self.report = report
        self.total = total
        self.index = 0

    def before_pass(self, p, model) -> None:
        self.index += 1
        self.report(f"[{self.index}/{self.total}] {p.name}")
