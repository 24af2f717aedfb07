"""MiniLM and GPT-2 (both torch exporters), compiled at -O2, run in infopt's runtime entirely on
native kernels and match onnxruntime on the original model."""

from __future__ import annotations

import pytest

import infopt
from infopt.testing import hf_models
from infopt.testing.compare import relative_l2
from infopt.testing.oracle import ort_run

pytest.importorskip("infopt._C")
pytest.importorskip("onnxruntime")
if not hf_models.available():
    pytest.skip("torch, transformers or the MiniLM weights are missing", allow_module_level=True)

RTOL = 1e-4  # relative L2; float32 with fused kernels summing in another order


@pytest.mark.parametrize("exporter", hf_models.EXPORTERS)
@pytest.mark.parametrize("name", hf_models.MODELS)
def test_runs_natively_and_matches_onnxruntime(name, exporter):
    path = hf_models.model_path(name, exporter)
    model, _ = infopt.compile(path, level=2, target="cpu")
    session = infopt.InferenceSession(model)
    assert session.fallback_ops == {}, session.fallback_reasons
    for batch, length in [(1, 5), (2, 12), (3, None)]:
        if name == "minilm":
            feeds = hf_models.sentence_feeds(batch, length)
        else:
            feeds = hf_models.decoder_feeds(batch, length or 16)
        want = ort_run(path, feeds)
        got = session.run(None, feeds)
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            err = relative_l2(w, g)
            assert err <= RTOL, f"{name}/{exporter} output {i} batch {batch}: {err:.3g}"
