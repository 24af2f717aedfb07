"""Part of ``serde``: import a model file without holding its initializers' bytes twice.

Parsing a whole file with protobuf holds the file's bytes and the parsed copy at once (twice the
weights), and converting to numpy makes a third copy. Instead the protobuf wire format is walked
(ModelProto.graph = 7, GraphProto.initializer = 5, TensorProto.raw_data = 9) with small reads;
the model is parsed with the large ``raw_data`` fields of the main graph's initializers left out,
and each of those is read on demand straight from the file into its numpy array. The file stays
open so a later read sees the bytes that were loaded even if the path is replaced (``save``
writes a new file and renames it); a file changed in place is detected and refused.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from pathlib import Path

import numpy as np
from onnx import TensorProto

from ..errors import ModelError

# raw_data fields smaller than this stay in the parsed proto
MIN_LAZY_BYTES = 1024

# element types whose raw_data bytes are the numpy array's bytes (little-endian hosts)
_PLAIN = {
    TensorProto.FLOAT: np.float32,
    TensorProto.DOUBLE: np.float64,
    TensorProto.FLOAT16: np.float16,
    TensorProto.INT8: np.int8,
    TensorProto.INT16: np.int16,
    TensorProto.INT32: np.int32,
    TensorProto.INT64: np.int64,
    TensorProto.UINT8: np.uint8,
    TensorProto.UINT16: np.uint16,
    TensorProto.UINT32: np.uint32,
    TensorProto.UINT64: np.uint64,
    TensorProto.BOOL: np.bool_,
}

_MODEL_GRAPH, _GRAPH_INITIALIZER = 7, 5
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_SEGMENT, _TENSOR_NAME, _TENSOR_RAW = 1, 2, 3, 8, 9


class _Unsupported(Exception):
    """The file is not laid out as this reader expects; serde parses it the ordinary way."""


class ModelFile:
    """An open model file from which initializer bytes are read on demand."""

    def __init__(self, path: Path):
        self.path = path
        self._fd = os.open(path, os.O_RDONLY)
        self._finalizer = weakref.finalize(self, os.close, self._fd)
        stat = os.fstat(self._fd)
        self.size = stat.st_size
        self._stamp = (stat.st_size, stat.st_mtime_ns)
        self._chunk_index = -1
        self._chunk = b""
        self._lock = threading.Lock()

    def close(self) -> None:
        self._finalizer()

    def __deepcopy__(self, memo) -> ModelFile:
        return self  # a copied model shares the open file

    # --- reading -------------------------------------------------------------------------------
    def read(self, start: int, end: int) -> bytes:
        data = os.pread(self._fd, end - start, start)
        if len(data) != end - start:
            raise _Unsupported("short read")
        return data

    def byte(self, pos: int) -> int:
        index = pos >> 16
        if index != self._chunk_index:
            self._chunk = os.pread(self._fd, 1 << 16, index << 16)
            self._chunk_index = index
        offset = pos - (index << 16)
        if offset >= len(self._chunk):
            raise _Unsupported("field runs past the end of the file")
        return self._chunk[offset]

    def read_into(self, array: np.ndarray, offset: int, name: str) -> None:
        with self._lock:
            stat = os.fstat(self._fd)
            if (stat.st_size, stat.st_mtime_ns) != self._stamp:
                raise ModelError(
                    f"{self.path} was changed after it was loaded; initializer '{name}' can no "
                    "longer be read from it (load the model again)"
                )
        view = memoryview(array.reshape(-1)).cast("B")
        done = 0
        while done < len(view):
            n = os.preadv(self._fd, [view[done:]], offset + done)
            if n <= 0:
                raise ModelError(f"{self.path}: initializer '{name}' runs past the end of the file")
            done += n

    # --- wire format ---------------------------------------------------------------------------
    def varint(self, pos: int) -> tuple[int, int]:
        result = shift = 0
        while True:
            b = self.byte(pos)
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result, pos
            shift += 7
            if shift > 63:
                raise _Unsupported("varint too long")

    def fields(self, start: int, end: int):
        """(field number, wire type, key start, value start, value end) of each field."""
        pos = start
        while pos < end:
            key_start = pos
            key, pos = self.varint(pos)
            number, wire = key >> 3, key & 7
            if wire == 0:
                _, value_end = self.varint(pos)
            elif wire == 1:
                value_end = pos + 8
            elif wire == 2:
                length, pos = self.varint(pos)
                value_end = pos + length
            elif wire == 5:
                value_end = pos + 4
            else:  # groups are not used by ONNX
                raise _Unsupported(f"wire type {wire}")
            if value_end > end:
                raise _Unsupported("field runs past its message")
            yield number, wire, key_start, pos, value_end
            pos = value_end


class LazyTensor:
    """Loader of one initializer whose raw_data stayed in the file."""

    def __init__(self, file: ModelFile, name: str, dtype: int, shape: tuple[int, ...], span):
        self.file, self.name, self.dtype, self.shape = file, name, dtype, shape
        self.offset, self.nbytes = span

    def __call__(self) -> np.ndarray:
        array = np.empty(self.shape, _PLAIN[self.dtype])
        if array.nbytes != self.nbytes:
            raise ModelError(
                f"{self.file.path}: initializer '{self.name}' holds {self.nbytes} bytes of data, "
                f"its shape {list(self.shape)} needs {array.nbytes}"
            )
        self.file.read_into(array, self.offset, self.name)
        # read-only: the runtime takes such arrays as immutable and borrows them
        array.flags.writeable = False
        return array


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _field(number: int, body: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(body)) + body


def read_stripped(path: Path) -> tuple[bytes, ModelFile, dict[str, tuple[int, int]]] | None:
    """(model bytes without the large raw_data of main-graph initializers, the open file,
    {initializer name: (file offset, byte count)}), or None when the file is better parsed
    whole (no large raw_data, a big-endian host or no positional reads, an unexpected layout)."""
    if sys.byteorder != "little" or not hasattr(os, "preadv"):
        return None
    file = ModelFile(path)
    try:
        result = _strip(file)
    except _Unsupported:
        result = None
    if result is None or not result[1]:
        file.close()
        return None
    return result[0], file, result[1]


def _strip(file: ModelFile) -> tuple[bytes, dict[str, tuple[int, int]]] | None:
    parts: list[bytes] = []
    spans: dict[str, tuple[int, int]] = {}
    graphs = 0
    for number, wire, key_start, start, end in file.fields(0, file.size):
        if number != _MODEL_GRAPH or wire != 2:
            parts.append(file.read(key_start, end))
            continue
        graphs += 1
        if graphs > 1:  # protobuf would merge repeated messages; leave that to it
            return None
        body: list[bytes] = []
        for g_number, g_wire, g_key, g_start, g_end in file.fields(start, end):
            tensor = None
            if g_number == _GRAPH_INITIALIZER and g_wire == 2:
                tensor = _strip_tensor(file, g_start, g_end)
            if tensor is None:
                body.append(file.read(g_key, g_end))
                continue
            name, span, stripped = tensor
            if name in spans:
                return None
            spans[name] = span
            body.append(_field(_GRAPH_INITIALIZER, stripped))
        parts.append(_field(_MODEL_GRAPH, b"".join(body)))
    return b"".join(parts), spans


def _strip_tensor(file: ModelFile, start: int, end: int):
    """(name, (offset, length) of raw_data, the tensor's bytes without it), or None to keep the
    tensor as it is."""
    kept: list[bytes] = []
    raw = None
    name = None
    dtype = 0
    for number, wire, key_start, v_start, v_end in file.fields(start, end):
        if number == _TENSOR_RAW and wire == 2:
            if raw is not None:
                return None
            raw = (v_start, v_end - v_start)
            continue
        if number == _TENSOR_SEGMENT:
            return None
        data = file.read(key_start, v_end)
        if number == _TENSOR_NAME and wire == 2:
            name = data[v_start - key_start :].decode("utf-8", errors="replace")
        elif number == _TENSOR_DATA_TYPE and wire == 0:
            dtype, _ = file.varint(v_start)
        kept.append(data)
    if raw is None or raw[1] < MIN_LAZY_BYTES or name is None or dtype not in _PLAIN:
        return None
    return name, raw, b"".join(kept)
