"""Who holds the weights: the native program borrows read-only arrays, frees originals that only
packed copies read, and a session that loaded its model drops the IR's copies. These tests check
that results stay right under those rules (differential against numpy float64, rtol 1e-4 /
atol 1e-4 for float32 GEMM-sized sums), not how much memory is used (that is bench/)."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import infopt
from infopt.errors import ModelError

_C = pytest.importorskip("infopt._C")

TOL = {"rtol": 1e-4, "atol": 1e-4}
K, N = 48, 40  # W is 7.5 KB: large enough to be read lazily from the file


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((K, N)).astype(np.float32)
    b = rng.uniform(-1.0, 1.0, N).astype(np.float32)
    return w, b


def _mlp_model(w, b, *, ir3_inputs=False, einsum=False):
    """y = relu(x @ w + b) (MatMul + Add + Relu); with ``einsum`` also e = einsum(x, w), which
    runs through the fallback evaluator and so reads w outside the packed MatMul."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", N])]
    if einsum:
        nodes.append(helper.make_node("Einsum", ["x", "w"], ["e"], equation="bk,kn->bn"))
        outputs.append(helper.make_tensor_value_info("e", TensorProto.FLOAT, ["batch", N]))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", K])]
    if ir3_inputs:  # initializers listed as inputs: overridable by a feed
        inputs += [
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [K, N]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [N]),
        ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        inputs,
        outputs,
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _reference(x, w, b):
    return np.maximum(x.astype(np.float64) @ w.astype(np.float64) + b, 0.0)


def _x(batch, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, K)).astype(np.float32)


def _save(tmp_path, proto, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(proto.SerializeToString())
    return path


# --- Program: borrowing and releasing ---------------------------------------------------------
def _matmul_program(w, extra_reader: str | None = None):
    p = _C.Program(1)
    x, wv, y = p.add_value("x"), p.add_value("w"), p.add_value("y")
    p.set_constant(wv, w)
    p.add_native_step("MatMul", [x, wv], [y])
    outs = [y]
    if extra_reader == "add":  # a native reader that uses the original
        z = p.add_value("z")
        p.add_native_step("Add", [wv, wv], [z])
        outs.append(z)
    elif extra_reader == "output":
        outs.append(wv)
    elif extra_reader == "view":  # MatMul through a Reshape view of w
        shape, r, y2 = p.add_value("shape"), p.add_value("r"), p.add_value("y2")
        p.set_constant(shape, np.array([K, N], np.int64))
        p.add_native_step("Reshape", [wv, shape], [r])
        p.add_native_step("MatMul", [x, r], [y2])
        outs.append(y2)
    p.set_io([x], outs)
    return p


def test_readonly_constant_is_borrowed_and_outlives_the_callers_reference():
    w, _ = _weights()
    expect = _x(3).astype(np.float64) @ w.astype(np.float64)
    borrowed = w.copy()
    borrowed.flags.writeable = False
    p = _matmul_program(borrowed)
    del borrowed
    gc.collect()
    (y,) = p.run([_x(3)])
    np.testing.assert_allclose(y, expect, **TOL)


def test_writable_constant_is_copied_so_later_writes_do_not_leak_in():
    w, _ = _weights()
    expect = _x(3).astype(np.float64) @ w.astype(np.float64)
    mine = w.copy()
    p = _matmul_program(mine)
    mine[...] = np.random.default_rng(7).standard_normal(mine.shape)
    (y,) = p.run([_x(3)])
    np.testing.assert_allclose(y, expect, **TOL)


def test_prepare_frees_a_weight_only_the_packed_copy_reads():
    w, _ = _weights()
    p = _matmul_program(w)
    assert p.prepare(release_packed_constants=True) == w.nbytes
    assert p.released_constants() == ["w"]
    for batch in (1, 4, 9):  # new input shapes plan again without the original
        (y,) = p.run([_x(batch, seed=batch)])
        np.testing.assert_allclose(y, _x(batch, seed=batch).astype(np.float64) @ w, **TOL)
    with pytest.raises(Exception, match="released"):
        p.add_value("late")


@pytest.mark.parametrize("reader", ["add", "output", "view"])
def test_prepare_keeps_a_weight_something_else_reads(reader):
    w, _ = _weights()
    p = _matmul_program(w, reader)
    assert p.prepare(release_packed_constants=True) == 0
    assert p.released_constants() == []
    outs = p.run([_x(2)])
    ref = _x(2).astype(np.float64) @ w
    np.testing.assert_allclose(outs[0], ref, **TOL)
    want = {"add": 2.0 * w, "output": w, "view": ref}[reader]
    np.testing.assert_allclose(outs[1], want, **TOL)


def test_prepare_after_a_run_releases_nothing():
    w, _ = _weights()
    p = _matmul_program(w)
    p.run([_x(2)])
    assert p.prepare(release_packed_constants=True) == 0
    np.testing.assert_allclose(p.run([_x(2)])[0], _x(2).astype(np.float64) @ w, **TOL)


# --- Session over a model file -----------------------------------------------------------------
def test_session_from_file_hands_weights_to_the_program(tmp_path):
    w, b = _weights()
    sess = infopt.InferenceSession(str(_save(tmp_path, _mlp_model(w, b))))
    assert "w" in sess.program.released_constants()
    assert sess._model.graph.initializers["w"].const._array is None  # IR copy dropped
    for batch in (1, 6, 2):  # a plan per batch size, after the originals are gone
        (y,) = sess.run(None, {"x": _x(batch, seed=batch)})
        np.testing.assert_allclose(y, _reference(_x(batch, seed=batch), w, b), **TOL)


def test_override_after_the_ir_copy_was_dropped(tmp_path):
    w, b = _weights()
    sess = infopt.InferenceSession(str(_save(tmp_path, _mlp_model(w, b, ir3_inputs=True))))
    assert [i.name for i in sess.get_overridable_initializers()] == ["w", "b"]
    w2, b2 = _weights(seed=5)
    x = _x(4)
    (y,) = sess.run(None, {"x": x, "w": w2})  # b comes from the file, read again
    np.testing.assert_allclose(y, _reference(x, w2, b), **TOL)
    (y,) = sess.run(None, {"x": x, "b": b2})
    np.testing.assert_allclose(y, _reference(x, w, b2), **TOL)
    (y,) = sess.run(None, {"x": x})
    np.testing.assert_allclose(y, _reference(x, w, b), **TOL)


def test_fallback_step_still_sees_a_weight_a_packed_matmul_also_reads(tmp_path):
    w, b = _weights()
    sess = infopt.InferenceSession(str(_save(tmp_path, _mlp_model(w, b, einsum=True))))
    assert sess.fallback_ops == {"Einsum": 1}
    assert "w" not in sess.program.released_constants()
    x = _x(3)
    y, e = sess.run(None, {"x": x})
    np.testing.assert_allclose(y, _reference(x, w, b), **TOL)
    np.testing.assert_allclose(e, x.astype(np.float64) @ w, **TOL)


def test_session_survives_the_file_being_replaced(tmp_path):
    w, b = _weights()
    path = _save(tmp_path, _mlp_model(w, b, ir3_inputs=True))
    sess = infopt.InferenceSession(str(path))
    w2, b2 = _weights(seed=9)
    infopt.save(infopt.load(_mlp_model(w2, b2, ir3_inputs=True)), path)  # new file, renamed
    x = _x(2)
    (y,) = sess.run(None, {"x": x, "b": b2})  # w read again: from the file that was loaded
    np.testing.assert_allclose(y, _reference(x, w, b2), **TOL)


def test_file_changed_in_place_is_refused_not_misread(tmp_path):
    w, b = _weights()
    path = _save(tmp_path, _mlp_model(w, b))
    model = infopt.load(path)
    w2, b2 = _weights(seed=3)
    with open(path, "r+b") as f:  # same inode, different bytes
        f.write(_mlp_model(w2, b2).SerializeToString() + b"\0" * 8)
    with pytest.raises(ModelError, match="changed after it was loaded"):
        model.graph.initializers["w"].const.numpy()


def test_callers_model_is_left_alone_and_its_arrays_may_change(tmp_path):
    w, b = _weights()
    model = infopt.load(_mlp_model(w, b))
    from infopt.ir import Tensor

    mine = w.copy()  # writable: the program must copy it
    model.graph.initializers["w"].const = Tensor(mine)
    sess = infopt.InferenceSession(model)
    # not handed over: the IR keeps its array; the program drops its copy once packed
    assert model.graph.initializers["w"].const._array is mine
    assert sess.program.released_constants() == ["w"]
    mine[...] = 0.5
    model.graph.initializers["w"].const = Tensor(np.ones_like(w))
    del model
    gc.collect()
    x = _x(5)
    (y,) = sess.run(None, {"x": x})
    np.testing.assert_allclose(y, _reference(x, w, b), **TOL)


# outputs from 160 B to 480 KB (past malloc's mmap threshold, where freed blocks get reused)
@pytest.mark.parametrize("rows", [1, 7, 300, 3000])
def test_outputs_aligned_and_owned_per_run(rows):
    """Every run hands out its own 64-byte aligned output: freeing one run's result and running
    again (the allocator reusing that block) never changes a result still held."""
    w, b = _weights(3)
    p = _C.Program(1)
    x_id, w_id, b_id, y_id = (p.add_value(n) for n in ("x", "w", "b", "y"))
    p.set_constant(w_id, w)
    p.set_constant(b_id, b)
    p.add_native_step("infopt.FusedMatMul", [x_id, w_id, b_id], [y_id], {"activation": "Relu"})
    p.set_io([x_id], [y_id])
    rng = np.random.default_rng(rows)
    xs = [rng.standard_normal((rows, K)).astype(np.float32) for _ in range(4)]
    kept = p.run([xs[0]])[0]
    for x in xs[1:]:
        y = p.run([x])[0]
        assert y.ctypes.data % 64 == 0
        np.testing.assert_allclose(y, _reference(x, w, b), **TOL)
        del y
        gc.collect()
    assert kept.ctypes.data % 64 == 0
    np.testing.assert_allclose(kept, _reference(xs[0], w, b), **TOL)
