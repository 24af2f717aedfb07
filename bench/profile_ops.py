"""Where the time goes: per-op-type time per run, infopt (C++ step profiling) vs onnxruntime
(``enable_profiling``), same model, same feeds, same thread count.

    python bench/profile_ops.py resnet50 [--runs 30] [--threads 2] [--convs]
    python bench/profile_ops.py minilm:1x128

infopt runs its -O2 compilation, onnxruntime the original at ORT_ENABLE_ALL (as in
``cpu_models.py``), in alternating blocks of 5 runs, each block after a 150 ms untimed settle of
its own runs (onnxruntime's workers spin ~60 ms after a run; see ``runtime.bench.time_blocks``).
Each op type's figure is the median over runs of its per-run total, in ms; op names differ
between the two (infopt's fused ops vs onnxruntime's own fusions), so read the two columns as
two rankings side by side. ``--convs`` adds every convolution layer, matched across the two by
weight shape and order of appearance (median ms per run, largest gap first), and the sums of
per-step minimums (the least disturbed run of each step: the machines here are shared).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

BLOCK_RUNS = 5
SETTLE_S = 0.15


def _settle(run) -> None:
    end = time.perf_counter() + SETTLE_S
    run()
    while time.perf_counter() < end:
        run()


def _conv_keys(shapes: list[tuple]) -> list[tuple]:
    """(weight shape, k-th layer with that shape) for conv weight shapes in execution order."""
    seen: collections.Counter = collections.Counter()
    keys = []
    for shape in shapes:
        seen[shape] += 1
        keys.append((shape, seen[shape]))
    return keys


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", help="light model name or minilm:BxS")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--convs", action="store_true", help="also compare conv layers one by one")
    args = ap.parse_args()

    import onnxruntime as ort
    from cpu_models import model_and_feeds

    import infopt

    path, feeds = model_and_feeds(args.model)
    compiled, _ = infopt.compile(path, level=2, target="cpu")
    opts = infopt.SessionOptions()
    opts.intra_op_num_threads = args.threads
    ours = infopt.InferenceSession(compiled, opts)
    program = ours.program
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
    so.enable_profiling, so.log_severity_level = True, 3
    so.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
    theirs = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def run_ours():
        return ours.run(None, feeds)

    def run_theirs():
        return theirs.run(None, feeds)

    # infopt: per-step seconds of every timed run (onnxruntime's come from its profile)
    ours_steps: dict[str, list[float]] = collections.defaultdict(list)
    step_ops: dict[str, str] = {}
    ours_total: list[float] = []
    n_blocks = max(1, args.runs // BLOCK_RUNS)
    for _ in range(n_blocks):
        _settle(run_ours)
        program.set_profiling(True)
        for _ in range(BLOCK_RUNS):
            program.reset_profile()
            start = time.perf_counter()
            run_ours()
            ours_total.append(time.perf_counter() - start)
            for label, op, seconds, _calls in program.profile():
                ours_steps[label].append(seconds)
                step_ops[label] = op
        program.set_profiling(False)
        _settle(run_theirs)
        for _ in range(BLOCK_RUNS):
            run_theirs()

    events = json.load(open(theirs.end_profiling()))
    all_runs = sorted(
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if e.get("ph") == "X" and e.get("cat") == "Session" and e["name"] == "model_run"
    )
    # the timed runs are the last BLOCK_RUNS of every block: settle runs are many and short
    timed = set()
    for end in _block_ends(all_runs, n_blocks):
        timed.update(range(end - BLOCK_RUNS, end))
    theirs_runs = [r for i, r in enumerate(all_runs) if i in timed]
    theirs_nodes: dict[str, list[float]] = collections.defaultdict(lambda: [0.0] * len(theirs_runs))
    node_ops: dict[str, str] = {}
    node_first: dict[str, float] = {}
    node_w: dict[str, tuple] = {}
    starts = [r[0] for r in theirs_runs]
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        i = _run_of(e["ts"], theirs_runs, starts)
        if i is None:
            continue
        name = e["name"]
        theirs_nodes[name][i] += e["dur"] * 1e-6
        node_ops[name] = e["args"]["op_name"]
        node_first.setdefault(name, e["ts"] - theirs_runs[i][0])
        shapes = e["args"].get("input_type_shape") or []
        if len(shapes) > 1 and node_ops[name] in ("Conv", "FusedConv"):
            node_w[name] = tuple(next(iter(shapes[1].values())))

    def med(values):
        return statistics.median(values) * 1e3

    # per op type: its total in each run (every step reports once per run), then the median
    ours_ops = _per_run_totals(ours_steps, step_ops, len(ours_total))
    theirs_ops = _per_run_totals(theirs_nodes, node_ops, len(theirs_runs))
    ort_total = statistics.median([(b - a) * 1e-6 for a, b in theirs_runs]) * 1e3
    print(
        f"{args.model}, {args.threads} threads, median of {len(ours_total)} runs (ms/run): "
        f"infopt {med(ours_total):.2f}, onnxruntime {ort_total:.2f}"
    )
    a = sorted(((op, med(v)) for op, v in ours_ops.items()), key=lambda x: -x[1])
    b = sorted(((op, med(v)) for op, v in theirs_ops.items()), key=lambda x: -x[1])
    print(f"{'infopt op':26s} {'ms':>8s} | {'onnxruntime op':26s} {'ms':>8s}")
    for i in range(max(len(a), len(b))):
        left = a[i] if i < len(a) else ("", 0.0)
        right = b[i] if i < len(b) else ("", 0.0)
        if max(left[1], right[1]) < 0.005:
            continue
        print(f"{left[0]:26s} {left[1]:8.3f} | {right[0]:26s} {right[1]:8.3f}")
    print(f"{'sum':26s} {sum(x[1] for x in a):8.3f} | {'sum':26s} {sum(x[1] for x in b):8.3f}")
    if args.convs:
        _print_convs(compiled, ours_steps, theirs_nodes, node_w, node_first)


def _per_run_totals(per_step: dict, op_of: dict, runs: int) -> dict[str, list[float]]:
    totals: dict[str, list[float]] = collections.defaultdict(lambda: [0.0] * runs)
    for step, values in per_step.items():
        for i, seconds in enumerate(values):
            totals[op_of[step]][i] += seconds
    return totals


def _block_ends(all_runs: list[tuple], n_blocks: int) -> list[int]:
    """Indices one past each block's last run: the n_blocks largest gaps between runs (the
    other runtime's block) end them, and the last block ends with the last run."""
    gaps = sorted(
        range(1, len(all_runs)), key=lambda i: all_runs[i][0] - all_runs[i - 1][1], reverse=True
    )
    return sorted(gaps[: n_blocks - 1]) + [len(all_runs)]


def _run_of(ts: float, runs: list[tuple], starts: list[float]) -> int | None:
    i = bisect.bisect_right(starts, ts) - 1
    return i if i >= 0 and ts <= runs[i][1] else None


def _print_convs(compiled, ours_steps, theirs_nodes, node_w, node_first) -> None:
    from infopt.ir.serde import model_to_proto

    proto = model_to_proto(compiled)
    inits = {t.name: tuple(t.dims) for t in proto.graph.initializer}
    ours_shapes, ours_labels = [], []
    for label in ours_steps:
        node = proto.graph.node[int(label.rsplit("_", 1)[1])]
        if "Conv" in node.op_type and len(node.input) > 1 and node.input[1] in inits:
            ours_shapes.append(inits[node.input[1]])
            ours_labels.append(label)
    theirs_names = sorted(node_w, key=lambda n: node_first[n])
    ours_by_key = dict(zip(_conv_keys(ours_shapes), ours_labels, strict=True))
    theirs_by_key = dict(
        zip(_conv_keys([node_w[n] for n in theirs_names]), theirs_names, strict=True)
    )
    rows = []
    for key in ours_by_key.keys() & theirs_by_key.keys():
        o, t = ours_steps[ours_by_key[key]], theirs_nodes[theirs_by_key[key]]
        rows.append((key, statistics.median(o) * 1e3, statistics.median(t) * 1e3, min(o), min(t)))
    rows.sort(key=lambda r: r[2] - r[1])
    print(f"\n{'conv layer (W shape, k-th)':36s} {'infopt':>8s} {'ort':>8s} {'diff':>8s}  (ms)")
    for key, o, t, _, _ in rows:
        print(f"{str(key):36s} {o:8.3f} {t:8.3f} {o - t:+8.3f}")
    unmatched = len(ours_by_key) + len(theirs_by_key) - 2 * len(rows)
    print(
        f"{len(rows)} layers matched ({unmatched} unmatched); sums of medians: infopt "
        f"{sum(r[1] for r in rows):.2f}, onnxruntime {sum(r[2] for r in rows):.2f}; sums of "
        f"per-step minimums: infopt {sum(r[3] for r in rows) * 1e3:.2f}, onnxruntime "
        f"{sum(r[4] for r in rows) * 1e3:.2f}"
    )


if __name__ == "__main__":
    main()
