"""The channel-blocked NCHWc layout (block 8) and the ops that run in it.

A value in NCHWc layout has shape ``[N, Cb, H, W, 8]`` with ``Cb = ceil(C / 8)``: channel ``c``
of the NCHW tensor lives at ``[n, c // 8, h, w, c % 8]`` and the lanes of channels ``c >= C``
are 0. ``layout_nchwc`` writes these ops; each is defined here as an ONNX function over standard
ops at the model's opset (9 at least: ConstantOfShape), with N, H and W read by Shape inside the
body so they may be symbolic:

* ``ReorderToNchwc(X)``: NCHW -> NCHWc; the channels are zero-padded to a multiple of 8
  (ConstantOfShape + Concat), then Reshape ``[N, Cb, 8, H, W]`` and Transpose.
* ``ReorderFromNchwc(X) {channels}``: NCHWc -> NCHW with ``channels`` channels. An ONNX function
  can turn the ``channels`` attribute into a tensor only from opset 12 (``Constant value_int``);
  below it the body drops no padding, so there ``layout_nchwc`` only blocks channel counts that
  are multiples of 8.
* ``NchwcConv<Add?><Activation?>(X, W, B?, Z?)``: ``act(Conv(X, W, B) + Z)`` with X, Z and Y in
  NCHWc, W ``[M, C, KH, KW]`` in ONNX layout, ``M % 8 == 0``. The body convolves the unblocked
  X (all ``Cb * 8`` lanes) with W zero-padded to ``Cb * 8`` input channels, so it needs no C.
  ``NchwcConvNchw<Add?><Activation?>`` takes a plain NCHW X (a first layer with few channels).
  Attributes as ``FusedConv``'s, plus ``winograd`` (int, native kernel only): for a 3x3,
  stride-1, undilated conv with constant W, -1 (default) lets the kernel choose Winograd
  F(4x4,3x3), F(2x2,3x3) or the direct conv by the weights' size, and at run time the direct
  conv instead where its cost model finds it cheaper for the output size (small maps); 0 forces
  the direct conv, 2 or 4 force that Winograd tile. Winograd float32 error is larger (~3e-7 /
  ~6e-6 absolute per O(1) output for m = 2 / 4), and a NaN or infinity in an input patch
  reaches every output of its m x m tile.
* ``NchwcMaxPool``, ``NchwcAveragePool`` (ONNX attributes, MaxPool without storage_order) and
  ``NchwcGlobalAveragePool``: 5-D in, 5-D out; padded lanes stay 0.
* ``NchwcScaleShift<Activation?>(X, scale, shift)``: ``act(X * scale[c] + shift[c])`` with X and
  Y in NCHWc, scale and shift ``[C]`` (an inference BatchNormalization). The body pads them with
  zeros to ``[Cb, 1, 1, 8]`` and works on the 5-D layout, so padded lanes hold ``act(0)``:
  ``layout_nchwc`` only fuses activations with ``act(0) = 0`` when ``C % 8 != 0``. The native
  kernel writes 0 there whatever the activation.

Native kernels (``runtime.cpu``): ``infopt.ReorderToNchwc``, ``infopt.ReorderFromNchwc``,
``infopt.NchwcConv`` (both conv forms), ``infopt.NchwcMaxPool``, ``infopt.NchwcAveragePool``,
``infopt.NchwcGlobalAveragePool``, ``infopt.NchwcScaleShift``.
"""

from __future__ import annotations

import numpy as np

from ..ir import Function, Model, Tensor, Value
from ._body import ACTIVATIONS, Body, act_attr_names, apply_activation
from .fused_conv import CONV_ATTRS, _attr_kind, op_name, parse_op_name

BLOCK = 8
CONV_STEMS = ("NchwcConvNchw", "NchwcConv")  # longest first: parse_conv_name tries in order
MIN_OPSET = 9  # ConstantOfShape
SLICE_OPSET = 12  # Constant value_int: ReorderFromNchwc can drop padded channels


def conv_name(plain_input: bool, residual: bool, activation: str | None) -> str:
    return op_name(residual, activation, CONV_STEMS[0] if plain_input else CONV_STEMS[1])


SCALE_SHIFT = "NchwcScaleShift"


def scale_shift_name(activation: str | None) -> str:
    return SCALE_SHIFT + (activation or "")


def parse_scale_shift_name(op_type: str) -> tuple[str | None] | None:
    """Inverse of ``scale_shift_name``: (activation,), or None for another op."""
    if not op_type.startswith(SCALE_SHIFT):
        return None
    rest = op_type[len(SCALE_SHIFT) :]
    return (rest or None,) if not rest or rest in ACTIVATIONS else None


def parse_conv_name(op_type: str) -> tuple[bool, bool, str | None] | None:
    """Inverse of ``conv_name``: (plain_input, residual, activation), or None."""
    for stem in CONV_STEMS:
        if op_type.startswith(stem):
            parsed = parse_op_name(op_type, stem)
            return None if parsed is None else (stem == CONV_STEMS[0], *parsed)
    return None


def pool_attrs(op: str, opset: int) -> list[str]:
    """The attributes of ONNX ``op`` (MaxPool/AveragePool, storage_order left out) at
    ``opset``: a function may only reference attributes its body's ops have."""
    names = ["auto_pad", "kernel_shape", "pads", "strides"]
    if opset >= 10:
        names.append("ceil_mode")
    if op == "MaxPool" and opset >= 10 or op == "AveragePool" and opset >= 19:
        names.append("dilations")
    if op == "AveragePool":
        names.append("count_include_pad")
    return sorted(names)


def _ints(body: Body, values: list[int]) -> Value:
    return body.op("Constant", value=Tensor(np.array(values, dtype=np.int64)))


def _dims(body: Body, shape: Value, axes: list[int]) -> Value:
    return body.op("Gather", shape, _ints(body, axes), axis=0)


def _round_up(body: Body, c: Value) -> Value:
    """``ceil(c / 8) * 8 - c`` for an int64 tensor ``c``: the zero channels to append."""
    eight = _ints(body, [BLOCK])
    blocks = body.op("Div", body.op("Add", c, _ints(body, [BLOCK - 1])), eight)
    return body.op("Sub", body.op("Mul", blocks, eight), c)


def _pad_axis1(body: Body, x: Value) -> Value:
    """``x`` (rank 4) with zeros appended along axis 1 up to a multiple of 8 entries."""
    shape = body.op("Shape", x)
    extra = _round_up(body, _dims(body, shape, [1]))
    zeros_shape = body.op(
        "Concat", _dims(body, shape, [0]), extra, _dims(body, shape, [2, 3]), axis=0
    )
    zeros = body.op("ConstantOfShape", zeros_shape, value=Tensor(np.zeros(1, np.float32)))
    return body.op("Concat", x, zeros, axis=1)


def _to_blocked(body: Body, x: Value) -> Value:
    """NCHW with a multiple of 8 channels -> NCHWc."""
    shape = body.op("Shape", x)
    target = body.op(
        "Concat",
        _dims(body, shape, [0]),
        _ints(body, [-1, BLOCK]),
        _dims(body, shape, [2, 3]),
        axis=0,
    )
    return body.op("Transpose", body.op("Reshape", x, target), perm=[0, 1, 3, 4, 2])


def _from_blocked(body: Body, x: Value) -> Value:
    """NCHWc -> NCHW with all ``Cb * 8`` channels (the padded ones included)."""
    shape = body.op("Shape", x)
    target = body.op(
        "Concat", _dims(body, shape, [0]), _ints(body, [-1]), _dims(body, shape, [2, 3]), axis=0
    )
    return body.op("Reshape", body.op("Transpose", x, perm=[0, 1, 4, 2, 3]), target)


def _reorder_to(model: Model) -> Function:
    body = Body("ReorderToNchwc")
    y = _to_blocked(body, _pad_axis1(body, body.input("X")))
    doc = "Y[n, c // 8, h, w, c % 8] = X[n, c, h, w]; lanes past C are 0"
    return body.function(model, y, [], doc, min_opset=MIN_OPSET)


def _reorder_from(model: Model) -> Function:
    body = Body("ReorderFromNchwc")
    y = _from_blocked(body, body.input("X"))
    if model.opset("") >= SLICE_OPSET:
        channels = body.op("Constant", refs={"value_int": ("INT", "channels")})
        ends = body.op("Reshape", channels, _ints(body, [1]))
        y = body.op("Slice", y, _ints(body, [0]), ends, _ints(body, [1]))
    doc = "Y[n, c, h, w] = X[n, c // 8, h, w, c % 8] for c < channels"
    return body.function(model, y, ["channels"], doc, min_opset=MIN_OPSET)


def _conv(plain_input: bool, residual: bool, activation: str | None):
    name = conv_name(plain_input, residual, activation)

    def build(model: Model) -> Function:
        body = Body(name)
        x, w, b = body.input("X"), body.input("W"), body.input("B")
        if not plain_input:
            # the zero lanes of X meet zero input channels of W: no need to know C
            x, w = _from_blocked(body, x), _pad_axis1(body, w)
        refs = {a: (_attr_kind(a), a) for a in CONV_ATTRS}
        y = body.op("Conv", x, w, b, refs=refs)
        if residual:
            y = body.op("Add", y, _from_blocked(body, body.input("Z")))
        y = _to_blocked(body, apply_activation(body, y, activation, model.opset("")))
        doc = f"Y = {activation or ''}(Conv(X, W, B){' + Z' if residual else ''}), Y NCHWc"
        # `winograd` only steers the native kernel (see the module docstring); the body ignores it
        attributes = CONV_ATTRS + act_attr_names(activation) + ["winograd"]
        return body.function(model, y, attributes, doc, min_opset=MIN_OPSET)

    return name, build


def _pool(op: str):
    def build(model: Model) -> Function:
        body = Body(f"Nchwc{op}")
        attrs = pool_attrs(op, model.opset(""))
        ints = ("ceil_mode", "count_include_pad")
        kinds = {a: "STRING" if a == "auto_pad" else "INT" if a in ints else "INTS" for a in attrs}
        refs = {a: (kinds[a], a) for a in attrs}
        x = _from_blocked(body, body.input("X"))
        y = _to_blocked(body, body.op(op, x, refs=refs))
        return body.function(model, y, attrs, f"Y = {op}(X), X and Y NCHWc", min_opset=MIN_OPSET)

    return build


def _global_average_pool(model: Model) -> Function:
    body = Body("NchwcGlobalAveragePool")
    x = body.input("X")
    if model.opset("") >= 18:
        y = body.op("ReduceMean", x, _ints(body, [2, 3]), keepdims=1)
    else:
        y = body.op("ReduceMean", x, axes=[2, 3], keepdims=1)
    doc = "Y = GlobalAveragePool(X), X and Y NCHWc ([N, Cb, 1, 1, 8])"
    return body.function(model, y, [], doc, min_opset=MIN_OPSET)


def _scale_shift(activation: str | None):
    name = scale_shift_name(activation)

    def build(model: Model) -> Function:
        body = Body(name)
        x = body.input("X")
        scale, shift = (
            body.op("Reshape", _pad_vector(body, body.input(v)), _ints(body, [-1, 1, 1, BLOCK]))
            for v in ("scale", "shift")
        )
        y = body.op("Add", body.op("Mul", x, scale), shift)
        y = apply_activation(body, y, activation, model.opset(""))
        doc = f"Y = {activation or ''}(X * scale[c] + shift[c]), X and Y NCHWc, scale/shift [C]"
        return body.function(model, y, act_attr_names(activation), doc, min_opset=MIN_OPSET)

    return name, build


def _pad_vector(body: Body, v: Value) -> Value:
    """A 1-D ``v`` with zeros appended up to a multiple of 8 entries."""
    extra = _round_up(body, body.op("Shape", v))
    zeros = body.op("ConstantOfShape", extra, value=Tensor(np.zeros(1, np.float32)))
    return body.op("Concat", v, zeros, axis=0)


FUNCTIONS = {
    "ReorderToNchwc": _reorder_to,
    "ReorderFromNchwc": _reorder_from,
    **dict(
        _conv(plain, residual, act)
        for plain in (False, True)
        for residual in (False, True)
        for act in [None, *ACTIVATIONS]
    ),
    "NchwcMaxPool": _pool("MaxPool"),
    "NchwcAveragePool": _pool("AveragePool"),
    "NchwcGlobalAveragePool": _global_average_pool,
    **dict(_scale_shift(act) for act in [None, *ACTIVATIONS]),
}
