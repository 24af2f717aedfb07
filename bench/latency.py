"""Latency of infopt's runtime against onnxruntime on light models, same thread count.

    python bench/latency.py --models resnet50 --threads 2 [--provider infopt,onnxruntime]

Both runtimes run the same random-weight model; infopt runs its -O2 compilation (as a user
would), onnxruntime the original with ORT_ENABLE_ALL. Median of alternating blocks after
warm-up; the ratio is infopt / onnxruntime (below 1 means infopt is faster).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import infopt
from infopt.runtime.bench import onnxruntime_session, time_blocks
from infopt.testing.compare import relative_l2
from infopt.testing.inputs import random_feeds
from infopt.testing.models import random_weight_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="resnet50")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--per-block", type=int, default=3)
    ap.add_argument("--out", default="results/latency.csv")
    args = ap.parse_args()
    rows = []
    for name in args.models.split(","):
        path = random_weight_model(name, seed=0)
        compiled, _ = infopt.compile(path, level=2, target="cpu")
        opts = infopt.SessionOptions()
        opts.intra_op_num_threads = args.threads
        ours = infopt.InferenceSession(compiled, opts)
        theirs = onnxruntime_session(path, args.threads)
        feeds = random_feeds(compiled, seed=0)
        err = relative_l2(theirs.run(None, feeds)[0], ours.run(None, feeds)[0])
        med = time_blocks(
            {
                "infopt": lambda: ours.run(None, feeds),
                "onnxruntime": lambda: theirs.run(None, feeds),
            },
            blocks=args.blocks,
            per_block=args.per_block,
            budget_s=120,
        )
        ratio = med["infopt"] / med["onnxruntime"]
        rows.append([name, args.threads, med["infopt"], med["onnxruntime"], ratio, err])
        print(
            f"{name}: infopt {med['infopt'] * 1e3:.2f} ms, onnxruntime {med['onnxruntime'] * 1e3:.2f}"
            f" ms, ratio {ratio:.2f} ({args.threads} threads; rel L2 {err:.1e}; "
            f"fallback {ours.fallback_ops or 'none'})"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        csv.writer(f).writerows(
            [["model", "threads", "infopt_s", "onnxruntime_s", "ratio", "rel_l2"], *rows]
        )


if __name__ == "__main__":
    main()
