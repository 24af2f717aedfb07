"""ONNX <-> IR conversion: the only module that reads or writes ONNX protobufs.

``load`` accepts a path, bytes or a ModelProto and returns an ``ir.Model``; ``save`` writes one
atomically (temporary file, then rename) so a failure never leaves a partial or clobbered file.
Whatever the IR has no field for (sparse initializers, training info, non-tensor types) rides
along as an opaque payload, so an import followed by an export loses nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import AttributeProto, FunctionProto, GraphProto, ModelProto, TensorProto, numpy_helper

from ..errors import InputError, ModelError, UnsupportedOpError
from .graph import Attr, Function, Graph, Model, Node, Tensor, Value
from .serde_lazy import LazyTensor, ModelFile, read_stripped
from .types import from_numpy_dtype, is_unknown_dim, to_numpy_dtype

# Models whose tensors exceed this are saved with external data (protobuf's hard limit is 2 GiB).
EXTERNAL_DATA_THRESHOLD = 1_800_000_000

ModelSource = str | os.PathLike | bytes | ModelProto
_LazySpans = tuple[ModelFile, dict[str, tuple[int, int]]]


# ================================================================================== import =====
def load(source: ModelSource, *, check: bool = True) -> Model:
    """Import an ONNX model. Raises InputError (missing file), ModelError (not ONNX, corrupt,
    cyclic, unsafe external data) or UnsupportedOpError (unknown op or opset)."""
    lazy = None
    if not isinstance(source, ModelProto | bytes | bytearray):
        path = _model_path(source)
        try:
            lazy = read_stripped(path)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if lazy is None:
        proto = load_proto(source)
    else:
        # initializers' bytes stay in the file until first used (see serde_lazy)
        proto = _parse(lazy[0], str(path))
        _load_external_data(proto, path.resolve().parent, str(path))
    if check:
        _check_proto(proto)
    return model_from_proto(proto, lazy=lazy[1:] if lazy else None)


def load_proto(source: ModelSource) -> ModelProto:
    if isinstance(source, ModelProto):
        return source
    if isinstance(source, bytes | bytearray):
        return _parse(bytes(source), "<bytes>")
    path = _model_path(source)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    proto = _parse(data, str(path))
    _load_external_data(proto, path.resolve().parent, str(path))
    return proto


def _model_path(source: str | os.PathLike) -> Path:
    path = Path(source)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(f"expected an ONNX file, got a directory: {path}")
    return path


def _parse(data: bytes, origin: str) -> ModelProto:
    if not data:
        raise ModelError(f"{origin} is empty, not an ONNX model")
    proto = ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelError(
            f"{origin} is not a valid ONNX model (protobuf parse failed: {exc})"
        ) from None
    # protobuf parses many byte strings "successfully"; a real model has these
    if proto.ir_version <= 0 or not proto.HasField("graph") or not proto.opset_import:
        raise ModelError(
            f"{origin} is not a valid ONNX model (no ir_version, graph or opset_import)"
        )
    return proto


def _external_tensors(proto: ModelProto) -> Iterable[TensorProto]:
    from onnx.external_data_helper import _get_all_tensors

    for tensor in _get_all_tensors(proto):
        if tensor.data_location == TensorProto.EXTERNAL:
            yield tensor


def _load_external_data(proto: ModelProto, base: Path, origin: str) -> None:
    from onnx.external_data_helper import load_external_data_for_tensor

    for tensor in _external_tensors(proto):
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        target = (base / location).resolve()
        if not location or os.path.isabs(location) or not target.is_relative_to(base):
            raise ModelError(
                f"{origin}: external data '{location}' of tensor '{tensor.name}' resolves "
                "outside the model's folder; refusing to read it"
            )
        if not target.is_file():
            raise ModelError(f"{origin}: external data file '{location}' is missing")
        try:
            load_external_data_for_tensor(tensor, str(base))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{origin}: cannot read external data '{location}': {exc}") from None
        del tensor.external_data[:]
        tensor.data_location = TensorProto.DEFAULT


def _check_proto(proto: ModelProto) -> None:
    known = onnx.defs.onnx_opset_version()
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx") and imp.version > known:
            raise UnsupportedOpError(
                f"model needs opset {imp.version} of the default domain; this onnx knows up to "
                f"{known}"
            )
    opset = {imp.domain or "": imp.version for imp in proto.opset_import}
    version = opset.get("", opset.get("ai.onnx"))
    local_fns = {(f.domain, f.name) for f in proto.functions}
    for node in _all_nodes(proto.graph):
        if node.domain in ("", "ai.onnx") and (node.domain, node.op_type) not in local_fns:
            if version is None:
                raise ModelError(
                    f"node '{node.name}' uses the default domain, which is not imported"
                )
            try:
                onnx.defs.get_schema(node.op_type, version, "")
            except onnx.defs.SchemaError:
                raise UnsupportedOpError(
                    f"unknown op '{node.op_type}' (node '{node.name}') in opset {version}"
                ) from None
        elif node.domain not in opset:
            raise ModelError(
                f"node '{node.name}' ({node.op_type}) uses domain '{node.domain}', "
                "which the model does not import"
            )


def _all_nodes(graph: GraphProto) -> Iterable[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for a in node.attribute:
            if a.type == AttributeProto.GRAPH:
                yield from _all_nodes(a.g)
            elif a.type == AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from _all_nodes(g)


def model_from_proto(proto: ModelProto, lazy: _LazySpans | None = None) -> Model:
    """``lazy``: (open file, {initializer: span}) for a proto whose main-graph initializers'
    raw_data was left in the file."""
    graph = graph_from_proto(proto.graph, None, lazy=lazy)
    model = Model(
        graph=graph,
        opset_imports={imp.domain: imp.version for imp in proto.opset_import},
        ir_version=proto.ir_version,
        producer_name=proto.producer_name,
        producer_version=proto.producer_version,
        domain=proto.domain,
        model_version=proto.model_version,
        doc_string=proto.doc_string,
        metadata_props={p.key: p.value for p in proto.metadata_props},
        functions=[function_from_proto(f) for f in proto.functions],
    )
    for field in ("training_info", "configuration"):
        items = list(getattr(proto, field, []))
        if items:
            model.extra_payload[field] = [type(x).FromString(x.SerializeToString()) for x in items]
    from .verify import verify

    verify(model.graph)
    return model


def _type_fields(value: Value, type_proto: onnx.TypeProto) -> None:
    if type_proto.HasField("tensor_type"):
        tt = type_proto.tensor_type
        value.dtype = tt.elem_type or None
        if tt.HasField("shape"):
            value.shape = tuple(
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                for d in tt.shape.dim
            )
    elif type_proto.WhichOneof("value") is not None:
        value.type_payload = onnx.TypeProto.FromString(type_proto.SerializeToString())


def _value_from_info(info: onnx.ValueInfoProto) -> Value:
    value = Value(info.name)
    _type_fields(value, info.type)
    value.doc_string = info.doc_string
    value.metadata = {p.key: p.value for p in getattr(info, "metadata_props", [])}
    return value


def tensor_from_proto(t: TensorProto, lazy: _LazySpans | None = None) -> Tensor:
    if lazy is not None and t.name in lazy[1]:
        dims = tuple(t.dims)
        loader = LazyTensor(lazy[0], t.name, t.data_type, dims, lazy[1][t.name])
        return Tensor(dtype=t.data_type, shape=dims, loader=loader, payload=t)
    return Tensor(
        dtype=t.data_type,
        shape=tuple(t.dims),
        loader=lambda t=t: numpy_helper.to_array(t),
        payload=t,
    )


class _Scope:
    def __init__(self, parent: _Scope | None):
        self.parent = parent
        self.values: dict[str, Value] = {}

    def lookup(self, name: str) -> Value | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.values:
                return scope.values[name]
            scope = scope.parent
        return None


def graph_from_proto(
    proto: GraphProto,
    parent: Graph | None,
    scope_parent: _Scope | None = None,
    lazy: _LazySpans | None = None,
) -> Graph:
    graph = Graph(proto.name, parent)
    graph.doc_string = proto.doc_string
    graph.metadata = {p.key: p.value for p in getattr(proto, "metadata_props", [])}
    scope = _Scope(scope_parent)
    for info in proto.input:
        value = _value_from_info(info)
        graph.add_input(value)
        scope.values[value.name] = value
    for t in proto.initializer:
        value = scope.values.get(t.name)
        if value is None or value.const is not None:
            value = Value(t.name, t.data_type, tuple(t.dims))
            scope.values[t.name] = value
        value.const = tensor_from_proto(t, lazy)
        graph.initializers[t.name] = value
    for field in ("sparse_initializer", "quantization_annotation"):
        items = list(getattr(proto, field))
        if items:
            graph.extra_payload[field] = [type(x).FromString(x.SerializeToString()) for x in items]
    _nodes_from_proto(graph, proto.node, scope)
    for info in proto.value_info:
        value = scope.values.get(info.name)
        if value is not None and value.producer is not None:
            _type_fields(value, info.type)
            value.doc_string = info.doc_string
    for info in proto.output:
        value = scope.lookup(info.name)
        if value is None:
            raise ModelError(f"graph output '{info.name}' is not produced by any node or input")
        if value.dtype is None and value.type_payload is None:
            _type_fields(value, info.type)
        elif info.type.HasField("tensor_type") and value.producer is not None:
            _type_fields(value, info.type)
        graph.outputs.append(value)
    return graph


def _nodes_from_proto(graph: Graph, nodes: Iterable[onnx.NodeProto], scope: _Scope) -> None:
    nodes = list(nodes)
    # create every output first so a use before definition (a cycle) is linked, then reported
    built = []
    for np_ in nodes:
        outs = []
        for name in np_.output:
            value = Value(name)
            if name:
                if name in scope.values:
                    raise ModelError(f"value '{name}' is defined twice (node '{np_.name}')")
                scope.values[name] = value
            outs.append(value)
        built.append(outs)
    for np_, outs in zip(nodes, built, strict=True):
        inputs = []
        for name in np_.input:
            if not name:
                inputs.append(None)
                continue
            value = scope.lookup(name)
            if value is None:
                raise ModelError(
                    f"node '{np_.name}' ({np_.op_type}) reads '{name}', which is defined nowhere"
                )
            inputs.append(value)
        node = Node(
            np_.op_type,
            inputs,
            outs,
            domain=np_.domain,
            name=np_.name,
            attrs=[_attr_from_proto(a, graph, scope) for a in np_.attribute],
            overload=getattr(np_, "overload", ""),
        )
        node.doc_string = np_.doc_string
        node.metadata = {p.key: p.value for p in getattr(np_, "metadata_props", [])}
        graph.append(node)
    graph.sort()


def _attr_from_proto(a: AttributeProto, graph: Graph, scope: _Scope) -> Attr:
    kind = AttributeProto.AttributeType.Name(a.type)
    attr = Attr(a.name, kind, doc_string=a.doc_string)
    if a.ref_attr_name:
        attr.ref = a.ref_attr_name
        return attr
    t = a.type
    if t == AttributeProto.FLOAT:
        attr.value = a.f
    elif t == AttributeProto.INT:
        attr.value = a.i
    elif t == AttributeProto.STRING:
        attr.value = _decode(a.s)
    elif t == AttributeProto.TENSOR:
        attr.value = tensor_from_proto(a.t)
    elif t == AttributeProto.GRAPH:
        attr.value = graph_from_proto(a.g, graph, scope)
    elif t == AttributeProto.FLOATS:
        attr.value = list(a.floats)
    elif t == AttributeProto.INTS:
        attr.value = list(a.ints)
    elif t == AttributeProto.STRINGS:
        attr.value = [_decode(s) for s in a.strings]
    elif t == AttributeProto.TENSORS:
        attr.value = [tensor_from_proto(x) for x in a.tensors]
    elif t == AttributeProto.GRAPHS:
        attr.value = [graph_from_proto(g, graph, scope) for g in a.graphs]
    else:  # sparse tensors and type protos are carried opaquely
        attr.value = AttributeProto.FromString(a.SerializeToString())
        attr.type = "OPAQUE"
    return attr


def _decode(s: bytes) -> str | bytes:
    try:
        return s.decode("utf-8")
    except UnicodeDecodeError:
        return s


def function_from_proto(proto: FunctionProto) -> Function:
    body = Graph(proto.name)
    scope = _Scope(None)
    for name in proto.input:
        value = Value(name)
        body.add_input(value)
        scope.values[name] = value
    _nodes_from_proto(body, proto.node, scope)
    for name in proto.output:
        value = scope.lookup(name)
        if value is None:
            raise ModelError(f"function {proto.domain}.{proto.name} output '{name}' is undefined")
        body.outputs.append(value)
    return Function(
        domain=proto.domain,
        name=proto.name,
        inputs=list(proto.input),
        outputs=list(proto.output),
        body=body,
        attributes=list(proto.attribute),
        attribute_defaults={
            a.name: _attr_from_proto(a, body, scope) for a in proto.attribute_proto
        },
        opset_imports={imp.domain: imp.version for imp in proto.opset_import},
        overload=getattr(proto, "overload", ""),
        doc_string=proto.doc_string,
    )


# ================================================================================== export =====
def model_to_proto(model: Model, declare_tensors_above: int | None = None) -> ModelProto:
    """``declare_tensors_above``: initializers with more elements are left out and declared as
    graph inputs of their type instead (for analyses that need types, not data)."""
    proto = ModelProto(
        ir_version=model.ir_version,
        producer_name=model.producer_name,
        producer_version=model.producer_version,
        domain=model.domain,
        model_version=model.model_version,
        doc_string=model.doc_string,
    )
    for domain, version in model.opset_imports.items():
        proto.opset_import.add(domain=domain, version=version)
    for key, value in model.metadata_props.items():
        proto.metadata_props.add(key=key, value=value)
    # built in place: a CopyFrom of a finished graph would copy every weight once more
    graph_to_proto(model.graph, declare_tensors_above, out=proto.graph)
    for fn in model.functions:
        proto.functions.append(function_to_proto(fn))
    for field, items in model.extra_payload.items():
        getattr(proto, field).extend(items)
    return proto


def tensor_to_proto(tensor: Tensor, name: str, out: TensorProto | None = None) -> TensorProto:
    """The tensor as a TensorProto, written into ``out`` when given (no extra copy)."""
    t = TensorProto() if out is None else out
    if tensor.payload is not None:
        t.CopyFrom(tensor.payload)
        t.name = name
        if isinstance(tensor.loader, LazyTensor):  # its raw_data was left in the model file
            t.raw_data = tensor.numpy().tobytes()
        return t
    array = tensor.numpy()
    if array.dtype.kind in "biuf" and array.dtype.byteorder in "=|<":
        t.name = name
        t.data_type = from_numpy_dtype(array.dtype)
        t.dims.extend(array.shape)
        t.raw_data = np.ascontiguousarray(array).tobytes()
        return t
    t.CopyFrom(numpy_helper.from_array(array, name))
    return t


def _type_proto(value: Value) -> onnx.TypeProto:
    if value.type_payload is not None:
        return value.type_payload
    tp = onnx.TypeProto()
    tt = tp.tensor_type
    tt.elem_type = value.dtype or 0
    if value.shape is not None:
        shape = tt.shape
        shape.SetInParent()
        for d in value.shape:
            dim = shape.dim.add()
            if isinstance(d, int):
                dim.dim_value = d
            elif isinstance(d, str):
                dim.dim_param = d
    return tp


def _value_info(value: Value) -> onnx.ValueInfoProto:
    info = onnx.ValueInfoProto(name=value.name, doc_string=value.doc_string)
    if value.dtype is not None or value.type_payload is not None:
        info.type.CopyFrom(_type_proto(value))
    for key, v in value.metadata.items():
        info.metadata_props.add(key=key, value=v)
    return info


def graph_to_proto(
    graph: Graph, declare_tensors_above: int | None = None, out: GraphProto | None = None
) -> GraphProto:
    proto = GraphProto() if out is None else out
    proto.name, proto.doc_string = graph.name, graph.doc_string
    for key, v in graph.metadata.items():
        proto.metadata_props.add(key=key, value=v)
    proto.input.extend(_value_info(v) for v in graph.inputs)
    declared = {v.name for v in graph.inputs}
    for name, value in graph.initializers.items():
        const = value.const
        if declare_tensors_above is not None and const.size > declare_tensors_above:
            if name not in declared:
                proto.input.append(
                    onnx.helper.make_tensor_value_info(name, const.dtype, list(const.shape))
                )
            continue
        tensor_to_proto(const, name, out=proto.initializer.add())  # type: ignore[arg-type]
    for field, items in graph.extra_payload.items():
        getattr(proto, field).extend(items)
    proto.node.extend(_node_to_proto(n) for n in graph.nodes)
    proto.output.extend(_value_info(v) for v in graph.outputs)
    boundary = {id(v) for v in graph.outputs}
    for node in graph.nodes:
        for v in node.outputs:
            if v.name and id(v) not in boundary and (v.dtype is not None or v.type_payload):
                proto.value_info.append(_value_info(v))
    return proto


def _node_to_proto(node: Node) -> onnx.NodeProto:
    proto = onnx.NodeProto(
        op_type=node.op_type, domain=node.domain, name=node.name, doc_string=node.doc_string
    )
    if node.overload:
        proto.overload = node.overload
    proto.input.extend("" if v is None else v.name for v in node.inputs)
    proto.output.extend(v.name for v in node.outputs)
    proto.attribute.extend(attr_to_proto(a) for a in node.attrs.values())
    for key, v in node.metadata.items():
        proto.metadata_props.add(key=key, value=v)
    return proto


_ATTR_TYPES = {
    name: AttributeProto.AttributeType.Value(name) for name in AttributeProto.AttributeType.keys()
}


def attr_to_proto(attr: Attr) -> AttributeProto:
    if attr.type == "OPAQUE":
        return attr.value
    proto = AttributeProto(name=attr.name, type=_ATTR_TYPES[attr.type], doc_string=attr.doc_string)
    if attr.ref is not None:
        proto.ref_attr_name = attr.ref
        return proto
    v: Any = attr.value
    kind = attr.type
    if kind == "FLOAT":
        proto.f = v
    elif kind == "INT":
        proto.i = int(v)
    elif kind == "STRING":
        proto.s = v if isinstance(v, bytes) else v.encode("utf-8")
    elif kind == "TENSOR":
        proto.t.CopyFrom(tensor_to_proto(v, v.payload.name if v.payload is not None else ""))
    elif kind == "GRAPH":
        proto.g.CopyFrom(graph_to_proto(v))
    elif kind == "FLOATS":
        proto.floats.extend(v)
    elif kind == "INTS":
        proto.ints.extend(int(x) for x in v)
    elif kind == "STRINGS":
        proto.strings.extend(x if isinstance(x, bytes) else x.encode("utf-8") for x in v)
    elif kind == "TENSORS":
        proto.tensors.extend(tensor_to_proto(x, "") for x in v)
    elif kind == "GRAPHS":
        proto.graphs.extend(graph_to_proto(g) for g in v)
    else:
        raise ModelError(f"attribute '{attr.name}' has unsupported type {kind}")
    return proto


def function_to_proto(fn: Function) -> FunctionProto:
    proto = FunctionProto(domain=fn.domain, name=fn.name, doc_string=fn.doc_string)
    if fn.overload:
        proto.overload = fn.overload
    proto.input.extend(fn.inputs)
    proto.output.extend(fn.outputs)
    proto.attribute.extend(fn.attributes)
    proto.attribute_proto.extend(attr_to_proto(a) for a in fn.attribute_defaults.values())
    for domain, version in fn.opset_imports.items():
        proto.opset_import.add(domain=domain, version=version)
    proto.node.extend(_node_to_proto(n) for n in fn.body.nodes)
    return proto


def save(
    model: Model | ModelProto,
    path: str | os.PathLike,
    *,
    external_data: bool | None = None,
) -> None:
    """Write atomically. Tensors go to ``<name>.data`` beside the file when the model would
    exceed protobuf's 2 GiB limit (or when ``external_data`` is True)."""
    proto = model if isinstance(model, ModelProto) else model_to_proto(model)
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise InputError(f"cannot write {path}: folder {folder} is not writable")
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a directory")
    if external_data is None:
        size = _model_tensor_bytes(model) if isinstance(model, Model) else _tensor_bytes(proto)
        external_data = size > EXTERNAL_DATA_THRESHOLD
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    data_name = path.name + ".data"
    tmp_data = folder / f".{data_name}.tmp"
    try:
        if external_data:
            from onnx.external_data_helper import convert_model_to_external_data

            proto = ModelProto.FromString(proto.SerializeToString()) if proto is model else proto
            convert_model_to_external_data(
                proto, all_tensors_to_one_file=True, location=tmp_data.name, size_threshold=1024
            )
            onnx.save_model(proto, tmp)
            # the proto names the temporary data file; point it at the final name and rewrite
            for tensor in _external_tensors(proto):
                for entry in tensor.external_data:
                    if entry.key == "location":
                        entry.value = data_name
            with open(tmp, "wb") as f:
                f.write(proto.SerializeToString())
            os.replace(tmp_data, folder / data_name)
        else:
            with open(tmp, "wb") as f:
                f.write(proto.SerializeToString())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        for leftover in (Path(tmp), tmp_data):
            leftover.unlink(missing_ok=True)
        raise


def _file_mode(path: Path) -> int:
    """An overwritten file keeps its mode; a new one gets the usual 0666 less the umask
    (mkstemp's temporary file is 0600)."""
    if path.exists():
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _model_tensor_bytes(model: Model) -> int:
    """Bytes of the model's constants, from their shapes (nothing is loaded or copied)."""
    total = 0
    for graph in _all_graphs(model):
        for value in graph.initializers.values():
            total += value.const.size * _itemsize(value.const.dtype)
    return total


def _all_graphs(model: Model) -> Iterable[Graph]:
    stack = [model.graph]
    while stack:
        graph = stack.pop()
        yield graph
        for node in graph.nodes:
            stack.extend(node.subgraphs())


def _itemsize(dtype: int) -> int:
    try:
        return to_numpy_dtype(dtype).itemsize
    except Exception:  # strings and exotic types: counted as a byte each
        return 1


def _tensor_bytes(proto: ModelProto) -> int:
    from onnx.external_data_helper import _get_all_tensors

    return sum(
        len(t.raw_data) + 4 * len(t.float_data) + 8 * len(t.int64_data)
        for t in _get_all_tensors(proto)
    )


def to_bytes(model: Model) -> bytes:
    return model_to_proto(model).SerializeToString()


def node_model_proto(
    node: Node, model: Model, input_values: list[Value | None], outer: list[Value] = ()
) -> ModelProto:
    """A one-node model computing ``node`` (for evaluators); ``outer`` lists enclosing-scope values
    its subgraphs read, which become extra graph inputs."""
    graph = GraphProto(name=f"single_{node.op_type}")
    seen: set[str] = set()
    for v in [*input_values, *outer]:
        if v is None or v.name in seen:
            continue
        seen.add(v.name)
        info = onnx.ValueInfoProto(name=v.name)
        if v.type_payload is not None:
            info.type.CopyFrom(v.type_payload)
        graph.input.append(info)
    graph.node.append(_node_to_proto(node))
    for out in node.outputs:
        if out.name:
            graph.output.append(onnx.ValueInfoProto(name=out.name))
    proto = ModelProto(ir_version=max(model.ir_version, 8), graph=graph)
    for domain, version in model.opset_imports.items():
        proto.opset_import.add(domain=domain, version=version)
    for fn in model.functions:
        proto.functions.append(function_to_proto(fn))
    return proto


def infer_types(model: Model) -> int:
    """Run ONNX shape inference and record dtypes and shapes on the IR's values (main graph).
    Returns how many values gained or changed type information."""
    # large initializers only need their type for inference: declare them as inputs instead of
    # serializing their data (this keeps inference fast on 100 MB models)
    proto = model_to_proto(model, declare_tensors_above=4096)
    try:
        inferred = onnx.shape_inference.infer_shapes(
            proto, check_type=False, strict_mode=False, data_prop=True
        )
    except Exception:  # inference is advisory; a model it cannot handle keeps what it had
        return 0
    infos = {i.name: i for i in [*inferred.graph.value_info, *inferred.graph.output]}
    changed = 0
    for node in model.graph.nodes:
        for v in node.outputs:
            info = infos.get(v.name)
            if info is None or not info.type.HasField("tensor_type"):
                continue
            before = (v.dtype, v.shape)
            probe = Value(v.name)
            _type_fields(probe, info.type)
            v.dtype = probe.dtype or v.dtype
            if probe.shape is not None:
                v.shape = _merge_dims(v.shape, probe.shape)
            changed += (v.dtype, v.shape) != before
    return changed


def _merge_dims(old, new):
    """``new`` dims, except where inference knows nothing (None or a fresh ``unk__N``) and the
    value already had a dim there: a dim a pass proved stays, and re-running is stable."""
    if old is None or len(old) != len(new):
        return new
    return tuple(o if is_unknown_dim(n) else n for o, n in zip(old, new, strict=True))


def inline_functions(model: Model) -> Model:
    """The same model with every model-local function call replaced by its body.

    Large initializers do not go through the inliner (it would copy every weight twice): they are
    declared as inputs for the round trip and re-attached afterwards."""
    from onnx import inliner

    big = {
        name: value
        for name, value in model.graph.initializers.items()
        if value.const.size > _INLINE_COPY_LIMIT
    }
    proto = inliner.inline_local_functions(
        model_to_proto(model, declare_tensors_above=_INLINE_COPY_LIMIT)
    )
    del proto.functions[:]
    used = {n.domain for n in _all_nodes(proto.graph)}
    keep = [
        imp for imp in proto.opset_import if imp.domain in used or imp.domain in ("", "ai.onnx")
    ]
    del proto.opset_import[:]
    proto.opset_import.extend(keep)
    result = model_from_proto(proto)
    graph = result.graph
    was_input = {v.name for v in model.graph.inputs}
    for value in list(graph.inputs):
        original = big.get(value.name)
        if original is None:
            continue
        value.const = original.const
        graph.initializers[value.name] = value
        if value.name not in was_input:
            graph.inputs.remove(value)
    return result


_INLINE_COPY_LIMIT = 4096
