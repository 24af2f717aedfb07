"""Graph optimizers side by side: infopt -O2 (--target onnx), onnxsim and onnxslim.

Per model: node counts before/after for each tool, each tool's compile time, and onnxruntime
latency (2 threads, ORT_ENABLE_ALL) on the original vs infopt's --target onnx output, measured in
alternating blocks. CSV to $INFOPT_RESULTS (default ~/.cache/infopt/results).

    python bench/passes_compare.py [--models resnet50,minilm_torchscript] [--skip-latency]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

import infopt
from infopt.runtime.bench import onnxruntime_session, time_blocks
from infopt.testing import hf_models
from infopt.testing.inputs import random_feeds
from infopt.testing.models import LIGHT_MODELS, random_weight_model

THREADS = 2


def _models(selected: list[str] | None) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    names = LIGHT_MODELS + [f"{m}_{e}" for m in hf_models.MODELS for e in hf_models.EXPORTERS]
    for name in selected or names:
        if name in LIGHT_MODELS:
            paths[name] = random_weight_model(name, seed=0)
        elif hf_models.available():
            model, exporter = name.split("_", 1)
            paths[name] = hf_models.model_path(model, exporter)
    return paths


def _onnxsim(proto):
    import onnxsim

    model, ok = onnxsim.simplify(proto)
    return model if ok else None


def _onnxslim(proto):
    import onnxslim

    return onnxslim.slim(proto)


def _feeds(name: str, path: Path) -> dict[str, np.ndarray]:
    if name.startswith("minilm"):
        return hf_models.sentence_feeds(2, 12)
    if name.startswith("gpt2"):
        return hf_models.decoder_feeds(2, 12)
    return random_feeds(infopt.load(path), seed=0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="")
    ap.add_argument("--skip-latency", action="store_true")
    args = ap.parse_args()
    results = Path(os.environ.get("INFOPT_RESULTS", Path.home() / ".cache/infopt/results"))
    results.mkdir(parents=True, exist_ok=True)
    rows = []
    header = (
        f"{'model':<22} {'orig':>5} {'infopt':>6} {'cpu':>5} {'onnxsim':>7} {'onnxslim':>8} "
        f"{'t_infopt':>8} {'t_sim':>6} {'t_slim':>6} {'ort_orig_ms':>11} {'ort_ours_ms':>11}"
    )
    print(header)
    for name, path in _models([m for m in args.models.split(",") if m] or None).items():
        proto = onnx.load(str(path))
        row = {"model": name, "original": len(proto.graph.node)}
        start = time.perf_counter()
        ours, _ = infopt.compile(path, level=2, target="onnx")
        row["t_infopt"] = time.perf_counter() - start
        row["infopt"] = len(ours.graph.nodes)
        cpu_model, _ = infopt.compile(path, level=2, target="cpu")
        row["infopt_cpu"] = len(cpu_model.graph.nodes)
        for tool, fn in (("onnxsim", _onnxsim), ("onnxslim", _onnxslim)):
            start = time.perf_counter()
            try:
                out = fn(onnx.load(str(path)))
                row[tool] = len(out.graph.node) if out is not None else -1
            except Exception as exc:  # a rival that fails is reported, not fatal
                print(f"  {tool} failed on {name}: {str(exc).splitlines()[0][:80]}")
                row[tool] = -1
            row[f"t_{tool}"] = time.perf_counter() - start
        row["ort_original_ms"] = row["ort_infopt_ms"] = float("nan")
        if not args.skip_latency:
            with tempfile.TemporaryDirectory() as tmp:
                ours_path = Path(tmp) / "ours.onnx"
                infopt.save(ours, ours_path)
                feeds = _feeds(name, path)
                original = onnxruntime_session(path, THREADS)
                optimized = onnxruntime_session(ours_path, THREADS)
                names = {i.name for i in original.get_inputs()}
                feeds = {k: v for k, v in feeds.items() if k in names}
                medians = time_blocks(
                    {
                        "original": lambda s=original, f=feeds: s.run(None, f),
                        "ours": lambda s=optimized, f=feeds: s.run(None, f),
                    },
                    budget_s=20,
                )
                row["ort_original_ms"] = medians["original"] * 1000
                row["ort_infopt_ms"] = medians["ours"] * 1000
        rows.append(row)
        print(
            f"{name:<22} {row['original']:>5} {row['infopt']:>6} {row['infopt_cpu']:>5} "
            f"{row['onnxsim']:>7} {row['onnxslim']:>8} {row['t_infopt']:>8.2f} "
            f"{row['t_onnxsim']:>6.2f} {row['t_onnxslim']:>6.2f} {row['ort_original_ms']:>11.2f} "
            f"{row['ort_infopt_ms']:>11.2f}",
            flush=True,
        )
    out = results / f"passes_compare_{time.strftime('%Y%m%d_%H%M%S')}.csv"
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    smaller = sum(
        r["infopt"] <= min(x for x in (r["onnxsim"], r["onnxslim"]) if x >= 0) for r in rows
    )
    faster = sum(r["ort_infopt_ms"] <= r["ort_original_ms"] * 1.05 for r in rows)
    print(
        f"infopt graph no larger than both rivals on {smaller}/{len(rows)} models; ORT on ours "
        f"within 5% or faster on {faster}/{len(rows)}; CSV: {out}"
    )


if __name__ == "__main__":
    main()
