"""The executor: memory plans, views, Python steps, threads and errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from cpu_helpers import assert_close, randn, ref_conv

from infopt import _C
from infopt.testing.threads import run_in_threads


def _chain_program(n_steps=4, threads=1, ops=("Neg", "Relu")):
    p = _C.Program(threads)
    x = p.add_value("x")
    cur = x
    for i in range(n_steps):
        nxt = p.add_value(f"t{i}")
        p.add_native_step(ops[i % 2], [cur], [nxt], {}, label=f"s{i}")
        cur = nxt
    p.set_io([x], [cur])
    return p


def test_module_info():
    assert _C.cpu_isa() in ("avx2", "scalar")
    ops = _C.native_ops()
    assert ops == sorted(ops)
    for op in (
        "Conv",
        "infopt.FusedConv",
        "Gemm",
        "infopt.FusedGemm",
        "MatMul",
        "Softmax",
        "Reshape",
    ):
        assert op in ops
    assert _C.Program(3).num_threads == 3
    assert _C.Program(0).num_threads >= 1


def test_inplace_chain(rng):
    # Neg/Relu overwrite their dying input: t0 takes one arena slot, t1..t3 reuse it in
    # place; the feed x is never written and the graph output t4 has its own buffer.
    p = _chain_program(5)
    x = randn(rng, 3, 1000)
    x_before = x.copy()
    ref = -np.maximum(-np.maximum(-x, 0), 0)  # Neg, Relu, Neg, Relu, Neg
    for _ in range(3):
        assert_close(p.run([x])[0], ref)
    np.testing.assert_array_equal(x, x_before)
    info = p.plans()[0]
    assert info["arena_values"] == 1
    assert info["arena_bytes"] == 12032


def test_inplace_refused_when_input_lives_on(rng):
    # t0 feeds both s1 and s2, so s1 must not overwrite it; s2 (its last reader) may.
    p = _C.Program(1)
    x, t0, t1, t2 = (p.add_value(n) for n in ("x", "t0", "t1", "t2"))
    p.add_native_step("Neg", [x], [t0], {})
    p.add_native_step("Relu", [t0], [t1], {})
    p.add_native_step("Add", [t0, t1], [t2], {})
    p.set_io([x], [t2, t0])
    x_arr = randn(rng, 4, 33)
    for _ in range(2):
        out, t0_out = p.run([x_arr])
        np.testing.assert_array_equal(t0_out, -x_arr)
        assert_close(out, -x_arr + np.maximum(-x_arr, 0))


def test_plan_reuse_and_ping_pong_arena(rng):
    p = _chain_program(5, ops=("Transpose", "Transpose"))
    x = randn(rng, 3, 1000)
    ref = x.T  # five transposes
    a = p.run([x])[0]
    b = p.run([x])[0]
    c = p.run([x])[0]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(b, c)
    assert_close(a, ref)
    plans = p.plans()
    assert len(plans) == 1
    # four intermediates alternate between two 12000-byte slots; the output is separate
    assert plans[0]["arena_values"] == 4
    assert plans[0]["arena_bytes"] == 2 * 12032
    assert plans[0]["unshared_bytes"] == 4 * 12032
    assert p.planned_arena_bytes() == 2 * 12032
    assert p.planned_arena_bytes([(3, 1000)]) == 2 * 12032
    assert p.planned_arena_bytes([(9, 9)]) is None


def test_second_signature(rng):
    p = _chain_program(3)
    for shape in [(2, 5), (7, 3, 9), (2, 5)]:
        x = randn(rng, *shape)
        assert_close(p.run([x])[0], np.maximum(-x, 0) * -1)
    assert len(p.plans()) == 2


def _cnn_program(threads):
    """conv -> relu -> maxpool -> flatten(view) -> gemm -> softmax, plus a residual add."""
    r = np.random.default_rng(7)
    w = r.standard_normal((8, 3, 3, 3)).astype(np.float32)
    b = r.standard_normal(8).astype(np.float32)
    fc = r.standard_normal((8 * 4 * 4, 10)).astype(np.float32)
    p = _C.Program(threads)
    v = {n: p.add_value(n) for n in ["x", "w", "b", "fc", "c", "r", "m", "f", "g", "a", "s"]}
    p.set_constant(v["w"], w)
    p.set_constant(v["b"], b)
    p.set_constant(v["fc"], fc)
    p.add_native_step(
        "Conv", [v["x"], v["w"], v["b"]], [v["c"]], {"pads": [1, 1, 1, 1]}, label="conv"
    )
    p.add_native_step("Relu", [v["c"]], [v["r"]], {})
    p.add_native_step("MaxPool", [v["r"]], [v["m"]], {"kernel_shape": [2, 2], "strides": [2, 2]})
    p.add_native_step("Flatten", [v["m"]], [v["f"]], {"axis": 1})
    p.add_native_step("MatMul", [v["f"], v["fc"]], [v["g"]], {})
    p.add_native_step("Add", [v["g"], v["g"]], [v["a"]], {})
    p.add_native_step("Softmax", [v["a"]], [v["s"]], {"axis": -1})
    p.set_io([v["x"]], [v["s"], v["f"]])

    def ref(x):
        c = np.maximum(ref_conv(x, w, b, pads=[1, 1, 1, 1]), 0)
        n = x.shape[0]
        m = c.reshape(n, 8, 4, 2, 4, 2).max(axis=(3, 5))
        f = m.reshape(n, -1)
        a = 2 * (f @ fc)
        e = np.exp(a - a.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True), f

    return p, ref


@pytest.mark.parametrize("threads", [1, 2])
def test_multi_step_program(rng, threads):
    p, ref = _cnn_program(threads)
    for n in (2, 1, 2):
        x = randn(rng, n, 3, 8, 8)
        s, f = p.run([x])
        rs, rf = ref(x)
        assert_close(s, rs, atol=1e-5)
        assert_close(f, rf, atol=1e-4)  # a view as graph output comes back as a copy
    assert len(p.plans()) == 2
    assert p.step_count() == 7 and p.native_step_count() == 7


def test_outputs_never_alias(rng):
    p = _C.Program(1)
    x, c, y, z, k = (p.add_value(n) for n in "xcyzk")
    const = randn(rng, 4)
    p.set_constant(c, const)
    p.add_native_step("Identity", [x], [y], {})
    p.add_native_step("Add", [x, c], [z], {})
    p.add_native_step("Identity", [c], [k], {})
    p.set_io([x], [y, z, z, k, x, c])
    feed = randn(rng, 4)
    outs = p.run([feed])
    for o in outs:
        assert not np.shares_memory(o, feed)
        assert o.flags.writeable
    assert not np.shares_memory(outs[1], outs[2])
    outs[0][:] = 0
    outs[3][:] = 0
    outs[5][:] = 0
    again = p.run([feed])
    np.testing.assert_array_equal(again[0], feed)
    np.testing.assert_array_equal(again[3], const)
    np.testing.assert_array_equal(again[5], const)
    assert_close(again[1], feed.astype(np.float64) + const)


def test_data_dependent_shape_falls_back_to_heap(rng):
    # Reshape target comes from a feed: same feed shapes, different output shapes.
    p = _C.Program(1)
    x, s, r, y = (p.add_value(n) for n in "xsry")
    p.add_native_step("Reshape", [x, s], [r], {})
    p.add_native_step("Transpose", [r], [y], {})
    p.set_io([x, s], [y])
    data = randn(rng, 6, 4)
    for shape in ([4, 6], [2, 12], [24, 1], [4, 6]):
        out = p.run([data, np.array(shape, np.int64)])[0]
        np.testing.assert_array_equal(out, data.reshape(shape).T)


def test_python_step_in_the_middle(rng):
    seen = {}

    def fallback(xs):
        a, b = xs
        seen["writeable"] = a.flags.writeable
        seen["none"] = b is None
        return [np.tanh(a) * 2, a]  # second output is a view of the input -> copied by the runtime

    p = _C.Program(2)
    x, t, u, v, w = (p.add_value(n) for n in "xtuvw")
    p.add_native_step("Exp", [x], [t], {})
    p.add_python_step(fallback, [t, -1], [u, v], "my_fallback")
    p.add_native_step("Mul", [u, v], [w], {})
    p.set_io([x], [w, u])
    xv = randn(rng, 5, 17)
    for _ in range(2):
        w_out, u_out = p.run([xv])
        e = np.exp(xv.astype(np.float64))
        assert_close(w_out, np.tanh(e) * 2 * e, rtol=1e-4)
        assert_close(u_out, np.tanh(e) * 2)
    assert seen == {"writeable": False, "none": True}
    assert p.native_step_count() == 2 and p.step_count() == 3


def test_python_step_errors():
    p = _C.Program(1)
    x, y = p.add_value("x"), p.add_value("y")
    p.add_python_step(lambda xs: [xs[0], xs[0]], [x], [y], "twice")
    p.set_io([x], [y])
    with pytest.raises(RuntimeError, match="twice.*2 outputs, expected 1"):
        p.run([np.ones(3, np.float32)])

    class Boom(Exception):
        pass

    def boom(xs):
        raise Boom("from python")

    q = _C.Program(1)
    a, b = q.add_value("a"), q.add_value("b")
    q.add_python_step(boom, [a], [b], "boom")
    q.set_io([a], [b])
    with pytest.raises(Boom, match="from python"):
        q.run([np.ones(3, np.float32)])


def test_python_step_dtype_mismatch_reported_by_native_step():
    p = _C.Program(1)
    x, y, z = p.add_value("x"), p.add_value("y"), p.add_value("z")
    p.add_python_step(lambda xs: [xs[0].astype(np.float64)], [x], [y], "to_f64")
    p.add_native_step("Relu", [y], [z], {}, label="relu_after")
    p.set_io([x], [z])
    with pytest.raises(ValueError, match=r"relu_after.*Relu.*f64\[3\].*float32"):
        p.run([np.ones(3, np.float32)])


def test_concurrent_runs_share_one_program(rng):
    p, ref = _cnn_program(2)
    inputs = [randn(rng, 2, 3, 8, 8) for _ in range(2)]
    expected = [p.run([x])[0] for x in inputs]

    def worker(i):
        for _ in range(25):
            np.testing.assert_array_equal(p.run([inputs[i]])[0], expected[i])

    run_in_threads(worker, 2)


def test_build_errors():
    p = _C.Program(1)
    x, y = p.add_value("x"), p.add_value("y")
    with pytest.raises(ValueError, match="unknown native op 'NoSuchOp'"):
        p.add_native_step("NoSuchOp", [x], [y], {})
    with pytest.raises(ValueError, match=r"Softmax: attribute 'axis' must be an int"):
        p.add_native_step("Softmax", [x], [y], {"axis": "one"})
    with pytest.raises(ValueError, match="Conv: expected 2..3 inputs"):
        p.add_native_step("Conv", [x], [y], {})
    with pytest.raises(ValueError, match="out of range"):
        p.add_native_step("Relu", [x], [99], {})
    with pytest.raises(ValueError, match=r"MaxPool: attribute 'kernel_shape' is required"):
        p.add_native_step("MaxPool", [x], [y], {})
    with pytest.raises(ValueError, match=r"attribute 'x' has unsupported type"):
        p.add_native_step("Relu", [x], [y], {"x": object()})


def test_run_errors():
    p = _C.Program(1)
    x, y, z = p.add_value("x"), p.add_value("y"), p.add_value("z")
    p.add_native_step("Relu", [y], [z], {}, label="early")
    p.set_io([x], [z])
    with pytest.raises(ValueError, match="early.*reads value 'y'"):
        p.run([np.ones(2, np.float32)])

    q = _C.Program(1)
    a, b = q.add_value("a"), q.add_value("b")
    q.add_native_step("Softmax", [a], [b], {"axis": 1}, label="sm")
    q.set_io([a], [b])
    with pytest.raises(ValueError, match=r"step 'sm' \(Softmax\).*f32\[3\].*axis 1"):
        q.run([np.ones(3, np.float32)])
    with pytest.raises(ValueError, match="expected 1 feeds, got 2"):
        q.run([np.ones(2, np.float32)] * 2)
    with pytest.raises(ValueError, match="unsupported dtype"):
        q.run([np.array(["a"])])
    # the program still works after errors
    np.testing.assert_allclose(q.run([np.zeros((1, 4), np.float32)])[0], np.full((1, 4), 0.25))


def test_optional_inputs_and_outputs(rng):
    p = _C.Program(1)
    x, w, y, d = (p.add_value(n) for n in "xwyd")
    p.add_native_step("Conv", [x, w, -1], [y], {})
    p.add_native_step("Dropout", [y], [d, -1], {})
    p.set_io([x, w], [d])
    xv, wv = randn(rng, 1, 2, 5, 5), randn(rng, 3, 2, 3, 3)
    assert_close(p.run([xv, wv])[0], ref_conv(xv, wv), atol=1e-5)


def test_profiling(rng):
    p = _chain_program(3)
    p.set_profiling(True)
    x = randn(rng, 100)
    p.run([x])
    p.run([x])
    prof = p.profile()
    assert [e[0] for e in prof] == ["s0", "s1", "s2"]
    assert all(e[3] == 2 and e[2] >= 0 for e in prof)
    assert prof[0][1] == "Neg"
    p.reset_profile()
    assert all(e[3] == 0 for e in p.profile())


def test_non_contiguous_feed(rng):
    p = _chain_program(1)
    x = randn(rng, 6, 8)[:, ::2]
    np.testing.assert_array_equal(p.run([x])[0], -x)


def _run_isa_probe(env_value):
    env = dict(os.environ, INFOPT_CPU_ISA=env_value)
    code = (
        "from infopt import _C; import numpy as np\n"
        "print(_C.cpu_isa())\n"
        "p = _C.Program(1); a = p.add_value('a'); b = p.add_value('b')\n"
        "p.add_native_step('MatMul', [a, a], [b], {}); p.set_io([a], [b])\n"
        "x = np.arange(9, dtype=np.float32).reshape(3, 3)\n"
        "assert np.allclose(p.run([x])[0], x @ x)\n"
        "print(p.isa)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_isa_env_override():
    r = _run_isa_probe("scalar")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["scalar", "scalar"]
    if _C.cpu_supports("avx2"):
        r = _run_isa_probe("avx2")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["avx2", "avx2"]
    r = _run_isa_probe("sse9")
    assert r.returncode != 0 and "unknown CPU ISA 'sse9'" in r.stderr


def test_program_isa_argument():
    assert _C.Program(1, "scalar").isa == "scalar"
    with pytest.raises(ValueError, match="unknown CPU ISA"):
        _C.Program(1, "neon")


def test_inplace_dead_output_keeps_its_buffer_reserved(rng):
    # s1 writes its (never read) output over t0; t0's arena slot must stay reserved through s1
    # so that t2, live across s1, is not placed on top of it.
    p = _C.Program(1)
    x, t0, t1, t2, t3 = (p.add_value(n) for n in ("x", "t0", "t1", "t2", "t3"))
    p.add_native_step("Neg", [x], [t0], {})
    p.add_native_step("Abs", [x], [t2], {})
    p.add_native_step("Relu", [t0], [t1], {})  # t1 is dead
    p.add_native_step("Neg", [t2], [t3], {})
    p.set_io([x], [t3])
    xa = randn(rng, 5, 40)
    for _ in range(3):
        np.testing.assert_array_equal(p.run([xa])[0], -np.abs(xa))
