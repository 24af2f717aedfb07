"""Issue-4 table: infopt's CPU runtime against onnxruntime on real models, same thread count.

    python bench/cpu_models.py [--threads 2] [--models resnet50,densenet121,...] [--no-memory]

    python bench/cpu_models.py --stages [--models resnet50]   # where infopt's memory goes

infopt runs its -O2 compilation of the model (as a user would); onnxruntime runs the original at
ORT_ENABLE_ALL. Latency: median of alternating blocks after warm-up (15 blocks of 3 timed runs
each, within 90 s). The ratio is the median over blocks of infopt's block median over the
adjacent onnxruntime block's, printed with the 25th-75th percentile of those per-block ratios:
the machines here are shared and drift by 10-40% within minutes, so runs seconds apart are
compared with each other rather than two whole-run medians. GFLOP/s counts the
Conv/Gemm/MatMul/Attention arithmetic of the model (direct algorithms) and is set against the
machine's measured fp32 peak (a large numpy matmul on the same threads). It is an effective
rate: infopt's Winograd 3x3 layers do 2.25-4x fewer multiplies than counted, so a CNN can
exceed 100%. CSV in results/.

Memory is the deployment flow: the model is compiled beforehand (here, in this parent process)
and saved as a .opt; then a fresh process per runtime imports only that runtime, creates the
session from the file (infopt: ``InferenceSession("model.opt")``; onnxruntime: the original
.onnx) and runs it 5 times on the same feeds. The figure is that process's peak resident set
(VmHWM). ``compile+run`` is the same for a process that compiles -O2 itself before creating the
session from the in-memory model (the peak a user pays without an offline compile step).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODELS = [
    "resnet50",
    "densenet121",
    "inception_v1",
    "squeezenet",
    "minilm:1x128",
    "minilm:8x128",
    "tiny",
]


def tiny_model(folder: Path) -> Path:
    """Three small MatMul + Add layers ([1, 16] through 16x16 weights): per-call overhead."""
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for i in range(3):
        w = numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32), f"w{i}")
        b = numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), f"b{i}")
        inits += [w, b]
        nodes += [
            helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"y{i}"]),
        ]
        x = f"y{i}"
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 16])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "tiny_matmul_add.onnx"
    save(model, path)
    return path


def model_and_feeds(spec: str):
    """(path of the original model, feeds) for a light model name, ``minilm:BxS`` or ``tiny``."""
    from infopt.testing.models import random_weight_model

    if spec == "tiny":
        from infopt.testing.models import cache_dir

        path = tiny_model(cache_dir())
        return path, {"x": np.random.default_rng(1).standard_normal((1, 16)).astype(np.float32)}
    if spec.startswith("minilm"):
        from infopt.testing import hf_models

        batch, seq = (int(x) for x in spec.split(":")[1].split("x"))
        texts = [hf_models.SENTENCES[i % len(hf_models.SENTENCES)] for i in range(batch)]
        enc = hf_models.tokenizer()(
            texts, padding="max_length", truncation=True, max_length=seq, return_tensors="np"
        )
        feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
        return hf_models.model_path("minilm", "torchscript"), feeds
    import infopt
    from infopt.testing.inputs import random_feeds

    path = random_weight_model(spec, seed=0)
    return path, random_feeds(infopt.load(path), seed=0)


def flops(model, feeds) -> float:
    """Multiply-add arithmetic (2 flops each) of the compute-heavy nodes, from shapes inferred
    with the inputs fixed to the feeds' shapes."""
    from infopt.ir import load, model_to_proto
    from infopt.passes import create

    model = load(model_to_proto(model))
    for value in model.graph.inputs:
        if value.name in feeds:
            value.shape = tuple(feeds[value.name].shape)
    # ONNX inference and infopt's symbolic shapes (ONNX alone loses MiniLM's dims at batch 1)
    create("infer_shapes").run(model)
    total = 0.0
    for node in model.graph.nodes:
        op = node.op_type
        out = node.outputs[0].shape if node.outputs else None
        if out is None or not all(isinstance(d, int) for d in out):
            continue
        if op.startswith(("Conv", "FusedConv")):
            w = node.inputs[1].shape
            total += 2 * math.prod(out) * math.prod(w[1:])
        elif op.startswith(("MatMul", "FusedMatMul", "Gemm", "FusedGemm")):
            a = node.inputs[0].shape
            trans_a = node.attr("transA", 0)
            k = a[-2] if trans_a else a[-1]
            total += 2 * math.prod(out) * k
        elif op == "Attention":
            q, v = node.inputs[0].shape, node.inputs[2].shape
            total += 2 * math.prod(q[:-1]) * v[-2] * (q[-1] + v[-1])
    return total


def measured_peak(threads: int) -> float:
    """fp32 GFLOP/s of a 2048^3 numpy matmul on ``threads`` threads."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    with threadpool_limits(threads):
        a @ a
        best = min(_timed(lambda: a @ a) for _ in range(3))
    return 2 * 2048**3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def peak_rss_mb(
    provider: str, model_path: Path, feeds_path: Path, threads: int, stages: bool = False
) -> float:
    """Peak RSS of a fresh process that imports only its runtime, creates the session from
    ``model_path`` and runs it 5 times (see the module docstring); provider ``infopt+compile``
    compiles ``model_path`` -O2 in that process first. With ``stages`` the process's RSS after
    each step is printed."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (large) parent across exec
    code = (
        "import sys, json; sys.path.insert(0, 'bench');"
        "from cpu_models import run_once, _status_mb; run_once(*json.loads(sys.argv[1]));"
        "print(_status_mb('VmHWM'))"
    )
    args = json.dumps([provider, str(model_path), str(feeds_path), threads, stages])
    out = subprocess.run(
        [sys.executable, "-c", code, args], capture_output=True, text=True, check=True
    )
    lines = out.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(f"  {provider:<15} {line}")
    return float(lines[-1])


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024


def run_once(
    provider: str, model_path: str, feeds_path: str, threads: int, stages: bool = False
) -> None:
    def stage(name: str) -> None:
        if stages:
            rss, hwm = _status_mb("VmRSS"), _status_mb("VmHWM")
            print(f"{name:<26} RSS {rss:6.0f} MB  peak {hwm:6.0f} MB", flush=True)

    feeds = dict(np.load(feeds_path))
    if provider.startswith("infopt"):
        import infopt

        stage("import")
        opts = infopt.SessionOptions()
        opts.intra_op_num_threads = threads
        source = model_path
        if provider == "infopt+compile":
            source, _ = infopt.compile(model_path, level=2, target="cpu")
            stage("compiled -O2")
        session = infopt.InferenceSession(source, opts)
    else:
        import onnxruntime as ort

        stage("import")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        session = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    stage("session created")
    session.run(None, feeds)
    stage("first run")
    for _ in range(4):
        session.run(None, feeds)
    stage("5 runs")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=15)
    ap.add_argument("--per-block", type=int, default=3)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--stages", action="store_true", help="print each process's RSS per step")
    ap.add_argument("--out", default="results/cpu_models.csv")
    args = ap.parse_args()

    import infopt
    from infopt.runtime.bench import (
        block_medians,
        block_ratios,
        onnxruntime_session,
        sample_blocks,
    )
    from infopt.testing.compare import relative_l2
    from infopt.testing.models import cache_dir

    peak = measured_peak(args.threads)
    print(f"measured fp32 peak (numpy 2048^3 matmul, {args.threads} threads): {peak:.1f} GFLOP/s")
    rows, ratios = [], []
    for spec in args.models.split(","):
        path, feeds = model_and_feeds(spec)
        compiled, _ = infopt.compile(path, level=2, target="cpu")
        opts = infopt.SessionOptions()
        opts.intra_op_num_threads = args.threads
        ours = infopt.InferenceSession(compiled, opts)
        theirs = onnxruntime_session(path, args.threads)
        err = max(
            relative_l2(w, g)
            for w, g in zip(theirs.run(None, feeds), ours.run(None, feeds), strict=True)
        )
        runners = {
            "infopt": lambda s=ours, f=feeds: s.run(None, f),
            "ort": lambda s=theirs, f=feeds: s.run(None, f),
        }
        samples = sample_blocks(runners, blocks=args.blocks, per_block=args.per_block, budget_s=90)
        med = block_medians(samples)
        per_block = sorted(block_ratios(samples, "infopt", "ort"))
        ratio = statistics.median(per_block)
        spread = (per_block[len(per_block) // 4], per_block[(3 * len(per_block)) // 4])
        ratios.append((spec, ratio))
        gflops = flops(infopt.load(path), feeds) / med["infopt"] / 1e9
        mem = (None, None, None)
        if not args.no_memory:
            # a private folder: a bench run elsewhere must not swap the files under this one
            scratch = Path(tempfile.mkdtemp(prefix="bench-", dir=cache_dir()))
            opt_path, feeds_path = scratch / f"{spec}.opt", scratch / f"{spec}.npz"
            infopt.save(compiled, opt_path)
            np.savez(feeds_path, **feeds)
            try:
                mem = (
                    peak_rss_mb("infopt", opt_path, feeds_path, args.threads, args.stages),
                    peak_rss_mb("ort", path, feeds_path, args.threads, args.stages),
                    peak_rss_mb("infopt+compile", path, feeds_path, args.threads, args.stages),
                )
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        rows.append(
            [
                spec,
                args.threads,
                med["infopt"] * 1e3,
                med["ort"] * 1e3,
                ratio,
                *spread,
                len(per_block),
                gflops,
                gflops / peak,
                *mem,
                err,
                json.dumps(ours.fallback_ops),
            ]
        )
        mem_text = ""
        if mem[0] is not None:
            mem_text = (
                f", peak RSS {mem[0]:.0f} vs {mem[1]:.0f} MB"
                f" (compile+run in one process {mem[2]:.0f} MB)"
            )
        print(
            f"{spec:<14} infopt {med['infopt'] * 1e3:8.3f} ms  onnxruntime {med['ort'] * 1e3:8.3f}"
            f" ms  ratio {ratio:.2f} (blocks {spread[0]:.2f}-{spread[1]:.2f})"
            f"  {gflops:5.1f} effective GFLOP/s ({gflops / peak:.0%} of peak)"
            f"{mem_text}  relL2 {err:.1e}  fallback {ours.fallback_ops or 'none'}"
        )
    # the goal is over the real models; the tiny model measures per-call overhead
    real = [r for spec, r in ratios if spec != "tiny"]
    if real:
        geo = math.exp(sum(math.log(r) for r in real) / len(real))
        print(f"geometric-mean latency ratio infopt/onnxruntime (real models): {geo:.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        csv.writer(f).writerows(
            [
                [
                    "model",
                    "threads",
                    "infopt_ms",
                    "ort_ms",
                    "ratio",
                    "ratio_block_p25",
                    "ratio_block_p75",
                    "blocks",
                    "gflops",
                    "of_peak",
                    "infopt_rss_mb",
                    "ort_rss_mb",
                    "infopt_compile_run_rss_mb",
                    "rel_l2",
                    "fallback",
                ],
                *rows,
            ]
        )


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
