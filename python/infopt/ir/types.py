"""Element types and shapes of IR values.

Dtypes are the ONNX TensorProto enum (an ``int``); this module gives them short names for the
printer and maps them to numpy. Shapes are tuples whose dims are ``int`` (static), ``str``
(symbolic, e.g. ``"batch"``) or ``None`` (unknown).
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

Dim = int | str | None
Shape = tuple[Dim, ...]

_SHORT_NAMES = {
    TensorProto.FLOAT: "f32",
    TensorProto.DOUBLE: "f64",
    TensorProto.FLOAT16: "f16",
    TensorProto.BFLOAT16: "bf16",
    TensorProto.INT8: "i8",
    TensorProto.INT16: "i16",
    TensorProto.INT32: "i32",
    TensorProto.INT64: "i64",
    TensorProto.UINT8: "u8",
    TensorProto.UINT16: "u16",
    TensorProto.UINT32: "u32",
    TensorProto.UINT64: "u64",
    TensorProto.BOOL: "bool",
    TensorProto.STRING: "str",
    TensorProto.COMPLEX64: "c64",
    TensorProto.COMPLEX128: "c128",
}


def dtype_name(dtype: int | None) -> str:
    """Short printable name of an ONNX element type (``f32``), ``?`` when unknown."""
    if dtype is None:
        return "?"
    return _SHORT_NAMES.get(dtype, TensorProto.DataType.Name(dtype).lower())


def to_numpy_dtype(dtype: int) -> np.dtype:
    return np.dtype(helper.tensor_dtype_to_np_dtype(dtype))


def from_numpy_dtype(dtype: np.dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def is_unknown_dim(dim: Dim) -> bool:
    """No information: None, or a fresh ``unk__N`` symbol from ONNX's shape inference."""
    return dim is None or (isinstance(dim, str) and dim.startswith("unk__"))


def is_static(shape: Shape | None) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape)


def shape_str(shape: Shape | None) -> str:
    if shape is None:
        return ""
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"
