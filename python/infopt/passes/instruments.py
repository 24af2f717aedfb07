"""Instruments: hooks the pass manager calls around every pass.

Switched by CLI flags, or without editing code by environment variables:
``INFOPT_VERIFY=1`` verifies the IR after every pass; ``INFOPT_DEBUG=1`` prints the IR after
every pass to stderr, ``INFOPT_DEBUG=<folder>`` dumps it there, one file per pass.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from ..errors import InfoptError
from ..ir import Model, format_graph, verify
from .base import Pass, PassResult


class Instrument:
    def before_pass(self, p: Pass, model: Model) -> None:
        pass

    def after_pass(self, p: Pass, model: Model, result: PassResult) -> None:
        pass


class PrintIRAfter(Instrument):
    """Print the IR after the named passes (all passes when ``names`` is empty)."""

    def __init__(self, names: list[str] | None = None, stream: TextIO | None = None):
        self.names = set(names or [])
        self.stream = stream or sys.stderr

    def after_pass(self, p: Pass, model: Model, result: PassResult) -> None:
        if not self.names or p.name in self.names:
            print(f"// IR after {p.name} (modified={result.modified})", file=self.stream)
            print(format_graph(model.graph), file=self.stream)


class DumpIR(Instrument):
    """Write the IR after each pass into ``folder/NN_<pass>.txt``."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def before_pass(self, p: Pass, model: Model) -> None:
        if self.count == 0:
            (self.folder / "00_input.txt").write_text(format_graph(model.graph))

    def after_pass(self, p: Pass, model: Model, result: PassResult) -> None:
        self.count += 1
        (self.folder / f"{self.count:02d}_{p.name}.txt").write_text(format_graph(model.graph))


class VerifyIR(Instrument):
    """Run the IR verifier after every pass."""

    def after_pass(self, p: Pass, model: Model, result: PassResult) -> None:
        verify(model)


class MiscompileError(InfoptError):
    pass


class NumericCheck(Instrument):
    """Run the model on generated inputs before the first pass and after each one, and name the
    first pass whose output differs from the original beyond ``rtol`` (relative L2)."""

    def __init__(self, rtol: float = 1e-4, seed: int = 0, dims: dict[str, int] | None = None):
        self.rtol = rtol
        self.seed = seed
        self.dims = dims or {}
        self.reference: list[np.ndarray] | None = None
        self.feeds: dict[str, np.ndarray] | None = None

    def _run(self, model: Model) -> list[np.ndarray]:
        from ..runtime.session import InferenceSession

        session = InferenceSession(model)
        return session.run(None, self.feeds)

    def before_pass(self, p: Pass, model: Model) -> None:
        if self.reference is None:
            from ..testing.inputs import random_feeds

            self.feeds = random_feeds(model, seed=self.seed, dims=self.dims)
            self.reference = self._run(model)

    def after_pass(self, p: Pass, model: Model, result: PassResult) -> None:
        if not result.modified:
            return
        outputs = self._run(model)
        from ..testing.compare import relative_l2

        for ref, got, value in zip(self.reference, outputs, model.graph.outputs, strict=True):
            err = relative_l2(ref, got)
            if not err <= self.rtol:
                raise MiscompileError(
                    f"pass {p.name} changed output %{value.name}: relative L2 error {err:.3g} "
                    f"> {self.rtol:g}"
                )


def from_environment() -> list[Instrument]:
    instruments: list[Instrument] = []
    if os.environ.get("INFOPT_VERIFY", "") not in ("", "0"):
        instruments.append(VerifyIR())
    debug = os.environ.get("INFOPT_DEBUG", "")
    if debug == "1":
        instruments.append(PrintIRAfter())
    elif debug not in ("", "0"):
        instruments.append(DumpIR(debug))
    return instruments
