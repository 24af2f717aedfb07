"""InferenceSession: the onnxruntime surface, feed validation, fallback reporting, threads."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import infopt
from infopt.testing.compare import relative_l2
from infopt.testing.oracle import ort_run
from infopt.testing.threads import run_in_threads

pytest.importorskip("infopt._C")


def _model(opset=17):
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Tanh", ["a"], ["y"]),
        helper.make_node("Shape", ["x"], ["s"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 3]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("s", TensorProto.INT64, [2]),
        ],
        initializer=[w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _feeds(batch=5, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((batch, 4)).astype(np.float32),
        "b": rng.standard_normal((batch, 3)).astype(np.float32),
    }


def test_surface_matches_onnxruntime():
    proto = _model()
    sess = infopt.InferenceSession(proto.SerializeToString())
    assert [(i.name, i.type, i.shape) for i in sess.get_inputs()] == [
        ("x", "tensor(float)", ["batch", 4]),
        ("b", "tensor(float)", ["batch", 3]),
    ]
    assert [o.name for o in sess.get_outputs()] == ["y", "s"]
    assert sess.get_providers() == ["CPUExecutionProvider"]
    for batch in (1, 5, 17):  # a plan per input-shape signature
        feeds = _feeds(batch, seed=batch)
        got = sess.run(None, feeds)
        want = ort_run(proto, feeds)
        assert relative_l2(want[0], got[0]) <= 1e-6
        np.testing.assert_array_equal(got[1], [batch, 4])
    only_s = sess.run(["s"], _feeds(2))
    assert len(only_s) == 1 and only_s[0].tolist() == [2, 4]


def test_outputs_are_fresh_arrays():
    sess = infopt.InferenceSession(_model())
    feeds = _feeds()
    a = sess.run(None, feeds)[0]
    b = sess.run(None, feeds)[0]
    assert a is not b and not np.shares_memory(a, b)
    a[:] = 0
    np.testing.assert_array_equal(b, sess.run(None, feeds)[0])


@pytest.mark.parametrize(
    "feeds,message",
    [
        ({"x": np.ones((2, 4), np.float32)}, "missing input 'b'"),
        (
            {**_feeds(2), "zzz": np.ones(1, np.float32)},
            "unknown input 'zzz'",
        ),
        (
            {"x": np.ones((2, 4), np.float64), "b": np.ones((2, 3), np.float32)},
            "input 'x' has dtype float64",
        ),
        (
            {"x": np.ones((2, 4, 1), np.float32), "b": np.ones((2, 3), np.float32)},
            "input 'x' has rank 3",
        ),
        (
            {"x": np.ones((2, 5), np.float32), "b": np.ones((2, 3), np.float32)},
            r"input 'x' has shape \[2, 5\].*dim 1 must be 4",
        ),
        (
            {"x": np.ones((2, 4), np.float32), "b": np.ones((3, 3), np.float32)},
            "dim 'batch' = 3",
        ),
    ],
)
def test_bad_feeds_name_the_input(feeds, message):
    sess = infopt.InferenceSession(_model())
    with pytest.raises(infopt.InputError, match=message):
        sess.run(None, feeds)


def test_unknown_output_name():
    sess = infopt.InferenceSession(_model())
    with pytest.raises(infopt.InputError, match="unknown output 'nope'"):
        sess.run(["nope"], _feeds())


def test_non_contiguous_feed_is_accepted():
    sess = infopt.InferenceSession(_model())
    feeds = _feeds(6)
    strided = {"x": np.asfortranarray(feeds["x"]), "b": feeds["b"][::1]}
    np.testing.assert_array_equal(sess.run(None, strided)[0], sess.run(None, feeds)[0])


def test_fallback_is_reported_and_correct():
    # Hardmax has no native kernel: it must still run, through the fallback, and be reported
    graph = helper.make_graph(
        [
            helper.make_node("Hardmax", ["x"], ["h"], axis=1),
            helper.make_node("Relu", ["h"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 5])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = infopt.InferenceSession(proto)
    assert sess.fallback_ops == {"Hardmax": 1}
    x = {"x": np.random.default_rng(3).standard_normal((3, 5)).astype(np.float32)}
    np.testing.assert_array_equal(sess.run(None, x)[0], ort_run(proto, x)[0])


def test_infopt_op_without_a_native_kernel_runs_its_function():
    """FusedConvSilu (no native Silu epilogue) runs its ONNX function in the fallback, though
    the call leaves Conv attributes such as auto_pad out (the function is inlined first)."""
    weight = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
    w = numpy_helper.from_array(weight, "w")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"]),
            helper.make_node("Sigmoid", ["c"], ["g"]),
            helper.make_node("Mul", ["c", "g"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[w],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model, _ = infopt.compile(proto, passes=["infer_shapes", "fuse_conv_activation"])
    sess = infopt.InferenceSession(model)
    assert sess.fallback_ops == {"infopt.FusedConvSilu": 1}
    x = {"x": np.random.default_rng(3).standard_normal((1, 3, 6, 6)).astype(np.float32)}
    assert relative_l2(ort_run(proto, x)[0], sess.run(None, x)[0]) <= 1e-6


def test_ir3_initializer_inputs_can_be_overridden():
    w = numpy_helper.from_array(np.array([1.0, 2.0, 3.0], np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"])],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [3]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        initializer=[w],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    proto.ir_version = 3
    sess = infopt.InferenceSession(proto)
    assert [i.name for i in sess.get_inputs()] == ["x"]
    x = np.array([0.5, -1.5, 2.5], np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], x * [1, 2, 3])
    other = np.array([-2.0, 0.25, 4.0], np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x, "w": other})[0], x * other)


def test_threads_share_one_session():
    proto = _model()
    sess = infopt.InferenceSession(proto)

    def work(seed):
        for i in range(20):
            feeds = _feeds(1 + (seed + i) % 7, seed=seed * 100 + i)
            got = sess.run(None, feeds)[0]
            assert relative_l2(np.tanh(feeds["x"] @ _w() + feeds["b"]), got) <= 1e-5

    run_in_threads(work, 4)


def _w():
    return numpy_helper.to_array(_model().graph.initializer[0])


def test_cuda_provider_is_refused_in_one_line(monkeypatch):
    # no GPU here; the Triton interpreter (which tests/kernels switches on) would stand in for one
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    from infopt.runtime.cuda import cuda_unavailable_reason

    if cuda_unavailable_reason() is None:
        pytest.skip("a GPU is present")
    with pytest.raises(infopt.InputError, match="CUDAExecutionProvider is not available") as info:
        infopt.InferenceSession(_model(), providers=["CUDAExecutionProvider"])
    assert "\n" not in str(info.value)


def test_unknown_provider():
    with pytest.raises(infopt.InputError, match="unknown execution provider"):
        infopt.InferenceSession(_model(), providers=["TPUExecutionProvider"])


def test_session_options_thread_count():
    opts = infopt.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = infopt.InferenceSession(_model(), opts)
    feeds = _feeds(4)
    assert relative_l2(ort_run(_model(), feeds)[0], sess.run(None, feeds)[0]) <= 1e-6
