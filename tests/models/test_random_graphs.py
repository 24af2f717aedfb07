"""Random graphs through -O2 (targets cpu and onnx) against onnxruntime at ORT_DISABLE_ALL.

INFOPT_RANDOM_GRAPHS sets how many seeds run (default 200); a failing seed is printed in the
assertion so it can be replayed with ``random_graph(seed)``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import infopt
from infopt.testing.compare import relative_l2
from infopt.testing.oracle import ort_run
from infopt.testing.random_graphs import random_graph

pytest.importorskip("onnxruntime")
COUNT = int(os.environ.get("INFOPT_RANDOM_GRAPHS", "200"))
CHUNKS = 4
RTOL = 1e-4  # relative L2: regrouped float32 arithmetic (folded BN, fused epilogues)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_random_graphs_match_onnxruntime(chunk):
    fired = 0
    for seed in range(chunk, COUNT, CHUNKS):
        proto = random_graph(seed)
        # a symbolic leading dim "n" runs at 2 (the static Reshape steps of the generator assume it)
        shape = [d.dim_value or 2 for d in proto.graph.input[0].type.tensor_type.shape.dim]
        feeds = {"x": np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}
        want = ort_run(proto, feeds)[0]
        for target in ("cpu", "onnx"):
            try:
                model, report = infopt.compile(proto, level=2, target=target)
            except Exception as exc:
                raise AssertionError(f"seed {seed} target {target}: compile failed: {exc}") from exc
            got = ort_run(model, feeds)[0]
            err = relative_l2(want, got)
            assert err <= RTOL, f"seed {seed} target {target}: relative L2 {err:.3g} > {RTOL}"
            if target == "cpu":  # (inlining for onnx adds the functions' Constant nodes)
                assert report.nodes_after <= len(proto.graph.node), f"seed {seed} grew"
            fired += target == "cpu" and report.nodes_after < len(proto.graph.node)
    assert fired > 0
