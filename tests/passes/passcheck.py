"""Shared checks for pass tests: run a pass, verify, compare with onnxruntime, re-run."""

from __future__ import annotations

import numpy as np

import infopt
from infopt.ir import serde, verify
from infopt.passes import create
from infopt.testing.compare import relative_l2
from infopt.testing.inputs import random_feeds
from infopt.testing.oracle import ort_run


def run_pass(name, proto, *, before=("infer_shapes",), rtol=1e-5, seeds=(0, 1)):
    """Run ``name`` on ``proto``; check the verifier, output names, idempotence and numerics
    against onnxruntime (ORT_DISABLE_ALL). Returns (model, result)."""
    model = infopt.load(proto)
    for p in before:
        create(p).run(model)
    names = [v.name for v in model.graph.outputs]
    result = create(name).run(model)
    verify(model)
    assert [v.name for v in model.graph.outputs] == names
    snapshot = serde.to_bytes(model)
    again = create(name).run(model)
    assert again.modified is False, f"{name} changed the graph on a second run"
    assert serde.to_bytes(model) == snapshot
    for seed in seeds:
        feeds = random_feeds(infopt.load(proto), seed=seed)
        for want, got in zip(ort_run(proto, feeds), ort_run(model, feeds), strict=True):
            err = relative_l2(want, got)
            assert err <= rtol, f"seed {seed}: relative L2 {err:.3g} > {rtol}"
    return model, result


def ops(model) -> list[str]:
    return [n.qualified_op for n in model.graph.nodes]


def rand(*shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)
