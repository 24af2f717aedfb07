"""Single-op latency of infopt's native kernels against onnxruntime (and numpy), same threads.

    python bench/cpu_kernels.py --threads 2 [--provider infopt,onnxruntime,numpy] [--cases conv]

Each case is one node: infopt runs it as a one-step ``_C.Program`` (constant weights set as
constants, so prepacking applies), onnxruntime as a one-node model with the same initializers,
numpy as a float32 expression. Each provider's time is the median of its calls over blocks that
alternate between providers (``runtime.bench.sample_blocks``: each block starts with
``--settle`` seconds of untimed runs, so the previous provider's spinning threads are not
charged to the next); a ratio is the median over blocks of infopt's block median over the
rival's adjacent block median (below 1: infopt faster), against onnxruntime and against numpy.
CSV to results/cpu_kernels.csv.

``--clock thread`` (only with ``--threads 1``) times each call by the calling thread's CPU time
instead of wall time, which keeps the comparison meaningful on a machine shared with other jobs.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from infopt import _C
from infopt.runtime.bench import block_medians, block_ratios, sample_blocks


@dataclass
class Case:
    name: str
    op: str
    inputs: list[np.ndarray]
    attrs: dict = field(default_factory=dict)
    const: tuple[int, ...] = ()
    ref: Callable[..., np.ndarray] | None = None
    ort_op: str | None = None  # op type for onnxruntime when it differs (None: same)
    ort_opset: int = 17
    ort_domain: str = ""
    ort_attrs: dict | None = None


def pin_blas_threads(threads: int) -> bool:
    """numpy's BLAS pinned to ``threads`` for the rest of the process (threadpoolctl), as the
    runtimes are; without threadpoolctl numpy keeps its own count, and this says so (False)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("(threadpoolctl not installed: numpy uses its default BLAS threads)")
        return False
    threadpool_limits(limits=threads, user_api="blas")
    return True


def cases(rng: np.random.Generator) -> list[Case]:
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    out: list[Case] = []
    for c, hw in [(64, 56), (128, 28), (256, 14), (512, 7)]:
        out.append(
            Case(
                f"conv3x3 {c}ch {hw}x{hw}",
                "Conv",
                [f(1, c, hw, hw), f(c, c, 3, 3), f(c)],
                {"pads": [1, 1, 1, 1], "kernel_shape": [3, 3]},
                const=(1, 2),
            )
        )
    out.append(
        Case(
            "conv1x1 256->1024 14x14",
            "Conv",
            [f(1, 256, 14, 14), f(1024, 256, 1, 1)],
            {},
            const=(1,),
        )
    )
    for c, hw, s in [(256, 14, 1), (116, 28, 1), (232, 14, 2), (512, 7, 1)]:
        out.append(
            Case(
                f"depthwise3x3 {c}ch {hw}x{hw} s{s}",
                "Conv",
                [f(1, c, hw, hw), f(c, 1, 3, 3), f(c)],
                {"pads": [1, 1, 1, 1], "group": c, "strides": [s, s]},
                const=(1, 2),
            )
        )
    for k, n in [(9216, 4096), (4096, 4096), (2048, 1000), (4096, 1000)]:
        out.append(
            Case(
                f"gemm fc M=1 {k}->{n} transB",
                "Gemm",
                [f(1, k), f(n, k), f(n)],
                {"transB": 1},
                const=(1, 2),
                ref=lambda a, b, c: a @ b.T + c,
            )
        )
    for m, k, n in [
        (128, 384, 384),
        (128, 384, 1536),
        (128, 1536, 384),
        (1, 768, 2304),
        (8, 768, 768),
    ]:
        out.append(
            Case(
                f"matmul {m}x{k}x{n} const B",
                "MatMul",
                [f(1, m, k), f(k, n)],
                {},
                const=(1,),
                ref=lambda a, b: a @ b,
            )
        )
    # the SGEMM bar: square sizes against numpy's OpenBLAS, B fed (packed every call,
    # as numpy does)
    for n in (256, 512, 1024, 2048):
        out.append(Case(f"sgemm square {n}", "MatMul", [f(n, n), f(n, n)], ref=lambda a, b: a @ b))
    out.append(
        Case(
            "matmul batched 12x128x32x128",
            "MatMul",
            [f(12, 128, 32), f(12, 32, 128)],
            ref=lambda a, b: a @ b,
        )
    )
    x = f(1, 128, 384)
    out.append(
        Case(
            "layernorm 128x384",
            "LayerNormalization",
            [x, f(384), f(384)],
            {"axis": -1, "epsilon": 1e-5},
            const=(1, 2),
        )
    )
    out.append(
        Case(
            "softmax 12x128x128",
            "Softmax",
            [f(12, 128, 128)],
            {"axis": -1},
            ref=lambda a: (
                np.exp(a - a.max(-1, keepdims=True))
                / np.exp(a - a.max(-1, keepdims=True)).sum(-1, keepdims=True)
            ),
        )
    )
    big = f(1, 128, 1536)
    for op, ref in [
        ("Erf", None),
        ("Tanh", np.tanh),
        ("Exp", np.exp),
        ("Sigmoid", lambda a: 1 / (1 + np.exp(-a))),
    ]:
        out.append(Case(f"{op.lower()} 128x1536", op, [big], ref=ref))
    out.append(Case("gelu 128x1536", "Gelu", [big], ort_opset=20))
    out.append(
        Case(
            "reducemean 128x384 axis -1",
            "ReduceMean",
            [x],
            {"axes": [-1]},
            ort_opset=13,
            ref=lambda a: a.mean(-1, keepdims=True),
        )
    )
    out.append(Case("add 128x1536 + bias", "Add", [big, f(1536)], ref=np.add))
    out.append(
        Case(
            "where mask 12x128x128",
            "Where",
            [rng.random((1, 1, 128, 128)) > 0.5, f(12, 128, 128), f(1)],
            ref=np.where,
        )
    )
    out.append(
        Case(
            "fusedmatmul gelu 128x384x1536 (ort: MatMul)",
            "infopt.FusedMatMul",
            [f(1, 128, 384), f(384, 1536), f(1536)],
            {"activation": "Gelu"},
            const=(1, 2),
            ort_op="MatMul",
            ort_attrs={},
        )
    )
    q = [f(1, 12, 128, 32) for _ in range(3)]
    mask = np.zeros((1, 1, 1, 128), np.float32)
    out.append(
        Case(
            "attention b1 h12 s128 d32",
            "infopt.Attention",
            q + [mask],
            {},
            ref=lambda q_, k_, v_, m_: _np_attention(q_, k_, v_, m_),
            ort_op="MultiHeadAttention",
            ort_domain="com.microsoft",
        )
    )
    return out


def paired_ratio(samples: dict[str, list[list[float]]], a: str, b: str) -> float:
    """Median over blocks of ``a``'s block median / ``b``'s adjacent block median (nan when
    either was not run)."""
    if a not in samples or b not in samples:
        return math.nan
    return statistics.median(block_ratios(samples, a, b))


def _np_attention(q, k, v, m):
    s = q @ np.swapaxes(k, -1, -2) * (1 / math.sqrt(q.shape[-1])) + m
    e = np.exp(s - s.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)) @ v


def infopt_runner(c: Case, threads: int) -> Callable[[], object]:
    p = _C.Program(threads)
    ids, feeds, feed_ids = [], [], []
    for i, a in enumerate(c.inputs):
        vid = p.add_value(f"in{i}")
        ids.append(vid)
        if i in c.const:
            p.set_constant(vid, a)
        else:
            feeds.append(a)
            feed_ids.append(vid)
    out = p.add_value("out")
    p.add_native_step(c.op, ids, [out], c.attrs)
    p.set_io(feed_ids, [out])
    return lambda: p.run(feeds)


def _np_type(a: np.ndarray) -> int:
    return helper.np_dtype_to_tensor_dtype(a.dtype)


def ort_runner(c: Case, threads: int) -> Callable[[], object] | None:
    import onnxruntime as ort

    inputs, feeds, inits = [], {}, []
    node_inputs = list(c.inputs)
    if c.ort_op == "MatMul":  # onnxruntime runs the bare MatMul (no bias, no activation)
        node_inputs = node_inputs[:2]
    if c.ort_op == "MultiHeadAttention":  # [B,H,S,D] -> [B,S,H*D] and back; mask as attention_bias
        b, h, s, d = c.inputs[0].shape
        node_inputs = [a.transpose(0, 2, 1, 3).reshape(b, s, h * d).copy() for a in c.inputs[:3]]
        node_inputs += [
            None,
            None,
            np.broadcast_to(c.inputs[3], (b, 1, s, s)).astype(np.float32).copy(),
        ]
    names = []
    for i, a in enumerate(node_inputs):
        if a is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        if i in c.const:
            inits.append(numpy_helper.from_array(a, name))
        else:
            inputs.append(helper.make_tensor_value_info(name, _np_type(a), list(a.shape)))
            feeds[name] = a
    attrs = dict(c.ort_attrs if c.ort_attrs is not None else c.attrs)
    if c.ort_op == "MultiHeadAttention":
        attrs = {"num_heads": int(c.inputs[0].shape[1])}
    node = helper.make_node(c.ort_op or c.op, names, ["out"], domain=c.ort_domain, **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        inputs,
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", c.ort_opset)]
    if c.ort_domain:
        opsets.append(helper.make_opsetid(c.ort_domain, 1))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8 if c.ort_opset < 19 else 9
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(
            model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # noqa: BLE001 - report and skip the provider for this case
        print(f"  onnxruntime cannot run {c.name}: {str(e).splitlines()[0][:120]}")
        return None
    return lambda: sess.run(None, feeds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--provider", default="infopt,onnxruntime,numpy")
    ap.add_argument("--cases", default="", help="comma-separated substrings of case names")
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--per-block", type=int, default=5)
    ap.add_argument("--clock", choices=["wall", "thread"], default="wall")
    ap.add_argument("--settle", type=float, default=0.15, help="untimed seconds before each block")
    ap.add_argument("--out", default="results/cpu_kernels.csv")
    args = ap.parse_args()
    if args.clock == "thread" and args.threads != 1:
        ap.error("--clock thread measures the calling thread only; use it with --threads 1")
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    providers = args.provider.split(",")
    blas_pinned = "numpy" in providers and pin_blas_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = [
        [
            "case",
            "threads",
            "clock",
            "infopt_ms",
            "onnxruntime_ms",
            "numpy_ms",
            "ratio_vs_ort",
            "ratio_vs_numpy",
        ]
    ]
    want = [w for w in args.cases.split(",") if w]
    for c in cases(rng):
        if want and not any(w in c.name for w in want):
            continue
        runners: dict[str, Callable[[], object]] = {}
        if "infopt" in providers:
            runners["infopt"] = infopt_runner(c, args.threads)
        if "onnxruntime" in providers:
            r = ort_runner(c, args.threads)
            if r is not None:
                runners["onnxruntime"] = r
        # the thread clock sees numpy's BLAS only when it is pinned to the calling thread
        if "numpy" in providers and c.ref is not None and (args.clock == "wall" or blas_pinned):
            runners["numpy"] = lambda c=c: c.ref(*c.inputs)
        samples = sample_blocks(
            runners, args.blocks, args.per_block, budget_s=20, settle_s=args.settle, clock=clock
        )
        ms = {k: v * 1e3 for k, v in block_medians(samples).items()}
        ratio, ratio_np = (paired_ratio(samples, "infopt", r) for r in ("onnxruntime", "numpy"))
        rows.append(
            [
                c.name,
                args.threads,
                args.clock,
                *(f"{ms.get(p, float('nan')):.4f}" for p in ("infopt", "onnxruntime", "numpy")),
                f"{ratio:.2f}",
                f"{ratio_np:.2f}",
            ]
        )
        print(
            f"{c.name:36s} infopt {ms.get('infopt', math.nan):9.3f} ms"
            f"  ort {ms.get('onnxruntime', math.nan):9.3f}"
            f" ms  numpy {ms.get('numpy', float('nan')):9.3f} ms  ratio {ratio:5.2f}"
            f"  vs numpy {ratio_np:5.2f}",
            flush=True,
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
