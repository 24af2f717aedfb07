"""Import/export: nothing lost, and onnxruntime computes bit-identical outputs on the result."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import infopt
from infopt.ir import serde
from infopt.testing.models import LIGHT_MODELS, resolve

ort = pytest.importorskip("onnxruntime")


def _ort(model_bytes: bytes):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_round_trip_is_bit_identical_in_onnxruntime(name):
    path = resolve(name)
    original = onnx.load(str(path))
    exported = serde.to_bytes(infopt.load(path))
    a, b = _ort(original.SerializeToString()), _ort(exported)
    inp = a.get_inputs()[0]
    x = np.random.default_rng(7).standard_normal(inp.shape).astype(np.float32)
    np.testing.assert_array_equal(a.run(None, {inp.name: x})[0], b.run(None, {inp.name: x})[0])
    # structure: same nodes, same initializers bit for bit, same interface
    back = onnx.load_from_string(exported)
    assert [n.op_type for n in back.graph.node] == [n.op_type for n in original.graph.node]
    assert [i.name for i in back.graph.input] == [i.name for i in original.graph.input]
    assert [o.name for o in back.graph.output] == [o.name for o in original.graph.output]
    orig_inits = {t.name: t.SerializeToString() for t in original.graph.initializer}
    back_inits = {t.name: t.SerializeToString() for t in back.graph.initializer}
    assert orig_inits == back_inits
    assert [(o.domain, o.version) for o in back.opset_import] == [
        (o.domain, o.version) for o in original.opset_import
    ]


def _rich_model() -> onnx.ModelProto:
    """Subgraphs, symbolic dims, doc strings, metadata, a function, odd attributes."""
    then_graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["batch", 4])],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, ["batch", 4])],
    )
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0, doc_string="sum it"),
        helper.make_node("Greater", ["s", "zero"], ["cond_v"]),
        helper.make_node("ReduceMin", ["cond_v_f"], ["cond_min"], keepdims=0),
        helper.make_node("Cast", ["cond_v"], ["cond_v_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["cond_min"], ["cond"], to=TensorProto.BOOL),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph),
        helper.make_node("MyScale", ["y"], ["z"], domain="custom", factor=2.5),
    ]
    fn = helper.make_function(
        "custom",
        "MyScale",
        ["a"],
        ["b"],
        [
            helper.make_node("Constant", [], ["f"], value_float=2.5),
            helper.make_node("Mul", ["a", "f"], ["b"]),
        ],
        [helper.make_opsetid("", 17)],
        attributes=["factor"],
    )
    graph = helper.make_graph(
        nodes,
        "rich",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 4])],
        initializer=[helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])],
        doc_string="a graph doc",
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)],
        functions=[fn],
        producer_name="tests",
        doc_string="model doc",
    )
    helper.set_model_props(model, {"author": "infopt tests"})
    # the nodes above are deliberately not in topological order; the importer sorts them
    return model


def test_rich_model_survives_round_trip_and_still_runs():
    proto = _rich_model()
    m = infopt.load(proto)
    assert m.graph.inputs[0].shape == ("batch", 4)
    assert m.metadata_props == {"author": "infopt tests"}
    back = onnx.load_from_string(serde.to_bytes(m))
    onnx.checker.check_model(back, full_check=True)
    assert back.doc_string == "model doc" and back.graph.doc_string == "a graph doc"
    assert back.functions[0].name == "MyScale"
    if_node = next(n for n in back.graph.node if n.op_type == "If")
    assert {a.name for a in if_node.attribute} == {"then_branch", "else_branch"}
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    session = _ort(back.SerializeToString())
    for sign in (1, -1):
        feed = sign * (np.abs(x) + 0.1)
        expected = (feed + feed if feed.sum() > 0 else -feed) * 2.5
        np.testing.assert_allclose(session.run(None, {"x": feed})[0], expected, rtol=1e-6)
    assert serde.to_bytes(infopt.load(back)) == serde.to_bytes(m)


def test_external_data_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((64, 64)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "ext",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 64])],
        initializer=[onnx.numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    src = tmp_path / "src"
    src.mkdir()
    onnx.save_model(
        model, src / "m.onnx", save_as_external_data=True, location="weights.bin", size_threshold=0
    )
    m = infopt.load(src / "m.onnx")
    np.testing.assert_array_equal(m.graph.initializers["w"].const.numpy(), w)
    out = tmp_path / "out"
    out.mkdir()
    infopt.save(m, out / "m.opt", external_data=True)
    assert (out / "m.opt.data").is_file()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    again = infopt.load(out / "m.opt")
    np.testing.assert_array_equal(again.graph.initializers["w"].const.numpy(), w)
    # onnx itself reads what we wrote
    loaded = onnx.load(str(out / "m.opt"))
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(loaded.graph.initializer[0]), w)


def test_external_data_outside_model_folder_is_refused(tmp_path):
    w = np.arange(16, dtype=np.float32)
    (tmp_path / "secret.bin").write_bytes(w.tobytes())
    inner = tmp_path / "models"
    inner.mkdir()
    tensor = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[16])
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../secret.bin")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16])],
        initializer=[tensor],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (inner / "m.onnx").write_bytes(model.SerializeToString())
    with pytest.raises(infopt.ModelError, match="outside"):
        infopt.load(inner / "m.onnx")


def test_large_model_is_saved_with_external_data(tmp_path, monkeypatch):
    # the 2 GB switch-over point, scaled down so the test stays small
    monkeypatch.setattr(serde, "EXTERNAL_DATA_THRESHOLD", 1000)
    w = np.random.default_rng(0).standard_normal(1024).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1024])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1024])],
        initializer=[onnx.numpy_helper.from_array(w, "w")],
    )
    m = infopt.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    infopt.save(m, tmp_path / "big.opt")
    assert (tmp_path / "big.opt.data").stat().st_size >= w.nbytes
    assert (tmp_path / "big.opt").stat().st_size < w.nbytes
    np.testing.assert_array_equal(
        infopt.load(tmp_path / "big.opt").graph.initializers["w"].const.numpy(), w
    )


def test_load_accepts_path_bytes_and_proto():
    path = resolve("squeezenet")
    proto = onnx.load(str(path))
    a = serde.to_bytes(infopt.load(path))
    assert serde.to_bytes(infopt.load(str(path))) == a
    assert serde.to_bytes(infopt.load(path.read_bytes())) == a
    assert serde.to_bytes(infopt.load(proto)) == a


def test_saved_file_has_ordinary_permissions(tmp_path):
    import os
    import stat

    model = infopt.load(resolve("squeezenet"))
    umask = os.umask(0o022)
    try:
        infopt.save(model, tmp_path / "new.opt")
        assert stat.S_IMODE((tmp_path / "new.opt").stat().st_mode) == 0o644
        existing = tmp_path / "existing.opt"
        existing.write_bytes(b"old")
        existing.chmod(0o640)
        infopt.save(model, existing)
        assert stat.S_IMODE(existing.stat().st_mode) == 0o640
    finally:
        os.umask(umask)
