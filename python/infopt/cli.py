"""``infopt-compile``: optimize an ONNX model into a ``.opt`` file.

Exit status: 0 on success, 2 on bad input (one line on stderr, no output file written or
clobbered), 1 on an internal error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .errors import InfoptError, InputError

PROG = "infopt-compile"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Optimize an ONNX model. MODEL is a path, or the bare name of a model shipped "
        "in the onnx wheel (resnet50, densenet121, inception_v1, inception_v2, shufflenet, "
        "squeezenet, vgg19, alexnet, zfnet512).",
    )
    p.add_argument("model", metavar="MODEL", help="input .onnx file or bundled model name")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output .opt file")
    p.add_argument(
        "-O",
        dest="level",
        type=int,
        default=2,
        choices=[0, 1, 2, 3],
        help="optimization level (default 2)",
    )
    p.add_argument(
        "--target",
        choices=["cpu", "cuda", "onnx"],
        default="cpu",
        help="cpu/cuda keep infopt ops (with ONNX function definitions); onnx writes "
        "standard ops only",
    )
    p.add_argument("--passes", metavar="P1,P2", help="run exactly these passes instead of -O's")
    p.add_argument(
        "--verify",
        action="store_true",
        help="run the model after every pass; name the first pass that changes outputs",
    )
    p.add_argument(
        "--print-ir-after",
        metavar="PASS",
        action="append",
        default=[],
        help="print the IR after PASS (repeatable; 'all' for every pass)",
    )
    p.add_argument(
        "--benchmark",
        action="store_true",
        help="time the original and the result in infopt's runtime (and onnxruntime "
        "when installed)",
    )
    p.add_argument("--threads", type=int, default=0, help="threads for --benchmark (0: all)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _compile(args)
    except InfoptError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no output written", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"{PROG}: error: out of memory; no output written", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line, but distinguishable from bad input
        print(f"{PROG}: internal error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        if os.environ.get("INFOPT_DEBUG"):
            raise
        return 1


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_output_path(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"output {path} is a directory")
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"cannot write {path}: permission denied")


def _compile(args: argparse.Namespace) -> int:
    from .compiler import compile
    from .ir import save
    from .testing.models import resolve

    source = resolve(args.model)
    out = Path(args.output)
    _check_output_path(out)
    say = (lambda *a: None) if args.quiet else print
    progress = None
    if not args.quiet and sys.stderr.isatty():

        def progress(msg: str) -> None:
            print(f"\r{msg:<60}", end="", file=sys.stderr, flush=True)

    passes = [p for p in args.passes.split(",") if p] if args.passes else None
    print_after = args.print_ir_after
    if "all" in print_after:
        from .passes import PASSES

        print_after = list(PASSES)
    model, report = compile(
        str(source),
        level=args.level,
        target=args.target,
        passes=passes,
        verify_numerics=args.verify,
        print_ir_after=print_after,
        progress=progress,
    )
    if progress is not None:
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    save(model, out)
    say(f"{PROG}: {source} -> {out}")
    for line in report.summary_lines():
        say(line)
    fused = {k: v for k, v in report.op_counts_after.items() if k.startswith("infopt.")}
    if fused:
        say("  infopt ops: " + ", ".join(f"{k}={v}" for k, v in fused.items()))
    if args.benchmark:
        _benchmark(source, out, args.threads, say)
    return 0


def _benchmark(original: Path, compiled: Path, threads: int, say) -> None:
    from .runtime.bench import compare_latency

    t0 = time.perf_counter()
    rows = compare_latency(original, compiled, threads=threads)
    for row in rows:
        say(f"  {row}")
    say(f"  (benchmark took {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    sys.exit(main())
