"""Latency comparison used by ``infopt-compile --benchmark`` and ``bench/``.

Median of repeated runs after warm-up; providers measured in alternating blocks so that one
runtime's spinning thread pool does not steal cores from the next; the same thread count for
every provider.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from ..testing.compare import relative_l2
from ..testing.inputs import random_feeds


def sample_blocks(
    runners: dict[str, Callable[[], object]],
    blocks: int = 5,
    per_block: int = 3,
    warmup: int = 2,
    budget_s: float = 60.0,
    settle_s: float = 0.15,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[list[float]]]:
    """Seconds of each timed call (by ``clock``), block by block, the runners alternating block
    by block (their order reversed every other block, so neither always follows the other).

    Each block starts with untimed runs for ``settle_s`` (at least one): the previous runner's
    thread pool may still be spinning on the cores, which would otherwise be charged to the
    first timed runs of whoever comes next. onnxruntime's intra-op workers (default settings,
    2 threads) keep a core busy for ~60 ms after each run (their CPU time in /proc, sampled
    every 10 ms after a SqueezeNet run): a 50 ms settle left the first timed runs of the next
    block sharing the cores with it. numpy's OpenBLAS (2 threads) spins a core for ~115 ms
    after each matmul."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    samples: dict[str, list[list[float]]] = {name: [] for name in runners}
    order = list(runners)
    start = time.perf_counter()
    for b in range(blocks):
        for name in order if b % 2 == 0 else order[::-1]:
            run = runners[name]
            settle_until = time.perf_counter() + settle_s
            run()
            while time.perf_counter() < settle_until:
                run()
            block = []
            for _ in range(per_block):
                t = clock()
                run()
                block.append(clock() - t)
            samples[name].append(block)
        if time.perf_counter() - start > budget_s:
            break
    return samples


def block_medians(samples: dict[str, list[list[float]]]) -> dict[str, float]:
    """Median seconds per call of each runner over all its timed calls."""
    return {name: statistics.median(t for block in s for t in block) for name, s in samples.items()}


def time_blocks(
    runners: dict[str, Callable[[], object]],
    blocks: int = 5,
    per_block: int = 3,
    warmup: int = 2,
    budget_s: float = 60.0,
    settle_s: float = 0.15,
) -> dict[str, float]:
    """Median seconds per call of each runner, measured by ``sample_blocks``."""
    return block_medians(sample_blocks(runners, blocks, per_block, warmup, budget_s, settle_s))


def block_ratios(samples: dict[str, list[list[float]]], a: str, b: str) -> list[float]:
    """Per block, ``a``'s median call over ``b``'s in the same block: pairs measured seconds
    apart, so a slow minute of a shared machine weighs on both sides of its ratio."""
    return [
        statistics.median(x) / statistics.median(y)
        for x, y in zip(samples[a], samples[b], strict=True)
    ]


def onnxruntime_session(path: str | os.PathLike, threads: int, level: str = "ORT_ENABLE_ALL"):
    """An onnxruntime session pinned to ``threads`` intra-op threads, or None if not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def compare_latency(original: Path, compiled: Path, threads: int = 0) -> list[str]:
    from ..ir import load
    from .session import InferenceSession, SessionOptions

    threads = threads or (os.cpu_count() or 1)
    opts = SessionOptions()
    opts.intra_op_num_threads = threads
    model = load(compiled)
    feeds = random_feeds(model, seed=0)
    sessions = {
        "infopt (original)": InferenceSession(str(original), opts),
        "infopt (compiled)": InferenceSession(model, opts),
    }
    ort = onnxruntime_session(original, threads)
    runners = {name: (lambda s=s: s.run(None, feeds)) for name, s in sessions.items()}
    if ort is not None:
        runners["onnxruntime (original)"] = lambda: ort.run(None, feeds)
    reference = sessions["infopt (original)"].run(None, feeds)
    compiled_out = sessions["infopt (compiled)"].run(None, feeds)
    err = max(relative_l2(a, b) for a, b in zip(reference, compiled_out, strict=True))
    medians = time_blocks(runners)
    base = medians["infopt (original)"]
    rows = [f"latency, {threads} thread(s), median of alternating blocks:"]
    for name, sec in medians.items():
        rows.append(f"  {name:<24} {sec * 1000:9.2f} ms   x{base / sec:5.2f} vs original")
    if ort is not None:
        ratio = medians["infopt (compiled)"] / medians["onnxruntime (original)"]
        rows.append(f"infopt compiled / onnxruntime latency ratio: {ratio:.2f}")
    rows.append(f"max relative L2 difference compiled vs original: {err:.2e}")
    fallback = sessions["infopt (compiled)"].fallback_ops
    if fallback:
        rows.append(
            "ops through the fallback: " + ", ".join(f"{k}={v}" for k, v in fallback.items())
        )
    return rows


__all__ = [
    "block_medians",
    "block_ratios",
    "compare_latency",
    "onnxruntime_session",
    "sample_blocks",
    "time_blocks",
]
