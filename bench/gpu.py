"""infopt's Triton kernels and CUDA plans vs torch on an NVIDIA GPU: correctness first, then speed.

    python bench/gpu.py [--quick] [--csv results/gpu.csv]
    python bench/gpu.py --dry-run        # the whole script at tiny sizes, CPU + interpreter

1. every kernel is checked against its torch counterpart on random data (fails loudly);
2. each is timed against torch (cuBLAS matmul, scaled_dot_product_attention, layer_norm,
   softmax, embedding, cuDNN conv, pooling, mean) and against the device's peak: TFLOP/s for
   GEMM-like kernels, GB/s for memory-bound ones;
3. ResNet-50 and MiniLM run through ``infopt.InferenceSession(..., providers=
   ["CUDAExecutionProvider"])`` (compiled -O2 for --target cuda) against torch eager on the same
   weights: MiniLM is the ``transformers`` model in eager mode; ResNet-50 (no torchvision here) is
   the same ONNX graph executed op by op with ``torch.nn.functional`` (``TorchOnnx``). Both sides
   take numpy feeds and return numpy outputs, so both pay the same host copies.

Timing is the median of CUDA-event-timed repeats after warm-up (autotuning happens in warm-up).
The whole script stays within about 10 minutes on an H100/H200; without a GPU (and without
``--dry-run``) it prints why and exits 0. ``--dry-run`` runs every step at tiny sizes on torch
CPU tensors under ``TRITON_INTERPRET=1``: it proves the script works, its times mean nothing.
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


def _time(fn, dry: bool, repeats: int = 30, warmup: int = 5) -> float:
    """Median milliseconds per call (one untimed-for-claims call in a dry run)."""
    import torch

    if dry:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1e3
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

    got, want = torch.as_tensor(got).float(), torch.as_tensor(want).float()
    if got.shape != want.shape or not torch.allclose(got, want, atol=atol, rtol=rtol):
        err = (got - want).abs().max().item() if got.shape == want.shape else float("nan")
        raise SystemExit(
            f"CHECK FAILED: {name}: shapes {list(got.shape)} / {list(want.shape)}, "
            f"max abs error {err:.3g} (atol {atol}, rtol {rtol})"
        )


def _relative_l2(got, want) -> float:
    import numpy as np

    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def kernel_cases(size: str, dev: str):
    """(name, ours, theirs, work, unit, (atol, rtol), peak kind) per benchmark; work is FLOPs or
    bytes. ``size``: full | quick | tiny (dry run: fp32 everywhere, the CPU's torch lacks
    some half kernels)."""
    import torch
    import torch.nn.functional as F

    from infopt.kernels.attention import attention
    from infopt.kernels.conv import conv2d, prepack_weight
    from infopt.kernels.gather import gather_rows
    from infopt.kernels.gemm import gemm
    from infopt.kernels.norm import layer_norm
    from infopt.kernels.pointwise import pointwise
    from infopt.kernels.pool import pool2d
    from infopt.kernels.reduce import reduce
    from infopt.kernels.softmax import softmax

    tiny = size == "tiny"
    g = torch.Generator(device=dev).manual_seed(0)

    def rnd(*shape, dtype=torch.float32):
        return torch.randn(*shape, device=dev, generator=g, dtype=torch.float32).to(dtype)

    half = (torch.float32, "ieee", "fp32") if tiny else (torch.bfloat16, "bf16", "bf16")
    single = (torch.float32, "ieee", "fp32") if tiny else (torch.float32, "tf32", "tf32")
    cases = []
    sizes = {
        "tiny": [(37, 45, 29)],
        "quick": [(4096, 4096, 4096)],
        "full": [(4096, 4096, 4096), (8192, 8192, 8192), (512, 3072, 768)],
    }[size]
    for M, N, K in sizes:
        for dtype, precision, label in (single, half)[: 1 if tiny else 2]:
            a, b, bias = rnd(M, K, dtype=dtype), rnd(K, N, dtype=dtype), rnd(N)
            cases.append((
                f"gemm+bias+gelu {M}x{N}x{K} {label}",
                lambda a=a, b=b, bias=bias, p=precision: gemm(
                    a, b, bias, activation="Gelu", precision=p),
                lambda a=a, b=b, bias=bias: F.gelu(torch.addmm(bias.to(a.dtype), a, b)),
                2.0 * M * N * K, "TFLOP/s", (5e-1, 5e-2), label,
            ))  # fmt: skip
    B, H, S, D = {"tiny": (2, 2, 19, 32), "quick": (4, 12, 512, 64), "full": (8, 16, 1024, 64)}[
        size
    ]
    dtype, _, label = half
    for causal in (False, True):
        q, k, v = (rnd(B, H, S, D, dtype=dtype) for _ in range(3))
        flops = 4.0 * B * H * S * S * D / (2 if causal else 1)
        cases.append((
            f"attention B{B} H{H} S{S} D{D} {label}{' causal' if causal else ''}",
            lambda q=q, k=k, v=v, c=causal: attention(q, k, v, causal=c),
            lambda q=q, k=k, v=v, c=causal: F.scaled_dot_product_attention(q, k, v, is_causal=c),
            flops, "TFLOP/s", (2e-2, 2e-2), label,
        ))  # fmt: skip
    # the MiniLM form: fp32, head dim 32, a [B, 1, 1, S] padding mask at float32's lowest value
    Bm, Hm, Sm = {"tiny": (2, 3, 11), "quick": (32, 12, 128), "full": (64, 12, 256)}[size]
    qm, km, vm = (rnd(Bm, Hm, Sm, 32) for _ in range(3))
    pad = torch.where(torch.rand(Bm, 1, 1, Sm, device=dev, generator=g) < 0.2, -3.4028e38, 0.0)
    pad[..., 0] = 0.0
    cases.append((
        f"attention+pad mask B{Bm} H{Hm} S{Sm} D32 {single[2]}",
        lambda: attention(qm, km, vm, pad, precision=single[1]),
        lambda: F.scaled_dot_product_attention(qm, km, vm, attn_mask=pad),
        4.0 * Bm * Hm * Sm * Sm * 32, "TFLOP/s", (2e-2, 2e-2), single[2],
    ))  # fmt: skip
    rows, width = (13, 96) if tiny else (8192, 1024)
    x, w, b = rnd(rows, width), rnd(width), rnd(width)
    cases.append((
        f"layer_norm {rows}x{width} fp32", lambda: layer_norm(x, w, b),
        lambda: F.layer_norm(x, (width,), w, b), 2.0 * x.numel() * 4, "GB/s", (1e-4, 1e-4), "bw",
    ))  # fmt: skip
    sshape = (2, 3, 9, 17) if tiny else (64, 12, 128, 128)
    s = rnd(*sshape)
    m = torch.where(torch.rand(sshape[0], 1, 1, sshape[3], device=dev) < 0.2, -1e4, 0.0)
    cases.append((
        f"softmax+mask {'x'.join(map(str, sshape))} fp32", lambda: softmax(s, m),
        lambda: torch.softmax(s + m, -1), 2.0 * s.numel() * 4, "GB/s", (1e-5, 1e-4), "bw",
    ))  # fmt: skip
    pshape = (2, 5, 7, 9) if tiny else (32, 256, 56, 56)
    xa, xb = rnd(*pshape), rnd(pshape[1], 1, 1)
    expr = [("mul", 0, 1), ("add", 2, 0), ("relu", 3)]
    cases.append((
        f"pointwise mul+add+relu {'x'.join(map(str, pshape))}", lambda: pointwise(expr, [xa, xb]),
        lambda: torch.relu(xa * xb + xa), 2.0 * xa.numel() * 4, "GB/s", (1e-5, 1e-5), "bw",
    ))  # fmt: skip
    vocab, hidden, tokens = (50, 24, 14) if tiny else (30522, 384, 32 * 128)
    table = rnd(vocab, hidden)
    ids = torch.randint(0, vocab, (tokens,), device=dev, generator=g)
    cases.append((
        f"embedding gather {tokens} of {vocab}x{hidden}", lambda: gather_rows(table, ids),
        lambda: F.embedding(ids, table), 2.0 * tokens * hidden * 4, "GB/s", (0, 0), "bw",
    ))  # fmt: skip
    nb, c, hw = (1, 8, 9) if tiny else (32, 256, 56)
    for dtype, precision, label in (single, (torch.float16, "ieee", "fp16")):
        if tiny and dtype == torch.float16:
            continue
        xc = rnd(nb, c, hw, hw, dtype=dtype).contiguous(memory_format=torch.channels_last)
        wc = rnd(c, c, 3, 3, dtype=dtype) * 0.05
        packed = prepack_weight(wc, 1)
        flops = 2.0 * nb * hw * hw * c * c * 9
        cases.append((
            f"conv3x3 {nb}x{c}x{hw}x{hw} {label}",
            lambda xc=xc, wc=wc, pk=packed, p=precision: conv2d(
                xc, wc, pads=(1, 1, 1, 1), activation="Relu", precision=p, packed=pk),
            lambda xc=xc, wc=wc: torch.relu(F.conv2d(xc, wc, padding=1)),
            flops, "TFLOP/s", (2e-1, 5e-2), label,
        ))  # fmt: skip
    pp = (1, 4, 11, 13) if tiny else (32, 64, 112, 112)
    xp = rnd(*pp).contiguous(memory_format=torch.channels_last)
    cases.append((
        f"maxpool3x3s2 {'x'.join(map(str, pp))}",
        lambda: pool2d(xp, "max", (3, 3), strides=(2, 2), pads=(1, 1, 1, 1)),
        lambda: F.max_pool2d(xp, 3, 2, 1), xp.numel() * 4 * 1.25, "GB/s", (0, 0), "bw",
    ))  # fmt: skip
    xr = rnd(*((2, 6, 5, 7) if tiny else (64, 2048, 7, 7)))
    cases.append((
        f"global mean {'x'.join(map(str, xr.shape))}", lambda: reduce(xr, [2, 3], "mean"),
        lambda: xr.mean((2, 3), keepdim=True), xr.numel() * 4.0, "GB/s", (1e-5, 1e-4), "bw",
    ))  # fmt: skip
    return cases


class TorchOnnx:
    """An ONNX CNN graph (ResNet-style ops) executed op by op with ``torch.nn.functional``:
    torch eager on exactly the weights infopt runs. ``flops`` counts Conv/Gemm MACs x 2."""

    def __init__(self, proto, device: str):
        import torch
        from onnx import numpy_helper

        self.proto, self.device, self.flops = proto, device, 0.0
        self.weights = {
            t.name: torch.from_numpy(numpy_helper.to_array(t).copy()).to(device)
            for t in proto.graph.initializer
        }

    def __call__(self, x):
        import numpy as np
        import torch
        import torch.nn.functional as F

        env = dict(self.weights)
        env[self.proto.graph.input[0].name] = torch.from_numpy(np.ascontiguousarray(x)).to(
            self.device
        )
        flops = 0.0
        with torch.no_grad():
            for node in self.proto.graph.node:
                a = {at.name: _attr(at) for at in node.attribute}
                ins = [env[i] if i else None for i in node.input]
                op = node.op_type
                if op == "Conv":
                    pads = a.get("pads", [0, 0, 0, 0])
                    if pads[:2] != pads[2:]:
                        raise ValueError("TorchOnnx: asymmetric Conv pads")
                    bias = ins[2] if len(ins) > 2 else None
                    y = F.conv2d(ins[0], ins[1], bias, stride=a.get("strides", 1),
                                 padding=pads[:2], dilation=a.get("dilations", 1),
                                 groups=a.get("group", 1))  # fmt: skip
                    flops += 2.0 * y.numel() * ins[1][0].numel()
                elif op == "BatchNormalization":
                    y = F.batch_norm(ins[0], ins[3], ins[4], ins[1], ins[2], False, 0.0,
                                     a.get("epsilon", 1e-5))  # fmt: skip
                elif op == "Relu":
                    y = torch.relu(ins[0])
                elif op in ("Sum", "Add"):
                    y = ins[0] + ins[1]
                elif op == "MaxPool":
                    pads = a.get("pads", [0, 0, 0, 0])
                    y = F.max_pool2d(ins[0], a["kernel_shape"], a.get("strides"), pads[:2])
                elif op == "AveragePool":
                    y = F.avg_pool2d(ins[0], a["kernel_shape"], a.get("strides"))
                elif op == "GlobalAveragePool":
                    y = ins[0].mean((2, 3), keepdim=True)
                elif op == "Reshape":
                    shape = [int(s) for s in ins[1].cpu()]
                    y = ins[0].reshape([ins[0].shape[i] if s == 0 else s
                                        for i, s in enumerate(shape)])  # fmt: skip
                elif op == "Flatten":
                    y = ins[0].flatten(a.get("axis", 1))
                elif op == "Gemm":
                    w = ins[1].t() if a.get("transB", 0) else ins[1]
                    xg = ins[0].t() if a.get("transA", 0) else ins[0]
                    y = a.get("alpha", 1.0) * (xg @ w)
                    if len(ins) > 2:
                        y = y + a.get("beta", 1.0) * ins[2]
                    flops += 2.0 * y.numel() * xg.shape[-1]
                elif op == "Softmax":
                    y = torch.softmax(ins[0], a.get("axis", 1 if self._opset() < 13 else -1))
                else:
                    raise ValueError(f"TorchOnnx: no torch form for {op}")
                env[node.output[0]] = y
        self.flops = flops
        return [env[o.name].cpu().numpy() for o in self.proto.graph.output]

    def _opset(self) -> int:
        return next(o.version for o in self.proto.opset_import if o.domain in ("", "ai.onnx"))


def _attr(at):
    from onnx import helper

    return helper.get_attribute_value(at)


def model_cases(size: str, dev: str):
    """(name, infopt runner, torch eager runner, numpy feeds, FLOPs, peak kind, tolerance)."""
    import numpy as np
    import onnx

    import infopt
    from infopt.testing.models import random_weight_model

    tiny = size == "tiny"
    cases = []
    proto = onnx.load(str(random_weight_model("resnet50")))
    hw = 32 if tiny else 224
    if tiny:  # a 32x32 image: the final 7x7 AveragePool becomes the global one it is at 224
        for node in proto.graph.node:
            if node.op_type == "AveragePool":
                node.op_type = "GlobalAveragePool"
                del node.attribute[:]
        dims = proto.graph.input[0].type.tensor_type.shape.dim
        dims[2].dim_value = dims[3].dim_value = hw
    batch = 1 if tiny else 16
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_value = batch
    # the model zoo graph flattens to a constant [1, 2048]: -1 lets a batch through, both sides
    for init in proto.graph.initializer:
        if init.name in {n.input[1] for n in proto.graph.node if n.op_type == "Reshape"}:
            init.CopyFrom(onnx.numpy_helper.from_array(np.array([-1, 2048], np.int64), init.name))
    model, _ = infopt.compile(proto, level=2, target="cuda")
    session = infopt.InferenceSession(model, providers=["CUDAExecutionProvider"])
    name = proto.graph.input[0].name
    x = np.random.default_rng(0).standard_normal((batch, 3, hw, hw)).astype(np.float32)
    eager = TorchOnnx(proto, dev)
    eager(x)  # counts the FLOPs
    kind = "fp32" if tiny else "tf32"
    cases.append((
        f"ResNet-50 {batch}x3x{hw}x{hw} {kind}", lambda: session.run(None, {name: x}),
        lambda: eager(x), eager.flops, kind, 1e-4 if tiny else 2e-2, session,
    ))  # fmt: skip
    from infopt.testing import hf_models

    if not hf_models.available():
        print("MiniLM: torch, transformers or the MiniLM weights are missing; skipped")
        return cases
    import torch

    batch, length = (1, 5) if tiny else (32, 128)
    path = hf_models.model_path("minilm", "torchscript")
    mini, _ = infopt.compile(path, level=2, target="cuda")
    mini_session = infopt.InferenceSession(mini, providers=["CUDAExecutionProvider"])
    feeds = hf_models.sentence_feeds(batch, length)
    encoder = hf_models._Encoder().to(dev)

    def torch_minilm():
        with torch.no_grad():
            ids = torch.from_numpy(feeds["input_ids"]).to(dev)
            mask = torch.from_numpy(feeds["attention_mask"]).to(dev)
            return [encoder(ids, mask).cpu().numpy()]

    cfg = encoder.bert.config
    tokens, h, f, seq = batch * length, cfg.hidden_size, cfg.intermediate_size, length
    flops = cfg.num_hidden_layers * (
        2.0 * tokens * (4 * h * h + 2 * h * f) + 4.0 * tokens * seq * h
    )
    cases.append((
        f"MiniLM-L6 batch {batch} seq {length} {kind}", lambda: mini_session.run(None, feeds),
        torch_minilm, flops, kind, 1e-4 if tiny else 2e-2, mini_session,
    ))  # fmt: skip
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, smaller shapes")
    parser.add_argument("--dry-run", action="store_true",
                        help="tiny sizes, CPU, TRITON_INTERPRET=1 (no timing claims)")  # fmt: skip
    parser.add_argument("--csv", type=Path, default=None, help="also write rows to this CSV")
    args = parser.parse_args(argv)
    dry = args.dry_run
    # before triton is imported: the interpreter for a dry run, the compiler otherwise
    if dry:
        os.environ["TRITON_INTERPRET"] = "1"
    else:
        os.environ.pop("TRITON_INTERPRET", None)
    if not dry:
        os.environ.setdefault("INFOPT_CUDA_PRECISION", "tf32")  # torch runs tf32 too
    try:  # the installed package; a bare source checkout falls back to its python/ folder
        import infopt._C  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    from infopt.runtime.cuda import cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    if reason is not None:
        print(f"bench/gpu.py: no GPU run: {reason}")
        return 0
    import torch

    if dry:
        dev, size, name = "cpu", "tiny", "CPU (dry run: Triton interpreter; times mean nothing)"
        tf32_peak = bf16_peak = bw_peak = float("nan")
    else:
        dev, size = "cuda", "quick" if args.quick else "full"
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        name = torch.cuda.get_device_name()
        tf32_peak, bf16_peak, bw_peak = _peaks(name)
    print(
        f"device: {name}  (peaks: tf32 {tf32_peak} TFLOP/s, bf16 {bf16_peak}, HBM {bw_peak} GB/s)"
    )
    peaks = {"tf32": tf32_peak, "fp32": tf32_peak, "bf16": bf16_peak, "fp16": bf16_peak,
             "bw": bw_peak}  # fmt: skip
    started = time.perf_counter()
    rows = []
    cases = kernel_cases(size, dev)
    print(f"checking {len(cases)} kernels against torch ...")
    for label, ours, theirs, _work, _unit, (atol, rtol), _kind in cases:
        _check(label, ours(), theirs(), atol, rtol)
    print("all kernels match torch\n")
    header = (
        f"{'case':<44} {'infopt ms':>10} {'torch ms':>10} {'infopt':>10} {'torch':>10} "
        f"{'unit':>8} {'% peak':>7} {'ratio':>6}"
    )
    print(header)

    def report(label, t_ours, t_theirs, work, unit, kind):
        scale = 1e-9 if unit == "TFLOP/s" else 1e-6  # per ms: FLOP->TFLOP/s, bytes->GB/s
        r_ours, r_theirs = work / t_ours * scale, work / t_theirs * scale
        pct = 100.0 * r_ours / peaks[kind]
        print(f"{label:<44} {t_ours:>10.3f} {t_theirs:>10.3f} {r_ours:>10.2f} {r_theirs:>10.2f} "
              f"{unit:>8} {pct:>6.1f}% {t_theirs / t_ours:>6.2f}")  # fmt: skip
        rows.append([label, t_ours, t_theirs, r_ours, r_theirs, unit, pct])

    for label, ours, theirs, work, unit, _tol, kind in cases:
        report(label, _time(ours, dry), _time(theirs, dry), work, unit, kind)
    print()
    for label, ours, theirs, flops, kind, tol, session in model_cases(size, dev):
        start = time.perf_counter()
        got = ours()  # warm-up: autotuning and buffer planning
        t_ours = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        want = theirs()
        t_theirs = (time.perf_counter() - start) * 1e3
        err = max(_relative_l2(g, w) for g, w in zip(got, want, strict=True))
        if not err <= tol:
            raise SystemExit(f"CHECK FAILED: {label}: relative L2 {err:.3g} > {tol}")
        if not dry:  # a dry run reports the checking calls: the interpreter is slow enough
            t_ours = _time(ours, dry, repeats=10, warmup=2)
            t_theirs = _time(theirs, dry, repeats=10, warmup=2)
        report(label, t_ours, t_theirs, flops, "TFLOP/s", kind)
        host = session.fallback_ops
        print(f"    relative L2 vs torch {err:.2e}; host steps: {host or 'none'}")
    ratios = [r[2] / r[1] for r in rows if r[1] and r[2] == r[2]]
    elapsed = time.perf_counter() - started
    summary = "not meaningful in a dry run" if dry else f"{statistics.geometric_mean(ratios):.2f}"
    print(f"\ngeomean torch/infopt time ratio: {summary} ({elapsed:.0f} s)")
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as f:
            csv.writer(f).writerows([["case", "infopt_ms", "torch_ms", "infopt", "torch", "unit",
                                      "pct_peak"], *rows])  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
