"""Loading from a path leaves large initializers' bytes in the file until they are used; the IR
must hold exactly what loading the same bytes in memory gives, and save must write it back."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import infopt
from infopt.ir.serde_lazy import MIN_LAZY_BYTES, LazyTensor


def _model():
    rng = np.random.default_rng(4)
    arrays = {
        "w_f32": rng.standard_normal((33, 17)).astype(np.float32),
        "w_f16": rng.standard_normal((40, 31)).astype(np.float16),
        "idx_i64": rng.integers(-(2**40), 2**40, (300,), dtype=np.int64),
        "mask_bool": rng.random(2000) > 0.5,
        "u8": rng.integers(0, 255, (1500,), dtype=np.uint8),
        "small": rng.standard_normal(5).astype(np.float32),  # stays inline
    }
    inits = [numpy_helper.from_array(a, name) for name, a in arrays.items()]
    # typed-field storage (no raw_data) and a raw_data tensor with a doc string
    inits.append(helper.make_tensor("typed", TensorProto.FLOAT, [400], rng.random(400).tolist()))
    inits[0].doc_string = "kept"
    outputs, nodes = [], []
    for t in inits:
        nodes.append(helper.make_node("Identity", [t.name], [t.name + "_out"]))
        outputs.append(helper.make_tensor_value_info(t.name + "_out", t.data_type, list(t.dims)))
    graph = helper.make_graph(nodes, "g", [], outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_lazy_load_matches_in_memory_load_and_round_trips(tmp_path):
    proto = _model()
    path = tmp_path / "m.onnx"
    path.write_bytes(proto.SerializeToString())
    lazy, eager = infopt.load(path), infopt.load(proto.SerializeToString())
    kinds = {}
    for name, value in lazy.graph.initializers.items():
        a, b = value.const.numpy(), eager.graph.initializers[name].const.numpy()
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
        kinds[name] = isinstance(value.const.loader, LazyTensor)
        assert not (kinds[name] and a.flags.writeable)  # lazily read arrays are read-only
    assert kinds == {
        "w_f32": True,
        "w_f16": True,
        "idx_i64": True,
        "mask_bool": True,
        "u8": True,
        "small": False,
        "typed": False,
    }
    assert MIN_LAZY_BYTES > 5 * 4
    # dropping the array and reading it again gives the same bytes
    w = lazy.graph.initializers["w_f32"].const
    first = w.numpy().copy()
    assert w.drop_array()
    np.testing.assert_array_equal(w.numpy(), first)
    # save writes the data that stayed in the file; the result is the original model
    out = tmp_path / "out.onnx"
    infopt.save(lazy, out)
    again = infopt.load(out.read_bytes())
    for name, value in eager.graph.initializers.items():
        np.testing.assert_array_equal(
            again.graph.initializers[name].const.numpy(), value.const.numpy()
        )
    saved = {t.name: t for t in infopt.ir.model_to_proto(lazy).graph.initializer}
    assert saved["w_f32"].doc_string == "kept"


def test_lazily_loaded_model_can_be_deep_copied(tmp_path):
    import copy

    proto = _model()
    path = tmp_path / "m.onnx"
    path.write_bytes(proto.SerializeToString())
    want = infopt.load(proto.SerializeToString()).graph.initializers["w_f32"].const.numpy()
    clone = copy.deepcopy(infopt.load(path))
    np.testing.assert_array_equal(clone.graph.initializers["w_f32"].const.numpy(), want)


@pytest.mark.parametrize("junk", [b"\xff" * 64, b"\x0a\x05abc", b"not an onnx model at all"])
def test_garbage_file_gets_the_ordinary_error(tmp_path, junk):
    path = tmp_path / "bad.onnx"
    path.write_bytes(junk)
    with pytest.raises(infopt.errors.ModelError):
        infopt.load(path)
