"""Pointwise fusion: one generated Triton kernel for a whole chain of elementwise ops.

A chain is a small expression list. Slots ``0..n-1`` are the inputs; step ``i`` (an
``(op, *operands)`` tuple, operands being slot numbers or float literals) defines slot ``n+i``;
the last step is the output:

    y = expr[-1](... expr[0](inputs) ...)        e.g. [("add", 0, 1), ("relu", 2)] = relu(x0 + x1)

Inputs broadcast numpy-style to the output shape and may have any strides (transposed views,
channels-last, stride-0 broadcasts). Float and bool inputs load as fp32; integer inputs load as
int64, so integer add/sub/mul/min/max/where/comparisons are exact (mixing with a float promotes
to fp32, as Triton does). Comparisons give 1.0/0.0; the output is cast to ``out_dtype`` (a bool
output stores ``value != 0``).
Each distinct (expression, rank, input count) is generated once into a source file (Triton
compiles functions from their source) and cached for the process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ._launch import cdiv, elementwise_block

# op -> (arity, Triton expression template over fp32 operands)
OPS: dict[str, tuple[int, str]] = {
    "identity": (1, "{0}"),
    "add": (2, "({0} + {1})"),
    "sub": (2, "({0} - {1})"),
    "mul": (2, "({0} * {1})"),
    "div": (2, "({0} / {1})"),
    "neg": (1, "(-{0})"),
    "abs": (1, "tl.abs({0})"),
    "relu": (1, "tl.maximum({0}, 0.0)"),
    "sigmoid": (1, "tl.sigmoid({0})"),
    "tanh": (1, "(2.0 * tl.sigmoid(2.0 * {0}) - 1.0)"),
    "exp": (1, "tl.exp({0})"),
    "log": (1, "tl.log({0})"),
    "sqrt": (1, "tl.sqrt({0})"),
    "rsqrt": (1, "(1.0 / tl.sqrt({0}))"),
    "reciprocal": (1, "(1.0 / {0})"),
    "erf": (1, "tl.erf({0})"),
    "floor": (1, "tl.floor({0})"),
    "ceil": (1, "tl.ceil({0})"),
    "square": (1, "({0} * {0})"),
    "gelu": (1, "(0.5 * {0} * (1.0 + tl.erf({0} * 0.7071067811865476)))"),
    "gelu_tanh": (
        1,
        "(0.5 * {0} * (2.0 * tl.sigmoid(1.5957691216057308 * ({0} + 0.044715 * {0} * {0} * {0}))))",
    ),
    "silu": (1, "({0} * tl.sigmoid({0}))"),
    "leaky_relu": (2, "tl.where({0} >= 0.0, {0}, {0} * {1})"),
    "hard_sigmoid": (3, "tl.minimum(tl.maximum({0} * {1} + {2}, 0.0), 1.0)"),
    "clip": (3, "tl.minimum(tl.maximum({0}, {1}), {2})"),
    "max": (2, "tl.maximum({0}, {1})"),
    "min": (2, "tl.minimum({0}, {1})"),
    "where": (3, "tl.where({0} != 0.0, {1}, {2})"),
    "equal": (2, "tl.where({0} == {1}, 1.0, 0.0)"),
    "less": (2, "tl.where({0} < {1}, 1.0, 0.0)"),
    "greater": (2, "tl.where({0} > {1}, 1.0, 0.0)"),
    "not": (1, "tl.where({0} != 0.0, 0.0, 1.0)"),
    "not_equal": (2, "tl.where({0} != {1}, 1.0, 0.0)"),
    "less_equal": (2, "tl.where({0} <= {1}, 1.0, 0.0)"),
    "greater_equal": (2, "tl.where({0} >= {1}, 1.0, 0.0)"),
    "to_int": (1, "{0}.to(tl.int64)"),
    "to_float": (1, "{0}.to(tl.float32)"),
    "pow_int": (2, None),  # integer literal exponent, expanded into multiplications
}

_FLOAT_OUT = (torch.float32, torch.float16, torch.bfloat16)


def _literal(x: float) -> str:
    if math.isnan(x):
        raise ValueError("pointwise: NaN literal")
    if math.isinf(x):
        return "3.4028234663852886e38" if x > 0 else "-3.4028234663852886e38"
    return repr(float(x))


def _validate(expr: Sequence[tuple], n_inputs: int) -> None:
    if not expr:
        raise ValueError("pointwise: empty expression")
    for i, step in enumerate(expr):
        op, *args = step
        if op not in OPS:
            raise ValueError(f"pointwise: unknown op {op!r} in step {i}; known: {sorted(OPS)}")
        if len(args) != OPS[op][0]:
            raise ValueError(
                f"pointwise: {op} takes {OPS[op][0]} operands, step {i} has {len(args)}"
            )
        for a in args:
            if isinstance(a, int) and not isinstance(a, bool) and not 0 <= a < n_inputs + i:
                raise ValueError(f"pointwise: step {i} reads slot {a}, not yet defined")
        if op == "pow_int" and not (
            isinstance(args[1], float | int) and float(args[1]).is_integer()
        ):
            raise ValueError("pointwise: pow_int needs an integer literal exponent")


def _operand(a, names: list[str]) -> str:
    if isinstance(a, float):
        return _literal(a)
    return names[a]


def _pow_int(base: str, n: int) -> str:
    k = abs(int(n))
    body = " * ".join([base] * k) if k else "1.0"
    return f"(1.0 / ({body}))" if n < 0 else f"({body})"


def generate_source(
    expr: Sequence[tuple],
    n_inputs: int,
    rank: int,
    name: str,
    kinds: str | None = None,
    out_bool: bool = False,
) -> str:
    """Source of one Triton kernel computing ``expr`` over rank-``rank`` strided tensors;
    ``kinds`` has one letter per input: ``f`` loads as fp32, ``i`` as int64."""
    kinds = kinds or "f" * n_inputs
    ins = [f"in{i}" for i in range(n_inputs)]
    sizes = [f"size{d}" for d in range(rank)]
    strides = [f"st{i}_{d}" for i in range(n_inputs) for d in range(rank)]
    ostrides = [f"ost{d}" for d in range(rank)]
    params = ", ".join([*ins, "out", "numel", *sizes, *strides, *ostrides, "BLOCK: tl.constexpr"])
    lines = [
        "import triton",
        "import triton.language as tl",
        "",
        "",
        "@triton.jit",
        f"def {name}({params}):",
        "    idx = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)",
        "    mask = idx < numel",
    ]
    if rank == 1:
        lines.append("    i0 = idx")
    else:
        lines.append("    rem = idx")
        for d in range(rank - 1, 0, -1):
            lines.append(f"    i{d} = rem % size{d}")
            lines.append(f"    rem = rem // size{d}")
        lines.append("    i0 = rem")

    def offset(prefix: str) -> str:
        return " + ".join(f"i{d} * {prefix}{d}" for d in range(rank))

    names = []
    for i in range(n_inputs):
        load_type = "tl.int64" if kinds[i] == "i" else "tl.float32"
        lines.append(
            f"    x{i} = tl.load(in{i} + ({offset(f'st{i}_')}), mask=mask, other=1).to({load_type})"
        )
        names.append(f"x{i}")
    for j, (op, *args) in enumerate(expr):
        var = f"t{j}"
        if op == "pow_int":
            code = _pow_int(_operand(args[0], names), int(args[1]))
        else:
            code = OPS[op][1].format(*(_operand(a, names) for a in args))
        lines.append(f"    {var} = {code}")
        names.append(var)
    result = names[-1]
    if out_bool:  # ONNX bool means != 0: say so rather than lean on Triton's float -> i1 cast
        result = f"({result} != 0)"
    store = f"{result}.to(out.dtype.element_ty)"
    lines.append(f"    tl.store(out + ({offset('ost')}), {store}, mask=mask)")
    return "\n".join(lines) + "\n"


_KERNELS: dict[tuple, object] = {}


def _cache_dir() -> Path:
    root = Path(os.environ.get("INFOPT_CACHE", Path.home() / ".cache" / "infopt"))
    path = root / "triton_pointwise"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _normalize(expr: Sequence[tuple]) -> tuple:
    return tuple(
        (step[0], *(float(a) if isinstance(a, float) else int(a) for a in step[1:]))
        for step in expr
    )


def get_kernel(
    expr: Sequence[tuple], n_inputs: int, rank: int, kinds: str | None = None, out_bool=False
):
    """The jitted kernel for (expr, n_inputs, rank, input kinds, bool output), generated on
    first use."""
    kinds = kinds or "f" * n_inputs
    key = (_normalize(expr), n_inputs, rank, kinds, bool(out_bool))
    kernel = _KERNELS.get(key)
    if kernel is None:
        digest = hashlib.sha1(repr(key).encode()).hexdigest()[:16]
        name = f"_pointwise_{digest}"
        source = generate_source(key[0], n_inputs, rank, name, kinds, bool(out_bool))
        path = _cache_dir() / f"{name}.py"
        if not path.exists() or path.read_text() != source:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(source)
            os.replace(tmp, path)
        spec = importlib.util.spec_from_file_location(f"infopt_pointwise_{digest}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        kernel = getattr(module, name)
        _KERNELS[key] = kernel
    return kernel


def _collapse(shape: list[int], strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Sort dims by the output's strides (last list) and merge dims every tensor walks densely."""
    order = sorted(
        (d for d in range(len(shape)) if shape[d] != 1), key=lambda d: -abs(strides[-1][d])
    )
    dims = [shape[d] for d in order]
    sts = [[s[d] for d in order] for s in strides]
    if not dims:
        return [1], [[0] for _ in strides]
    out_dims, out_sts = [dims[0]], [[s[0]] for s in sts]
    for d in range(1, len(dims)):
        pairs = zip(out_sts, sts, strict=True)
        if all(o[-1] == st[d] * dims[d] for o, st in pairs):
            out_dims[-1] *= dims[d]
            for o, st in zip(out_sts, sts, strict=True):
                o[-1] = st[d]
        else:
            out_dims.append(dims[d])
            for o, st in zip(out_sts, sts, strict=True):
                o.append(st[d])
    return out_dims, out_sts


def _dense(t: torch.Tensor) -> bool:
    return t.is_contiguous() or (
        t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
    )


def pointwise(
    expr: Sequence[tuple],
    inputs: Sequence[torch.Tensor],
    *,
    out_dtype: torch.dtype | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Evaluate the fused elementwise chain ``expr`` over broadcast ``inputs`` in one launch.
    The output takes the layout of the first full-shape dense input (so channels-last stays
    channels-last) and ``out_dtype`` (default: the first float input's dtype)."""
    if not inputs:
        raise ValueError("pointwise: needs at least one input")
    _validate(expr, len(inputs))
    try:
        shape = tuple(torch.broadcast_shapes(*(t.shape for t in inputs)))
    except RuntimeError:
        raise ValueError(
            f"pointwise: input shapes {[list(t.shape) for t in inputs]} do not broadcast"
        ) from None
    if out_dtype is None:
        out_dtype = next((t.dtype for t in inputs if t.dtype in _FLOAT_OUT), torch.float32)
    if out is None:
        like = next((t for t in inputs if tuple(t.shape) == shape and _dense(t)), None)
        if like is not None:
            out = torch.empty_like(like, dtype=out_dtype)
        else:
            out = torch.empty(shape, dtype=out_dtype, device=inputs[0].device)
    elif tuple(out.shape) != shape:
        raise ValueError(f"pointwise: out has shape {list(out.shape)}, expected {list(shape)}")
    numel = out.numel()
    if numel == 0:
        return out
    expanded = [t.expand(shape) for t in inputs]
    strides = [list(t.stride()) for t in expanded] + [list(out.stride())]
    dims, sts = _collapse(list(shape), strides)
    kinds = "".join("f" if t.is_floating_point() or t.dtype == torch.bool else "i" for t in inputs)
    kernel = get_kernel(expr, len(inputs), len(dims), kinds, out.dtype == torch.bool)
    block = elementwise_block(numel)
    flat_strides = [s for st in sts[:-1] for s in st]
    kernel[(cdiv(numel, block),)](
        *expanded, out, numel, *dims, *flat_strides, *sts[-1], BLOCK=block
    )
    return out


def contiguous(x: torch.Tensor) -> torch.Tensor:
    """x as a row-major tensor, copied by the pointwise kernel when it is not one already."""
    if x.is_contiguous():
        return x
    return pointwise(
        [("identity", 0)], [x], out=torch.empty(x.shape, dtype=x.dtype, device=x.device)
    )


_NP = {
    "identity": lambda a: a,
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "neg": np.negative,
    "abs": np.abs,
    "relu": lambda a: np.maximum(a, 0.0),
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "tanh": np.tanh,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "rsqrt": lambda a: 1.0 / np.sqrt(a),
    "reciprocal": lambda a: 1.0 / a,
    "erf": np.vectorize(math.erf, otypes=[np.float64]),
    "floor": np.floor,
    "ceil": np.ceil,
    "square": np.square,
    "silu": lambda a: a / (1.0 + np.exp(-a)),
    "leaky_relu": lambda a, s: np.where(a >= 0, a, a * s),
    "hard_sigmoid": lambda a, al, be: np.clip(a * al + be, 0.0, 1.0),
    "clip": lambda a, lo, hi: np.minimum(np.maximum(a, lo), hi),
    "max": np.maximum,
    "min": np.minimum,
    "where": lambda c, a, b: np.where(c != 0, a, b),
    "equal": lambda a, b: (a == b).astype(np.float64),
    "less": lambda a, b: (a < b).astype(np.float64),
    "greater": lambda a, b: (a > b).astype(np.float64),
    "not": lambda a: (a == 0).astype(np.float64),
    "not_equal": lambda a, b: (a != b).astype(np.float64),
    "less_equal": lambda a, b: (a <= b).astype(np.float64),
    "greater_equal": lambda a, b: (a >= b).astype(np.float64),
    "to_int": np.trunc,
    "to_float": lambda a: a,
    "pow_int": lambda a, n: a ** int(n),
}
_NP["gelu"] = lambda a: 0.5 * a * (1.0 + _NP["erf"](a / math.sqrt(2.0)))
_NP["gelu_tanh"] = lambda a: (
    0.5 * a * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (a + 0.044715 * a**3)))
)


def pointwise_reference(expr: Sequence[tuple], inputs: Sequence[np.ndarray]) -> np.ndarray:
    """float64 numpy evaluation of ``expr``."""
    slots: list = [np.asarray(x, dtype=np.float64) for x in inputs]
    for op, *args in expr:
        vals = [a if isinstance(a, float) else slots[a] for a in args]
        slots.append(np.asarray(_NP[op](*vals), dtype=np.float64))
    shape = np.broadcast_shapes(*(np.shape(x) for x in inputs))
    return np.broadcast_to(slots[-1], shape)


def _aot_specs():
    """A few generated chains at ranks 1..4 (the generator is the same for every chain)."""
    exprs = [
        ([("add", 0, 1), ("relu", 2)], 2),
        ([("sub", 0, 1), ("mul", 3, 2), ("add", 4, 0), ("gelu", 5), ("tanh", 6)], 3),
        ([("identity", 0)], 1),
        ([("where", 0, 1, 2), ("pow_int", 3, 3.0), ("clip", 4, -1.0, 1.0)], 3),
    ]
    # the mask-math forms: integer inputs compared exactly, bool outputs
    int_exprs = [
        ([("greater_equal", 0, 1), ("mul", 2, 3)], 3, "iif", "*i1"),
        ([("where", 0, 1, 2)], 3, "fii", "*i64"),
        ([("not_equal", 0, 1)], 2, "ii", "*i1"),
    ]
    specs = []
    for expr, n in exprs:
        for rank in (1, 2, 3, 4):
            kernel = get_kernel(expr, n, rank)
            sig = {a: "i64" for a in kernel.arg_names}
            for i in range(n):
                sig[f"in{i}"] = "*fp32"
            sig["out"] = "*fp16" if rank == 2 else "*fp32"
            sig["BLOCK"] = "constexpr"
            specs.append((kernel, sig, {"BLOCK": 1024}, {"num_warps": 4}))
    for expr, n, kinds, out in int_exprs:
        for rank in (2, 4):
            kernel = get_kernel(expr, n, rank, kinds, out == "*i1")
            sig = {a: "i64" for a in kernel.arg_names}
            for i, kind in enumerate(kinds):  # float-kind inputs here are bool masks
                sig[f"in{i}"] = "*i64" if kind == "i" else "*i1"
            sig["out"] = out
            sig["BLOCK"] = "constexpr"
            specs.append((kernel, sig, {"BLOCK": 1024}, {"num_warps": 4}))
    return specs
