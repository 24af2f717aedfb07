"""Compile time and node counts per light model (infopt -O2), with a CSV in results/.

python bench/compile_times.py [--level 2] [--target cpu]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import infopt
from infopt.testing.models import LIGHT_MODELS, resolve


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--level", type=int, default=2)
    ap.add_argument("--target", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="results/compile_times.csv")
    args = ap.parse_args()
    rows = []
    print(f"{'model':<14} {'nodes':>6} {'->':>3} {'after':<6} {'compile s (median)':>18}")
    for name in LIGHT_MODELS:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            _, report = infopt.compile(resolve(name), level=args.level, target=args.target)
            times.append(time.perf_counter() - start)
        med = statistics.median(times)
        rows.append([name, report.nodes_before, report.nodes_after, f"{med:.4f}"])
        print(f"{name:<14} {report.nodes_before:>6} {'->':>3} {report.nodes_after:<6} {med:18.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        csv.writer(f).writerows([["model", "nodes_before", "nodes_after", "compile_s"], *rows])
    print(f"max compile time: {max(float(r[3]) for r in rows):.3f} s; CSV: {out}")


if __name__ == "__main__":
    main()
