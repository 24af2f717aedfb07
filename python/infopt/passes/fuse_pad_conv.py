"""Fold a zero constant-mode Pad into the Conv that reads it (its ``pads`` grow).

Identity relied on: Conv zero-pads its input by ``pads``; padding first with zeros and then
convolving equals convolving with the summed padding. Refuses non-constant pads, non-zero fill
values, reflect/edge modes, padding of the batch or channel axes, negative pads, a Pad ``axes``
input, and Convs with ``auto_pad`` other than NOTSET.
"""

from __future__ import annotations

import numpy as np

from ..ir import Model
from ..rewrite import Match, Rule, RuleSet, Tracer
from .base import Pass, PassResult


def _pattern(op, x, pads, value, w, cb):
    padded = op.Pad(x, pads, value, _optional=2, _name="pad")
    return op.Conv(padded, w, cb, _optional=1, _name="conv")


def _pads(m: Match) -> list[int] | None:
    pad = m.node("pad")
    if m["pads"] is not None:
        arr = m.const("pads")
        return None if arr is None else [int(p) for p in arr.reshape(-1)]
    attr = pad.attr("pads") or pad.attr("paddings")
    return None if attr is None else [int(p) for p in attr]


def _check(m: Match) -> str | None:
    pad, conv = m.node("pad"), m.node("conv")
    mode = pad.attr("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        return f"Pad %{pad.outputs[0].name} mode is {mode}"
    if len([v for v in pad.inputs if v is not None]) > 3:
        return f"Pad %{pad.outputs[0].name} has an axes input"
    if m["value"] is not None:
        value = m.const("value")
        if value is None or np.any(value != 0):
            return f"Pad fill %{m['value'].name} is not a constant zero"
    elif float(pad.attr("value", 0.0)) != 0.0:
        return f"Pad %{pad.outputs[0].name} fills with {pad.attr('value')}"
    pads = _pads(m)
    if pads is None:
        return f"Pad %{pad.outputs[0].name} pads are not constant"
    rank = len(pads) // 2
    if any(p < 0 for p in pads) or pads[0] or pads[1] or pads[rank] or pads[rank + 1]:
        return f"Pad %{pad.outputs[0].name} pads {pads} touch batch/channel or are negative"
    auto_pad = conv.attr("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad != "NOTSET":
        return f"Conv %{conv.outputs[0].name} uses auto_pad={auto_pad}"
    return None


def _rewrite(m: Match, b):
    conv = m.node("conv")
    pads = _pads(m)
    rank = len(pads) // 2
    spatial = rank - 2
    old = list(conv.attr("pads", [0] * (2 * spatial)))
    new = [old[i] + pads[2 + i] for i in range(spatial)]
    new += [old[spatial + i] + pads[rank + 2 + i] for i in range(spatial)]
    out = b.op("Conv", m["x"], m["w"], m["cb"], _name=conv.name)
    b.copy_attrs(b.nodes[-1], conv)
    b.nodes[-1].set_attr("pads", new)
    return out


RULES = RuleSet([Rule("pad_conv", _pattern, _rewrite, check=_check)])


class FusePadConv(Pass):
    name = "fuse_pad_conv"
    description = "fold zero Pad into Conv pads"

    def __init__(self, tracer: Tracer | None = None):
        self.tracer = tracer

    def run(self, model: Model) -> PassResult:
        stats = RULES.apply(model, self.tracer)
        return PassResult(model, stats["applied"] > 0, stats)
