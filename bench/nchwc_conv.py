"""infopt.NchwcConv (direct and Winograd) against infopt.FusedConv and the numpy GEMM peak.

    python bench/nchwc_conv.py [--threads 1,2] [--blocks 7] [--layers 3x3]

Each layer runs as a one-step ``_C.Program`` with W and B constant (prepacked) and a Relu
epilogue: (a) ``infopt.NchwcConv`` direct (``winograd=0``) on input already in NCHWc layout
(rank-4 NCHW input for the first ResNet conv, as the pass emits it), (b) ``infopt.FusedConv`` on
NCHW, (c) for 3x3 stride-1 layers ``infopt.NchwcConv`` as the kernel chooses by default
(Winograd F(4x4,3x3) or F(2x2,3x3) by transformed-weight size; its GF/s count direct FLOPs).
Median per block of calls after warm-up, providers alternating block by block; the minimum over
blocks of those medians is reported (the machine is shared, so the least disturbed block is the
best estimate).
Peak: a 2048^3 float32 numpy matmul (OpenBLAS) with the same thread count, in a subprocess so
that OPENBLAS_NUM_THREADS applies. Prints GFLOP/s, % of peak and NchwcConv's speed-up over
FusedConv; CSV to results/nchwc_conv.csv (results/ is outside git).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from infopt import _C

# name, x shape, w shape, stride, pad, NCHW input
LAYERS = [
    ("r50.conv1 7x7s2 (NCHW in)", (1, 3, 224, 224), (64, 3, 7, 7), 2, 3, True),
    ("r50.l1 3x3 64", (1, 64, 56, 56), (64, 64, 3, 3), 1, 1, False),
    ("r50.l1 1x1 256->64", (1, 256, 56, 56), (64, 256, 1, 1), 1, 0, False),
    ("r50.l1 1x1 64->256", (1, 64, 56, 56), (256, 64, 1, 1), 1, 0, False),
    ("r50.l2 3x3s2 128", (1, 128, 56, 56), (128, 128, 3, 3), 2, 1, False),
    ("r50.l2 3x3 128", (1, 128, 28, 28), (128, 128, 3, 3), 1, 1, False),
    ("r50.l3 3x3 256", (1, 256, 14, 14), (256, 256, 3, 3), 1, 1, False),
    ("r50.l3 1x1 1024->256", (1, 1024, 14, 14), (256, 1024, 1, 1), 1, 0, False),
    ("r50.l4 3x3 512", (1, 512, 7, 7), (512, 512, 3, 3), 1, 1, False),
    ("sq.fire2 squeeze 1x1 96->16", (1, 96, 55, 55), (16, 96, 1, 1), 1, 0, False),
    ("sq.fire2 expand 1x1 16->64", (1, 16, 55, 55), (64, 16, 1, 1), 1, 0, False),
    ("sq.fire2 expand 3x3 16->64", (1, 16, 55, 55), (64, 16, 3, 3), 1, 1, False),
    ("sq.fire6 expand 3x3 48->192", (1, 48, 13, 13), (192, 48, 3, 3), 1, 1, False),
    ("sq.fire9 expand 1x1 64->256", (1, 64, 13, 13), (256, 64, 1, 1), 1, 0, False),
    ("dn.block1 3x3 128->32", (1, 128, 56, 56), (32, 128, 3, 3), 1, 1, False),
    ("dn.block3 3x3 128->32", (1, 128, 14, 14), (32, 128, 3, 3), 1, 1, False),
    ("inc.3b 3x3 128->192", (1, 128, 28, 28), (192, 128, 3, 3), 1, 1, False),
    ("inc.4e 3x3 160->320", (1, 160, 14, 14), (320, 160, 3, 3), 1, 1, False),
]


def to_nchwc(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    cb = -(-c // 8)
    xp = np.zeros((n, cb * 8, h, w), np.float32)
    xp[:, :c] = x
    return np.ascontiguousarray(xp.reshape(n, cb, 8, h, w).transpose(0, 1, 3, 4, 2))


def runner(op: str, x, w, b, attrs, threads: int):
    p = _C.Program(threads)
    xi, wi, bi = p.add_value("x"), p.add_value("w"), p.add_value("b")
    p.set_constant(wi, w)
    p.set_constant(bi, b)
    out = p.add_value("y")
    p.add_native_step(op, [xi, wi, bi], [out], attrs)
    p.set_io([xi], [out])
    return lambda: p.run([x])


def time_blocks(
    runners: dict, blocks: int, min_block_s: float, clock=time.perf_counter
) -> dict[str, float]:
    """Min over blocks of the per-block median seconds per call, runners alternating."""
    per_call = {}
    for name, run in runners.items():
        run()
        t = time.perf_counter()
        run()
        per_call[name] = max(time.perf_counter() - t, 1e-6)
    best = {name: float("inf") for name in runners}
    for _ in range(blocks):
        for name, run in runners.items():
            reps = max(3, int(min_block_s / per_call[name]))
            end = time.perf_counter() + 0.02  # untimed settle: the other runner's pool spins down
            while time.perf_counter() < end:
                run()
            s = []
            for _ in range(reps):
                t = clock()
                run()
                s.append(clock() - t)
            best[name] = min(best[name], statistics.median(s))
    return best


def numpy_peak(threads: int, clock: str, repeats: int = 5) -> float:
    code = (
        f"import time, numpy as np; clock = time.{clock}\n"
        "a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)\n"
        "b = a.T.copy(); a @ b\n"
        "best = 1e9\n"
        f"for _ in range({repeats}):\n"
        "    t = clock(); a @ b; best = min(best, clock() - t)\n"
        "print(2 * 2048**3 / best / 1e9)\n"
    )
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--block-s", type=float, default=0.15, help="minimum seconds per timed block")
    ap.add_argument(
        "--clock",
        choices=["auto", "wall", "thread"],
        default="auto",
        help="thread: the calling thread's CPU time (1 thread only; a shared machine's preemption "
        "is not charged); auto: thread for 1 thread, wall otherwise",
    )
    ap.add_argument("--layers", default="", help="substring filter on layer names")
    ap.add_argument("--out", default="results/nchwc_conv.csv")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        clock = args.clock if args.clock != "auto" else ("thread" if threads == 1 else "wall")
        if clock == "thread" and threads != 1:
            raise SystemExit("--clock thread needs --threads 1")
        clock_name = "thread_time" if clock == "thread" else "perf_counter"
        clock_fn = getattr(time, clock_name)
        peak = max(numpy_peak(threads, clock_name) for _ in range(2))
        print(f"\nthreads={threads} clock={clock}  numpy 2048^3 matmul peak {peak:.1f} GFLOP/s")
        print(
            f"{'layer':32s} {'MFLOP':>7s} {'nchwc ms':>9s} {'GF/s':>6s} {'%pk':>5s} "
            f"{'fused ms':>9s} {'GF/s':>6s} {'%pk':>5s} {'speedup':>7s} "
            f"{'auto ms':>8s} {'GF/s':>6s} {'vs direct':>9s}"
        )
        for name, xs, ws, s, pad, nchw_in in LAYERS:
            if args.layers and args.layers not in name:
                continue
            x = rng.standard_normal(xs, dtype=np.float32)
            w = (rng.standard_normal(ws, dtype=np.float32) / np.sqrt(np.prod(ws[1:]))).astype(
                np.float32
            )
            b = rng.standard_normal(ws[0], dtype=np.float32)
            attrs = {"strides": [s, s], "pads": [pad] * 4, "activation": "Relu"}
            xin = x if nchw_in else to_nchwc(x)
            runners = {
                "nchwc": runner("infopt.NchwcConv", xin, w, b, dict(attrs, winograd=0), threads),
                "fused": runner("infopt.FusedConv", x, w, b, attrs, threads),
            }
            if ws[2:] == (3, 3) and s == 1 and not nchw_in:
                runners["auto"] = runner("infopt.NchwcConv", xin, w, b, attrs, threads)
            t = time_blocks(
                runners,
                args.blocks,
                args.block_s,
                clock_fn,
            )
            oh = (xs[2] + 2 * pad - ws[2]) // s + 1
            ow = (xs[3] + 2 * pad - ws[3]) // s + 1
            flops = 2.0 * xs[0] * ws[0] * oh * ow * ws[1] * ws[2] * ws[3]
            tn, tf = t["nchwc"], t["fused"]
            gn, gf = flops / tn / 1e9, flops / tf / 1e9
            ta = t.get("auto")
            auto = f" {ta * 1e3:8.3f} {flops / ta / 1e9:6.1f} {tn / ta:8.2f}x" if ta else ""
            print(
                f"{name:32s} {flops / 1e6:7.1f} {tn * 1e3:9.3f} {gn:6.1f} {100 * gn / peak:5.1f} "
                f"{tf * 1e3:9.3f} {gf:6.1f} {100 * gf / peak:5.1f} {tf / tn:6.2f}x{auto}"
            )
            rows.append([threads, clock, name, flops, t["nchwc"], t["fused"], ta or "", peak])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(
            [
                "threads",
                "clock",
                "layer",
                "flops",
                "nchwc_s",
                "fusedconv_s",
                "auto_s",
                "numpy_peak_gflops",
            ]
        )
        wr.writerows(rows)


if __name__ == "__main__":
    main()
