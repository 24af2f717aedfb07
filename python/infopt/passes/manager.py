"""The pass manager: runs a list of passes, records per-pass statistics, wraps failures."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InfoptError
from ..ir import Model
from . import registry
from .base import Pass
from .instruments import Instrument, MiscompileError, from_environment


class PassError(InfoptError):
    pass


@dataclass
class PassRecord:
    name: str
    modified: bool
    seconds: float
    nodes_before: int
    nodes_after: int
    stats: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pass": self.name,
            "modified": self.modified,
            "seconds": round(self.seconds, 4),
            "nodes_before": self.nodes_before,
            "nodes_after": self.nodes_after,
            "stats": self.stats,
        }


class PassManager:
    def __init__(
        self,
        passes: Sequence[Pass | str],
        instruments: Sequence[Instrument] = (),
        *,
        use_environment: bool = True,
    ):
        self.passes = [registry.create(p) if isinstance(p, str) else p for p in passes]
        self.instruments = list(instruments)
        if use_environment:
            self.instruments += from_environment()

    def run(self, model: Model) -> list[PassRecord]:
        log: list[PassRecord] = []
        for p in self.passes:
            before = _node_count(model)
            start = time.perf_counter()
            try:
                for inst in self.instruments:
                    inst.before_pass(p, model)
                result = p.run(model)
                model = result.model
                for inst in self.instruments:
                    inst.after_pass(p, model, result)
            except MiscompileError:
                raise
            except Exception as exc:
                done = ", ".join(r.name for r in log) or "nothing"
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise PassError(f"pass {p.name} failed (after {done}): {detail}") from exc
            log.append(
                PassRecord(
                    p.name,
                    result.modified,
                    time.perf_counter() - start,
                    before,
                    _node_count(model),
                    result.stats,
                )
            )
        return log


def _node_count(model: Model) -> int:
    from .base import walk_graphs

    return sum(len(g.nodes) for g in walk_graphs(model.graph))
