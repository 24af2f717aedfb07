"""Where the time goes: per-op-type time per run, infopt (C++ step profiling) vs onnxruntime
(``enable_profiling``), same model, same feeds, same thread count.

    python bench/profile_ops.py resnet50 [--runs 30] [--threads 2]
    python bench/profile_ops.py minilm:1x128

infopt runs its -O2 compilation, onnxruntime the original at ORT_ENABLE_ALL (as in
``cpu_models.py``), a block of runs each. Each op type's figure is the median over runs of its
per-run total, in ms; op names differ between the two (infopt's fused ops vs onnxruntime's own
fusions), so read the two columns as two rankings side by side.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", help="light model name or minilm:BxS")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
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
    warmup = 3
    for _ in range(warmup):
        ours.run(None, feeds)
        theirs.run(None, feeds)

    ours_ops: dict[str, list[float]] = collections.defaultdict(list)
    ours_total = []
    program.set_profiling(True)
    for _ in range(args.runs):
        program.reset_profile()
        start = time.perf_counter()
        ours.run(None, feeds)
        ours_total.append(time.perf_counter() - start)
        per_op: dict[str, float] = collections.defaultdict(float)
        for _label, op, seconds, _calls in program.profile():
            per_op[op] += seconds
        for op, seconds in per_op.items():
            ours_ops[op].append(seconds)
    program.set_profiling(False)
    # a block of each, not alternate runs: a pool still spinning after one runtime's run would
    # otherwise be charged to the other's next run
    for _ in range(args.runs):
        theirs.run(None, feeds)

    events = json.load(open(theirs.end_profiling()))
    runs = [
        (e["ts"], e["ts"] + e["dur"], collections.defaultdict(float))
        for e in sorted((e for e in events if e.get("ph") == "X"), key=lambda e: e["ts"])
        if e.get("cat") == "Session" and e["name"] == "model_run"
    ]
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            for begin, end, per_op in runs:
                if begin <= e["ts"] <= end:
                    per_op[e["args"]["op_name"]] += e["dur"] * 1e-6
    runs = runs[warmup:]
    theirs_ops: dict[str, list[float]] = collections.defaultdict(list)
    for _, _, per_op in runs:
        for op, seconds in per_op.items():
            theirs_ops[op].append(seconds)

    def med(values):
        return statistics.median(values) * 1e3

    ort_total = statistics.median([(b - a) * 1e-6 for a, b, _ in runs]) * 1e3
    print(
        f"{args.model}, {args.threads} threads, median of {args.runs} runs (ms/run): "
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


if __name__ == "__main__":
    main()
