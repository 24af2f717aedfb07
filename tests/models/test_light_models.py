"""Every light model (with random weights) runs in infopt's runtime, original and compiled,
within 1e-4 relative L2 of onnxruntime; compiled .opt files also run in onnxruntime."""

from __future__ import annotations

import time

import numpy as np
import pytest

import infopt
from infopt.testing.compare import relative_l2
from infopt.testing.inputs import random_feeds
from infopt.testing.models import LIGHT_MODELS, random_weight_model
from infopt.testing.oracle import ort_run

pytest.importorskip("infopt._C")
RTOL = 1e-4  # relative L2, float32 through up to ~120 layers with different summation orders


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_runtime_matches_onnxruntime(name, tmp_path):
    path = random_weight_model(name, seed=11)
    sess = infopt.InferenceSession(path)
    compiled, report = infopt.compile(path, level=2, target="cpu")
    opt_path = tmp_path / f"{name}.opt"
    infopt.save(compiled, opt_path)
    compiled_sess = infopt.InferenceSession(opt_path)
    for seed in (1, 2):
        feeds = random_feeds(sess._model, seed=seed)
        want = ort_run(path, feeds)[0]
        assert relative_l2(want, sess.run(None, feeds)[0]) <= RTOL, f"seed {seed}"
        assert relative_l2(want, compiled_sess.run(None, feeds)[0]) <= RTOL, f"seed {seed}"
        if seed == 1:  # the .opt, infopt ops and all, runs in onnxruntime via its functions
            assert relative_l2(want, ort_run(opt_path, feeds)[0]) <= RTOL
    assert report.seconds < 30
    assert compiled_sess.fallback_ops == {}, compiled_sess.fallback_reasons
    print(f"{name}: fallback={sess.fallback_ops} compiled fallback={compiled_sess.fallback_ops}")


def test_compile_time_per_light_model_is_recorded():
    for name in LIGHT_MODELS:
        start = time.perf_counter()
        _, report = infopt.compile(infopt.testing.models.resolve(name), level=2)
        assert report.nodes_after <= report.nodes_before
        assert time.perf_counter() - start < 30
    assert np.isfinite(report.seconds)


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_onnx_target_is_plain_onnx_and_matches(name, tmp_path):
    """-O2 --target onnx: standard ops only, onnx.checker's full check, same outputs."""
    import onnx

    path = random_weight_model(name, seed=11)
    compiled, _ = infopt.compile(path, level=2, target="onnx")
    out = tmp_path / f"{name}.onnx"
    infopt.save(compiled, out)
    onnx.checker.check_model(str(out), full_check=True)  # by path: no 2 GiB proto copy
    assert all(n.domain in ("", "ai.onnx") for n in compiled.graph.nodes)
    feeds = random_feeds(compiled, seed=3)
    assert relative_l2(ort_run(path, feeds)[0], ort_run(out, feeds)[0]) <= RTOL
