"""infopt's Triton kernels vs torch on an NVIDIA GPU: correctness first, then speed.

    python bench/gpu.py [--quick] [--csv results/gpu.csv]

1. every kernel is checked against its torch counterpart on random data (fails loudly);
2. each is timed against torch (cuBLAS matmul, scaled_dot_product_attention, layer_norm,
   softmax, cuDNN conv, pooling) and against the device's peak: TFLOP/s for GEMM-like kernels,
   GB/s for memory-bound ones;
3. ResNet-50 and a MiniLM-sized encoder run through ``runtime.cuda`` vs torch eager.

Timing is the median of CUDA-event-timed repeats after warm-up (autotuning happens in warm-up).
The whole script stays within about 10 minutes; without a GPU it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

# peak dense TFLOP/s (tf32 tensor core, bf16 tensor core) and HBM GB/s by device name
_PEAKS = {
    "H200": (494.0, 989.0, 4800.0),
    "H100": (494.0, 989.0, 3350.0),
    "A100": (156.0, 312.0, 2039.0),
    "L4": (60.0, 121.0, 300.0),
}


def _peaks(name: str) -> tuple[float, float, float]:
    for key, peaks in _PEAKS.items():
        if key in name:
            return peaks
    return (float("nan"),) * 3


def _time(fn, repeats: int = 30, warmup: int = 5) -> float:
    """Median milliseconds per call."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _check(name: str, got, want, atol: float, rtol: float) -> None:
    import torch

    got, want = got.float(), want.float()
    if not torch.allclose(got, want, atol=atol, rtol=rtol):
        err = (got - want).abs().max().item()
        raise SystemExit(
            f"CHECK FAILED: {name}: max abs error {err:.3g} (atol {atol}, rtol {rtol})"
        )


def kernel_cases(quick: bool):
    """(name, ours, theirs, work, unit, tolerance) per benchmark; work is FLOPs or bytes."""
    import torch
    import torch.nn.functional as F

    from infopt.kernels.attention import attention
    from infopt.kernels.conv import conv2d, prepack_weight
    from infopt.kernels.gemm import gemm
    from infopt.kernels.norm import layer_norm
    from infopt.kernels.pointwise import pointwise
    from infopt.kernels.pool import pool2d
    from infopt.kernels.softmax import softmax

    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(0)

    def rnd(*shape, dtype=torch.float32):
        return torch.randn(*shape, device=dev, generator=g, dtype=torch.float32).to(dtype)

    cases = []
    sizes = (
        [(4096, 4096, 4096)]
        if quick
        else [(4096, 4096, 4096), (8192, 8192, 8192), (512, 3072, 768)]
    )
    for M, N, K in sizes:
        for dtype, precision in ((torch.float32, "tf32"), (torch.bfloat16, "bf16")):
            a, b, bias = rnd(M, K, dtype=dtype), rnd(K, N, dtype=dtype), rnd(N)
            label = "tf32" if dtype == torch.float32 else "bf16"
            cases.append((
                f"gemm+bias+gelu {M}x{N}x{K} {label}",
                lambda a=a, b=b, bias=bias, p=precision: gemm(
                    a, b, bias, activation="Gelu", precision=p),
                lambda a=a, b=b, bias=bias: F.gelu(torch.addmm(bias.to(a.dtype), a, b)),
                2.0 * M * N * K, "TFLOP/s", (5e-1, 5e-2), label,
            ))  # fmt: skip
    B, H, S, D = (8, 16, 1024, 64) if not quick else (4, 12, 512, 64)
    for causal in (False, True):
        q, k, v = (rnd(B, H, S, D, dtype=torch.bfloat16) for _ in range(3))
        flops = 4.0 * B * H * S * S * D / (2 if causal else 1)
        cases.append((
            f"attention B{B} H{H} S{S} D{D} bf16{' causal' if causal else ''}",
            lambda q=q, k=k, v=v, c=causal: attention(q, k, v, causal=c),
            lambda q=q, k=k, v=v, c=causal: F.scaled_dot_product_attention(q, k, v, is_causal=c),
            flops, "TFLOP/s", (2e-2, 2e-2), "bf16",
        ))  # fmt: skip
    x, w, b = rnd(8192, 1024), rnd(1024), rnd(1024)
    cases.append((
        "layer_norm 8192x1024 fp32", lambda: layer_norm(x, w, b),
        lambda: F.layer_norm(x, (1024,), w, b), 2.0 * x.numel() * 4, "GB/s", (1e-4, 1e-4), "bw",
    ))  # fmt: skip
    s = rnd(64, 12, 128, 128)
    m = torch.where(torch.rand(64, 1, 1, 128, device=dev) < 0.2, -1e4, 0.0)
    cases.append((
        "softmax+mask 64x12x128x128 fp32", lambda: softmax(s, m),
        lambda: torch.softmax(s + m, -1), 2.0 * s.numel() * 4, "GB/s", (1e-5, 1e-4), "bw",
    ))  # fmt: skip
    xa, xb = rnd(32, 256, 56, 56), rnd(256, 1, 1)
    expr = [("mul", 0, 1), ("add", 2, 0), ("relu", 3)]
    cases.append((
        "pointwise mul+add+relu 32x256x56x56", lambda: pointwise(expr, [xa, xb]),
        lambda: torch.relu(xa * xb + xa), 2.0 * xa.numel() * 4, "GB/s", (1e-5, 1e-5), "bw",
    ))  # fmt: skip
    for dtype, precision, label in (
        (torch.float32, "tf32", "tf32"),
        (torch.float16, "ieee", "fp16"),
    ):
        xc = rnd(32, 256, 56, 56, dtype=dtype).contiguous(memory_format=torch.channels_last)
        wc = rnd(256, 256, 3, 3, dtype=dtype) * 0.05
        packed = prepack_weight(wc, 1)
        flops = 2.0 * 32 * 56 * 56 * 256 * 256 * 9
        cases.append((
            f"conv3x3 32x256x56x56 {label}",
            lambda xc=xc, wc=wc, pk=packed, p=precision: conv2d(
                xc, wc, pads=(1, 1, 1, 1), activation="Relu", precision=p, packed=pk),
            lambda xc=xc, wc=wc: torch.relu(F.conv2d(xc, wc, padding=1)),
            flops, "TFLOP/s", (2e-1, 5e-2), label,
        ))  # fmt: skip
    xp = rnd(32, 64, 112, 112).contiguous(memory_format=torch.channels_last)
    cases.append((
        "maxpool3x3s2 32x64x112x112",
        lambda: pool2d(xp, "max", (3, 3), strides=(2, 2), pads=(1, 1, 1, 1)),
        lambda: F.max_pool2d(xp, 3, 2, 1), xp.numel() * 4 * 1.25, "GB/s", (0, 0), "bw",
    ))  # fmt: skip
    return cases


def model_cases(quick: bool):
    """(name, infopt plan runner, torch eager runner) for whole models."""
    import numpy as np
    import onnx

    import infopt
    from infopt.ir.serde import infer_types
    from infopt.runtime.cuda import build_cuda_plan
    from infopt.testing.models import random_weight_model

    cases = []
    proto = onnx.load(str(random_weight_model("resnet50")))
    model = infopt.load(proto)
    infer_types(model)
    plan = build_cuda_plan(model, precision="tf32")
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    cases.append(("ResNet-50 1x3x224x224 tf32", plan, [x], _torch_resnet50()))
    try:
        from infopt.testing import hf_models  # noqa: F401 - another engineer's exporter
    except ImportError:
        print("MiniLM: infopt.testing.hf_models not available yet, skipped")
    return cases


def _torch_resnet50():
    """torch eager ResNet-50 with the same structure (random weights; timing only)."""
    import torch

    try:
        import torchvision

        net = torchvision.models.resnet50().cuda().eval().to(memory_format=torch.channels_last)
    except ImportError:
        return None
    x = torch.randn(1, 3, 224, 224, device="cuda").contiguous(memory_format=torch.channels_last)

    def run():
        with torch.no_grad():
            return net(x)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, smaller shapes")
    parser.add_argument("--csv", type=Path, default=None, help="also write rows to this CSV")
    args = parser.parse_args(argv)
    os.environ.pop("TRITON_INTERPRET", None)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    from infopt.runtime.cuda import cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    if reason is not None:
        print(f"bench/gpu.py: no GPU run: {reason}")
        return 0
    import torch

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name()
    tf32_peak, bf16_peak, bw_peak = _peaks(name)
    print(
        f"device: {name}  (peaks: tf32 {tf32_peak} TFLOP/s, bf16 {bf16_peak}, HBM {bw_peak} GB/s)"
    )
    started = time.perf_counter()
    rows = []
    cases = kernel_cases(args.quick)
    print(f"checking {len(cases)} kernels against torch ...")
    for label, ours, theirs, _work, _unit, (atol, rtol), _kind in cases:
        _check(label, ours(), theirs(), atol, rtol)
    print("all kernels match torch\n")
    header = (
        f"{'kernel':<44} {'infopt ms':>10} {'torch ms':>10} {'infopt':>10} {'torch':>10} "
        f"{'unit':>8} {'% peak':>7} {'ratio':>6}"
    )
    print(header)
    for label, ours, theirs, work, unit, _tol, kind in cases:
        t_ours, t_theirs = _time(ours), _time(theirs)
        scale = 1e-9 if unit == "TFLOP/s" else 1e-6  # per ms: FLOP->TFLOP/s, bytes->GB/s
        r_ours, r_theirs = work / t_ours * scale, work / t_theirs * scale
        peak = {"tf32": tf32_peak, "bf16": bf16_peak, "fp16": bf16_peak, "bw": bw_peak}[kind]
        pct = 100.0 * r_ours / peak
        print(f"{label:<44} {t_ours:>10.3f} {t_theirs:>10.3f} {r_ours:>10.1f} {r_theirs:>10.1f} "
              f"{unit:>8} {pct:>6.1f}% {t_theirs / t_ours:>6.2f}")  # fmt: skip
        rows.append([label, t_ours, t_theirs, r_ours, r_theirs, unit, pct])
    print()
    for label, plan, feeds, torch_run in model_cases(args.quick):
        out = plan.run(feeds)  # warm-up: autotuning and buffer planning
        t0 = time.perf_counter()
        reps = 10
        for _ in range(reps):
            out = plan.run(feeds)
        t_ours = (time.perf_counter() - t0) / reps * 1e3
        t_theirs = _time(torch_run, repeats=20) if torch_run is not None else float("nan")
        print(f"{label:<44} {t_ours:>10.3f} {t_theirs:>10.3f}  (infopt incl. host copies; "
              f"fallback ops: {plan.fallback_ops or 'none'}; out {out[0].shape})")  # fmt: skip
        rows.append([label, t_ours, t_theirs, "", "", "ms", ""])
    mean_ratio = statistics.geometric_mean([r[2] / r[1] for r in rows if r[1] and r[2] == r[2]])
    elapsed = time.perf_counter() - started
    print(f"\ngeomean torch/infopt time ratio: {mean_ratio:.2f} ({elapsed:.0f} s)")
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as f:
            csv.writer(f).writerows([["case", "infopt_ms", "torch_ms", "infopt", "torch", "unit",
                                      "pct_peak"], *rows])  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
