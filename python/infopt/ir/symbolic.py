"""Symbolic shapes and shape values: what a graph's dynamic-shape arithmetic computes.

Exporters of dynamic models build every Reshape target and Expand shape at run time from
``Shape(x)``: Gather, Unsqueeze, Concat, Equal/Where against -1, arithmetic. ONNX's own shape
inference gives up on most of that (every unknown dim becomes a fresh ``unk__N``). This module
walks the main graph once and records, per value:

- its shape, with dims that are ``int`` or :class:`Sym` (a product of named symbols with an
  integer coefficient, e.g. ``12*batch``), so equal dims are provably equal;
- for small integer and bool tensors (rank <= 1), their value element by element, in the same
  terms (``Shape(x)`` of an ``f32[batch,seq,384]`` is ``[batch, seq, 384]``).

Reasoning is sound, never hopeful: a dim it cannot prove is a fresh symbol of its own, equal
to nothing else. Dims are non-negative, which decides comparisons against negative constants
(the ``Equal(shape, -1)`` guards of torch's Expand export).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .graph import Graph, Node, Value

MAX_ELEMENTS = 64  # longest integer vector whose elements are tracked


@dataclass(frozen=True)
class Sym:
    """``coef * atom1 * atom2 ...``; atoms are dim names or opaque expressions."""

    coef: int
    atoms: tuple[str, ...]
    nonneg: bool = True

    def __str__(self) -> str:
        parts = ([str(self.coef)] if self.coef != 1 else []) + list(self.atoms)
        return "*".join(parts)


Dim = int | Sym
Elem = int | bool | Sym


def atom(name: str, nonneg: bool = True) -> Sym:
    return Sym(1, (name,), nonneg)


def _nonneg(d: Elem) -> bool:
    return d >= 0 if isinstance(d, int) else d.nonneg


def _opaque(op: str, a: Elem, b: Elem, nonneg: bool) -> Sym:
    left, right = str(a), str(b)
    if op in "+*" and right < left:
        left, right = right, left
    return atom(f"({left}{op}{right})", nonneg)


def mul(a: Elem, b: Elem) -> Elem:
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    if isinstance(a, int) or isinstance(b, int):
        k, s = (a, b) if isinstance(a, int) else (b, a)
        return 0 if k == 0 else Sym(s.coef * k, s.atoms, s.nonneg and k > 0)
    return Sym(a.coef * b.coef, tuple(sorted(a.atoms + b.atoms)), a.nonneg and b.nonneg)


def add(a: Elem, b: Elem) -> Elem:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if b == 0:
        return a
    if a == 0:
        return b
    if isinstance(a, Sym) and isinstance(b, Sym) and a.atoms == b.atoms:
        coef = a.coef + b.coef
        return 0 if coef == 0 else Sym(coef, a.atoms, a.nonneg and b.nonneg)
    return _opaque("+", a, b, _nonneg(a) and _nonneg(b))


def sub(a: Elem, b: Elem) -> Elem:
    if a == b:
        return 0
    if isinstance(b, int):
        return add(a, -b) if isinstance(a, int) or b <= 0 else _opaque("-", a, b, False)
    if isinstance(a, Sym) and a.atoms == b.atoms:
        coef = a.coef - b.coef
        return 0 if coef == 0 else Sym(coef, a.atoms, False)
    return _opaque("-", a, b, False)


def floordiv(a: Elem, b: Elem) -> Elem | None:
    if isinstance(b, int) and b == 0:
        return None
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    if isinstance(b, int):
        if a.coef % b == 0:
            return Sym(a.coef // b, a.atoms, a.nonneg and b > 0)
        return _opaque("//", a, b, a.nonneg and b > 0)
    left = list(a.atoms) if isinstance(a, Sym) else []
    for x in b.atoms:
        if x not in left:
            return _opaque("//", a, b, _nonneg(a) and b.nonneg)
        left.remove(x)
    coef = a.coef if isinstance(a, Sym) else a
    if coef % b.coef:
        return _opaque("//", a, b, _nonneg(a) and b.nonneg)
    q = coef // b.coef
    return Sym(q, tuple(left), _nonneg(a) and b.nonneg) if left else q


def equal(a: Elem, b: Elem) -> bool | None:
    """True/False where provable, None where it depends on run-time values."""
    if a == b:
        return True
    if isinstance(a, int) and isinstance(b, int):
        return False
    for s, k in ((a, b), (b, a)):
        if isinstance(s, Sym) and isinstance(k, int) and s.nonneg and k < 0:
            return False
    return None


def product(dims) -> Elem:
    out: Elem = 1
    for d in dims:
        out = mul(out, d)
    return out


@dataclass
class ShapeValue:
    """A small integer/bool tensor known element by element. ``rank`` is 0 or 1."""

    elems: tuple[Elem, ...]
    rank: int = 1

    @property
    def static(self) -> bool:
        return all(isinstance(e, (int, bool, np.bool_)) for e in self.elems)


def _array_value(arr: np.ndarray) -> ShapeValue | None:
    """A small integer or bool array (rank <= 1) as a ShapeValue; None for anything else."""
    if arr.ndim > 1 or arr.size > MAX_ELEMENTS or arr.dtype.kind not in "iub":
        return None
    kind = bool if arr.dtype.kind == "b" else int
    return ShapeValue(tuple(kind(x) for x in arr.reshape(-1)), arr.ndim)


class SymbolicShapes:
    """Shapes and small values of every value in ``graph``'s main body."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.shapes: dict[int, tuple[Dim, ...]] = {}
        self.values: dict[int, ShapeValue] = {}
        self._fresh = itertools.count()
        for v in graph.inputs:
            self._seed(v)
        for v in graph.initializers.values():
            self._seed(v)
        for node in graph.nodes:
            self._visit(node)

    # ----------------------------------------------------------------------- queries --------
    def shape(self, v: Value | None) -> tuple[Dim, ...] | None:
        return None if v is None else self.shapes.get(id(v))

    def value(self, v: Value | None) -> ShapeValue | None:
        return None if v is None else self.values.get(id(v))

    # ----------------------------------------------------------------------- seeding --------
    def fresh(self) -> Sym:
        return atom(f"?{next(self._fresh)}")

    def _from_annotation(self, v: Value) -> tuple[Dim, ...] | None:
        if v.shape is None:
            return None
        return tuple(
            d if isinstance(d, int) else atom(d) if isinstance(d, str) else self.fresh()
            for d in v.shape
        )

    def _seed(self, v: Value) -> None:
        if v.const is not None:
            # the tensor's shape is known without loading it; only small ones are read
            self.shapes[id(v)] = tuple(int(d) for d in v.const.shape)
            if len(v.const.shape) <= 1 and v.const.size <= MAX_ELEMENTS:
                value = _array_value(v.const.numpy())
                if value is not None:
                    self.values[id(v)] = value
        else:
            shape = self._from_annotation(v)
            if shape is not None:
                self.shapes[id(v)] = shape

    # ----------------------------------------------------------------------- transfer -------
    def _visit(self, node: Node) -> None:
        if node.domain not in ("", "ai.onnx") or any(True for _ in node.subgraphs()):
            self._annotated(node)
            return
        handler = _SHAPE_RULES.get(node.op_type)
        shape = None
        if handler is not None:
            try:
                shape = handler(self, node)
            except (ValueError, IndexError, TypeError, ZeroDivisionError):
                shape = None
        if shape is None:
            self._annotated(node)
        elif node.outputs:
            self.shapes[id(node.outputs[0])] = tuple(shape)
        value_rule = _VALUE_RULES.get(node.op_type)
        if value_rule is not None and node.outputs:
            try:
                result = value_rule(self, node)
            except (ValueError, IndexError, TypeError, ZeroDivisionError):
                result = None
            if result is not None and len(result.elems) <= MAX_ELEMENTS:
                self.values[id(node.outputs[0])] = result
                self.shapes[id(node.outputs[0])] = (len(result.elems),) if result.rank else ()

    def _annotated(self, node: Node) -> None:
        for out in node.outputs:
            shape = self._from_annotation(out)
            if shape is not None:
                self.shapes[id(out)] = shape

    def ins(self, node: Node) -> list[tuple[Dim, ...] | None]:
        return [self.shape(v) for v in node.inputs]

    def const_ints(self, v: Value | None) -> list[int] | None:
        sv = self.value(v)
        if sv is None or not sv.static:
            return None
        return [int(e) for e in sv.elems]


# ---------------------------------------------------------------------------- shapes --------
def broadcast(shapes: list[tuple[Dim, ...]], fresh) -> tuple[Dim, ...]:
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        dims = {s[i - rank + len(s)] for s in shapes if i - rank + len(s) >= 0}
        dims.discard(1)
        if not dims:
            out.append(1)
        elif len(dims) == 1:
            out.append(dims.pop())
        else:
            # a valid model can only broadcast a static dim against a symbol equal to it or 1
            statics = {d for d in dims if isinstance(d, int)}
            out.append(statics.pop() if len(statics) == 1 else fresh())
    return tuple(out)


def _same(ctx: SymbolicShapes, node: Node):
    return ctx.shape(node.inputs[0])


def _elementwise(ctx: SymbolicShapes, node: Node):
    shapes = ctx.ins(node)
    if not shapes or any(s is None for s in shapes):
        return None
    return broadcast(shapes, ctx.fresh)


def _matmul(ctx: SymbolicShapes, node: Node):
    a, b = ctx.ins(node)[:2]
    if a is None or b is None or not a or not b:
        return None
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    batch = broadcast([a2[:-2], b2[:-2]], ctx.fresh) if len(a2) > 2 or len(b2) > 2 else ()
    out = [*batch, a2[-2], b2[-1]]
    if len(a) == 1:
        out.pop(-2)
    if len(b) == 1:
        out.pop(-1)
    return tuple(out)


def _gemm(ctx: SymbolicShapes, node: Node):
    a, b = ctx.ins(node)[:2]
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return None
    m = a[1] if node.attr("transA", 0) else a[0]
    n = b[0] if node.attr("transB", 0) else b[1]
    return (m, n)


def _transpose(ctx: SymbolicShapes, node: Node):
    x = ctx.shape(node.inputs[0])
    if x is None:
        return None
    perm = node.attr("perm") or list(reversed(range(len(x))))
    return tuple(x[int(p)] for p in perm)


def _axes_input(ctx: SymbolicShapes, node: Node, rank: int) -> list[int] | None:
    axes = ctx.const_ints(node.inputs[1]) if len(node.inputs) > 1 else node.attr("axes")
    return None if axes is None else [int(a) % rank for a in axes] if rank else list(axes)


def _unsqueeze(ctx: SymbolicShapes, node: Node):
    x = ctx.shape(node.inputs[0])
    if x is None:
        return None
    axes = _axes_input(ctx, node, 0)
    if axes is None:
        return None
    rank = len(x) + len(axes)
    axes = sorted(int(a) % rank for a in axes)
    out, rest = [], iter(x)
    for i in range(rank):
        out.append(1 if i in axes else next(rest))
    return tuple(out)


def _squeeze(ctx: SymbolicShapes, node: Node):
    x = ctx.shape(node.inputs[0])
    if x is None:
        return None
    axes = _axes_input(ctx, node, len(x)) if len(node.inputs) > 1 or node.attr("axes") else None
    if axes is None:
        if any(not isinstance(d, int) for d in x):
            return None
        return tuple(d for d in x if d != 1)
    return tuple(d for i, d in enumerate(x) if i not in axes)


def _concat(ctx: SymbolicShapes, node: Node):
    shapes = ctx.ins(node)
    if not shapes or any(s is None for s in shapes):
        return None
    rank = len(shapes[0])
    axis = int(node.attr("axis", 0)) % rank
    total: Elem = 0
    for s in shapes:
        total = add(total, s[axis])
    out = list(shapes[0])
    out[axis] = total
    return tuple(out)


def _reshape(ctx: SymbolicShapes, node: Node):
    x, target = ctx.shape(node.inputs[0]), ctx.value(node.inputs[1])
    if x is None or target is None:
        return None
    allowzero = node.attr("allowzero", 0)
    out: list[Dim | None] = []
    for i, e in enumerate(target.elems):
        if e == 0 and not allowzero:
            out.append(x[i])
        elif e == -1:
            out.append(None)
        else:
            out.append(e)
    if None in out:
        known = product(d for d in out if d is not None)
        rest = floordiv(product(x), known)
        out[out.index(None)] = rest if rest is not None else ctx.fresh()
    return tuple(out)


def _gather(ctx: SymbolicShapes, node: Node):
    data, idx = ctx.ins(node)[:2]
    if data is None or idx is None:
        return None
    axis = int(node.attr("axis", 0)) % len(data)
    return (*data[:axis], *idx, *data[axis + 1 :])


def _expand(ctx: SymbolicShapes, node: Node):
    x, target = ctx.shape(node.inputs[0]), ctx.value(node.inputs[1])
    if x is None or target is None:
        return None
    return broadcast([x, target.elems], ctx.fresh)


def _slice(ctx: SymbolicShapes, node: Node):
    x = ctx.shape(node.inputs[0])
    if x is None or len(node.inputs) < 3:
        return None
    starts = ctx.value(node.inputs[1])
    ends = ctx.value(node.inputs[2])
    axes = ctx.const_ints(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] else None
    steps = ctx.const_ints(node.inputs[4]) if len(node.inputs) > 4 and node.inputs[4] else None
    if starts is None or ends is None:
        return None
    axes = axes if axes is not None else list(range(len(starts.elems)))
    steps = steps if steps is not None else [1] * len(axes)
    out = list(x)
    for a, s, e, st in zip(axes, starts.elems, ends.elems, steps, strict=True):
        a %= len(x)
        dim = x[a]
        if st == 1 and s == 0 and (e == dim or (isinstance(e, int) and e >= 2**31 - 1)):
            continue  # the whole axis
        if isinstance(dim, int) and isinstance(s, int) and isinstance(e, int):
            out[a] = len(range(dim)[slice(s, e, st)])
        else:
            out[a] = ctx.fresh()
    return tuple(out)


def _constant_of_shape(ctx: SymbolicShapes, node: Node):
    shape = ctx.value(node.inputs[0])
    return None if shape is None else tuple(shape.elems)


def _range(ctx: SymbolicShapes, node: Node):
    start, limit, delta = (ctx.value(v) for v in node.inputs[:3])
    if start is None or limit is None or delta is None:
        return None
    if start.elems == (0,) and delta.elems == (1,) and _nonneg(limit.elems[0]):
        return (limit.elems[0],)
    return (ctx.fresh(),)


_UNARY = (
    "Abs Acos Asin Atan Cast CastLike Ceil Celu Clip Cos Cosh Dropout Elu Erf Exp Floor Gelu "
    "HardSigmoid HardSwish Identity IsInf IsNaN LeakyRelu Log LogSoftmax LRN Mish Neg Not "
    "Reciprocal Relu Round Selu Sigmoid Sign Sin Sinh Softmax Softplus Softsign Sqrt Tan Tanh "
    "ThresholdedRelu Trilu BatchNormalization InstanceNormalization"
).split()
_BINARY = (
    "Add Sub Mul Div Pow Mod Equal Less LessOrEqual Greater GreaterOrEqual And Or Xor Where "
    "Max Min Sum Mean PRelu BitShift"
).split()

_SHAPE_RULES = {op: _same for op in _UNARY}
_SHAPE_RULES.update({op: _elementwise for op in _BINARY})
_SHAPE_RULES.update(
    {
        "MatMul": _matmul,
        "Gemm": _gemm,
        "Transpose": _transpose,
        "Unsqueeze": _unsqueeze,
        "Squeeze": _squeeze,
        "Concat": _concat,
        "Reshape": _reshape,
        "Gather": _gather,
        "Expand": _expand,
        "LayerNormalization": _same,
        "Slice": _slice,
        "ConstantOfShape": _constant_of_shape,
        "Range": _range,
    }
)


# ---------------------------------------------------------------------------- values --------
def _val_shape(ctx: SymbolicShapes, node: Node):
    x = ctx.shape(node.inputs[0])
    if x is None:
        return None
    start, end = node.attr("start", 0), node.attr("end", None)
    return ShapeValue(tuple(x[start:end]))


def _val_size(ctx: SymbolicShapes, node: Node):
    x = ctx.shape(node.inputs[0])
    return None if x is None else ShapeValue((product(x),), 0)


def _val_gather(ctx: SymbolicShapes, node: Node):
    data, idx = ctx.value(node.inputs[0]), ctx.value(node.inputs[1])
    if data is None or idx is None or data.rank != 1 or not idx.static:
        return None
    n = len(data.elems)
    picked = tuple(data.elems[int(i) if int(i) >= 0 else int(i) + n] for i in idx.elems)
    return ShapeValue(picked, idx.rank)


def _val_unsqueeze(ctx: SymbolicShapes, node: Node):
    x = ctx.value(node.inputs[0])
    return ShapeValue(x.elems, 1) if x is not None and x.rank == 0 else None


def _val_squeeze(ctx: SymbolicShapes, node: Node):
    x = ctx.value(node.inputs[0])
    return ShapeValue(x.elems, 0) if x is not None and len(x.elems) == 1 else None


def _val_identity(ctx: SymbolicShapes, node: Node):
    x = ctx.value(node.inputs[0])
    if x is None or node.op_type == "Cast" and node.attr("to") not in (6, 7):  # int32, int64
        return None
    if node.op_type == "Cast" and any(isinstance(e, bool) for e in x.elems):
        return None
    return x


def _val_concat(ctx: SymbolicShapes, node: Node):
    parts = [ctx.value(v) for v in node.inputs]
    if any(p is None or p.rank != 1 for p in parts):
        return None
    return ShapeValue(tuple(e for p in parts for e in p.elems))


def _val_reshape(ctx: SymbolicShapes, node: Node):
    x = ctx.value(node.inputs[0])
    out = ctx.shape(node.outputs[0])
    if x is None or out is None or len(out) > 1:
        return None
    return ShapeValue(x.elems, len(out))


def _val_slice(ctx: SymbolicShapes, node: Node):
    x = ctx.value(node.inputs[0])
    if x is None or x.rank != 1:
        return None
    bounds = [ctx.const_ints(v) if v is not None else None for v in node.inputs[1:]]
    bounds += [None] * (4 - len(bounds))
    starts, ends, axes, steps = bounds
    if starts is None or ends is None or (axes is not None and axes[0] not in (0, -1)):
        return None
    step = steps[0] if steps else 1
    return ShapeValue(tuple(x.elems[slice(starts[0], ends[0], step)]))


def _zip_elementwise(ctx: SymbolicShapes, node: Node, fn):
    parts = [ctx.value(v) for v in node.inputs]
    if any(p is None for p in parts):
        return None
    n = max(len(p.elems) for p in parts)
    if any(len(p.elems) not in (1, n) for p in parts):
        return None
    rank = max(p.rank for p in parts)
    out = []
    for i in range(n):
        r = fn(*(p.elems[i if len(p.elems) > 1 else 0] for p in parts))
        if r is None:
            return None
        out.append(r)
    return ShapeValue(tuple(out), rank)


def _arith(fn):
    def rule(ctx, node):
        return _zip_elementwise(ctx, node, fn)

    return rule


def _div(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    if isinstance(a, int) and isinstance(b, int):
        if b == 0:
            return None
        q = abs(a) // abs(b)  # ONNX integer Div truncates toward zero
        return q if (a < 0) == (b < 0) else -q
    return floordiv(a, b) if _nonneg(a) and _nonneg(b) else None


def _where(c, a, b):
    if not isinstance(c, (bool, np.bool_)):
        return None
    return a if c else b


def _val_constant_of_shape(ctx: SymbolicShapes, node: Node):
    shape = ctx.value(node.inputs[0])
    if shape is None or len(shape.elems) != 1 or not isinstance(shape.elems[0], int):
        return None
    fill = node.attr("value")
    arr = fill.numpy().reshape(-1) if fill is not None else np.zeros(1, np.float32)
    if arr.dtype.kind not in "iub":
        return None
    fill_value = bool(arr[0]) if arr.dtype.kind == "b" else int(arr[0])
    return ShapeValue((fill_value,) * shape.elems[0])


def _val_constant(ctx: SymbolicShapes, node: Node):
    for key in ("value", "value_int", "value_ints"):
        attr = node.attr(key)
        if attr is not None:
            arr = attr.numpy() if hasattr(attr, "numpy") else np.asarray(attr, dtype=np.int64)
            return _array_value(arr)
    return None


_VALUE_RULES = {
    "Constant": _val_constant,
    "Shape": _val_shape,
    "Size": _val_size,
    "Gather": _val_gather,
    "Unsqueeze": _val_unsqueeze,
    "Squeeze": _val_squeeze,
    "Identity": _val_identity,
    "Cast": _val_identity,
    "Concat": _val_concat,
    "Reshape": _val_reshape,
    "Slice": _val_slice,
    "Add": _arith(lambda a, b: None if isinstance(a, bool) else add(a, b)),
    "Sub": _arith(lambda a, b: None if isinstance(a, bool) else sub(a, b)),
    "Mul": _arith(lambda a, b: None if isinstance(a, bool) else mul(a, b)),
    "Div": _arith(_div),
    "Equal": _arith(equal),
    "Where": _arith(_where),
    "ConstantOfShape": _val_constant_of_shape,
}
