"""In-place concat: producers of Concat inputs write straight into the Concat output's arena
slot when every dim before the axis is 1. Each test compares with numpy over several runs (the
first run records sizes, later runs use the plan) and checks how many inputs were placed."""

from __future__ import annotations

import numpy as np
from cpu_helpers import randn

from infopt import _C
from infopt.testing.threads import run_in_threads


class Builder:
    def __init__(self, threads=1):
        self.p = _C.Program(threads)

    def v(self, name):
        return self.p.add_value(name)

    def step(self, op, ins, attrs=None, name=None):
        out = self.v(name or f"{op}_{len(ins)}")
        self.p.add_native_step(op, list(ins), [out], attrs or {})
        return out

    def const(self, name, arr):
        vid = self.v(name)
        self.p.set_constant(vid, arr)
        return vid


def placed(p):
    (info,) = p.plans()
    return info["concat_inplace_inputs"]


def run_check(p, feeds, refs, runs=3):
    for _ in range(runs):
        outs = p.run(feeds)
        assert len(outs) == len(refs)
        for o, r in zip(outs, refs, strict=True):
            np.testing.assert_allclose(o, r, rtol=1e-6, atol=1e-6)
    return outs


def test_simple_concat_inputs_in_place(rng):
    b = Builder()
    x = b.v("x")
    a = b.step("Neg", [x])
    r = b.step("Relu", [x])
    c = b.step("Concat", [a, r], {"axis": 1})
    y = b.step("Neg", [c])  # in place over c, after both inputs died
    b.p.set_io([x], [y])
    xa = randn(rng, 1, 4, 5, 8)
    run_check(b.p, [xa], [-np.concatenate([-xa, np.maximum(xa, 0)], axis=1)])
    assert placed(b.p) == 2
    info = b.p.plans()[0]
    assert info["arena_values"] == 3
    assert info["arena_bytes"] < info["unshared_bytes"]


def test_densenet_chain_nested(rng):
    # c1 = [a0, f1]; c2 = [c1, f2]; c3 = [c2, f3]: all six slabs end up inside c3's slot.
    b = Builder()
    x = b.v("x")
    a0 = b.step("Neg", [x])
    f1 = b.step("Relu", [a0])
    c1 = b.step("Concat", [a0, f1], {"axis": 1})
    f2 = b.step("Neg", [c1])
    c2 = b.step("Concat", [c1, f2], {"axis": 1})
    f3 = b.step("Sigmoid", [c2])
    c3 = b.step("Concat", [c2, f3], {"axis": 1})
    y = b.step("Neg", [c3])
    b.p.set_io([x], [y])
    xa = randn(rng, 1, 2, 3, 8)
    r_a0 = -xa
    r_c1 = np.concatenate([r_a0, np.maximum(r_a0, 0)], 1)
    r_c2 = np.concatenate([r_c1, -r_c1], 1)
    r_c3 = np.concatenate([r_c2, 1 / (1 + np.exp(-r_c2))], 1)
    run_check(b.p, [xa], [-r_c3])
    assert placed(b.p) == 6
    info = b.p.plans()[0]
    # one slot: c3 (the Neg writes over it in place)
    assert info["arena_bytes"] == r_c3.nbytes


def test_input_read_after_concat_overwritten_in_place(rng):
    # y overwrites c in place, but a is read afterwards: a must keep its own buffer.
    b = Builder()
    x = b.v("x")
    a = b.step("Neg", [x])
    r = b.step("Relu", [x])
    c = b.step("Concat", [a, r], {"axis": 1})
    y = b.step("Neg", [c])  # in place over c (not a graph output)
    z = b.step("Transpose", [a], {"perm": [0, 1, 3, 2]})
    yt = b.step("Transpose", [y], {"perm": [0, 1, 3, 2]})
    b.p.set_io([x], [yt, z])
    xa = randn(rng, 1, 3, 4, 8)
    refs = [
        -np.concatenate([-xa, np.maximum(xa, 0)], 1).transpose(0, 1, 3, 2),
        (-xa).transpose(0, 1, 3, 2),
    ]
    run_check(b.p, [xa], refs)
    assert placed(b.p) == 1  # r only


def test_input_overwritten_in_place_later(rng):
    # a's last reader overwrites it in place after the Concat: a keeps its own buffer.
    b = Builder()
    x = b.v("x")
    a = b.step("Neg", [x])
    r = b.step("Relu", [x])
    c = b.step("Concat", [a, r], {"axis": 1})
    u = b.step("Transpose", [c], {"perm": [0, 1, 3, 2]})
    s = b.step("Sigmoid", [a])  # in place over a
    st = b.step("Transpose", [s], {"perm": [0, 1, 3, 2]})
    b.p.set_io([x], [u, st])
    xa = randn(rng, 1, 3, 4, 8)
    refs = [
        np.concatenate([-xa, np.maximum(xa, 0)], 1).transpose(0, 1, 3, 2),
        (1 / (1 + np.exp(xa))).transpose(0, 1, 3, 2),
    ]
    run_check(b.p, [xa], refs)
    assert placed(b.p) == 1  # r only


def test_input_read_by_later_ops(rng):
    # a and c are both read after the Concat (no in-place over c): a may still be a slab of c.
    b = Builder()
    x = b.v("x")
    a = b.step("Neg", [x])
    r = b.step("Relu", [x])
    c = b.step("Concat", [a, r], {"axis": 1})
    t = b.step("Transpose", [a], {"perm": [0, 1, 3, 2]})
    u = b.step("Transpose", [c], {"perm": [0, 1, 3, 2]})
    b.p.set_io([x], [t, u])
    xa = randn(rng, 1, 3, 4, 8)
    cc = np.concatenate([-xa, np.maximum(xa, 0)], 1)
    run_check(b.p, [xa], [(-xa).transpose(0, 1, 3, 2), cc.transpose(0, 1, 3, 2)])
    assert placed(b.p) == 2


def test_input_is_graph_output(rng):
    b = Builder()
    x = b.v("x")
    a = b.step("Neg", [x])
    r = b.step("Relu", [x])
    w = b.step("Sigmoid", [x])
    view = b.step("Reshape", [w], {"shape": [-1]})
    c = b.step("Concat", [a, r, w], {"axis": 2})
    y = b.step("Neg", [c])
    b.p.set_io([x], [y, a, view])
    xa = randn(rng, 1, 1, 4, 8)
    sig = 1 / (1 + np.exp(-xa))
    outs = run_check(
        b.p, [xa], [-np.concatenate([-xa, np.maximum(xa, 0), sig], 2), -xa, sig.reshape(-1)]
    )
    assert placed(b.p) == 2  # r and w (w's view is copied out); a has its own output buffer
    # outputs returned to Python never alias the arena: later runs leave them alone
    kept = [o.copy() for o in outs]
    b.p.run([randn(rng, 1, 1, 4, 8)])
    for o, k in zip(outs, kept, strict=True):
        np.testing.assert_array_equal(o, k)


def test_concat_output_is_graph_output(rng):
    b = Builder()
    x = b.v("x")
    a = b.step("Neg", [x])
    r = b.step("Relu", [x])
    c = b.step("Concat", [a, r], {"axis": 1})
    b.p.set_io([x], [c])
    xa = randn(rng, 1, 2, 8)
    run_check(b.p, [xa], [np.concatenate([-xa, np.maximum(xa, 0)], 1)])
    assert placed(b.p) == 0


def test_same_value_in_two_concats(rng):
    b = Builder()
    x = b.v("x")
    a = b.step("Neg", [x])
    r = b.step("Relu", [x])
    s = b.step("Sigmoid", [x])
    c1 = b.step("Concat", [a, r], {"axis": 1})
    c2 = b.step("Concat", [s, a], {"axis": 1})
    c3 = b.step("Concat", [a, a], {"axis": 1})  # read twice: never in place
    o = b.step("Add", [c1, c2])
    b.p.set_io([x], [o, c3])
    xa = randn(rng, 1, 2, 3, 8)
    sig = 1 / (1 + np.exp(-xa))
    ref = np.concatenate([-xa, np.maximum(xa, 0)], 1) + np.concatenate([sig, -xa], 1)
    run_check(b.p, [xa], [ref, np.concatenate([-xa, -xa], 1)])
    assert placed(b.p) == 3  # a and r in c1, s in c2


def test_batch_above_one_not_aliased_axis0_aliased(rng):
    for axis, shape, expect in [
        (1, (2, 3, 4, 8), 0),
        (0, (2, 3, 4, 8), 2),
        (-3, (1, 3, 4, 8), 2),
        (2, (1, 2, 4, 8), 0),
    ]:
        b = Builder()
        x = b.v("x")
        a = b.step("Neg", [x])
        r = b.step("Relu", [x])
        c = b.step("Concat", [a, r], {"axis": axis})
        y = b.step("Neg", [c])
        b.p.set_io([x], [y])
        xa = randn(rng, *shape)
        run_check(b.p, [xa], [-np.concatenate([-xa, np.maximum(xa, 0)], axis)])
        assert placed(b.p) == expect, (axis, shape)


def test_unaligned_slab_refused(rng):
    # a is 3 floats (12 bytes): r's slab would start at byte 12, so r keeps its own buffer.
    b = Builder()
    x = b.v("x")
    a = b.step("Neg", [x])
    r = b.step("Relu", [x])
    c = b.step("Concat", [a, r], {"axis": 1})
    y = b.step("Neg", [c])
    b.p.set_io([x], [y])
    xa = randn(rng, 1, 3)
    run_check(b.p, [xa], [-np.concatenate([-xa, np.maximum(xa, 0)], 1)])
    assert placed(b.p) == 1


def test_shapes_change_between_runs(rng):
    b = Builder()
    x = b.v("x")
    a = b.step("Neg", [x])
    f = b.step("Relu", [a])
    c1 = b.step("Concat", [a, f], {"axis": 1})
    f2 = b.step("Neg", [c1])
    c2 = b.step("Concat", [c1, f2], {"axis": 1})
    y = b.step("Neg", [c2])
    b.p.set_io([x], [y])

    def ref(xa):
        c1r = np.concatenate([-xa, np.maximum(-xa, 0)], 1)
        return -np.concatenate([c1r, -c1r], 1)

    shapes = [(1, 2, 4, 8), (1, 2, 6, 8), (3, 2, 4, 8), (1, 2, 4, 8), (1, 5, 2, 8), (3, 2, 4, 8)]
    for shape in shapes:
        xa = randn(rng, *shape)
        for _ in range(2):
            np.testing.assert_allclose(b.p.run([xa])[0], ref(xa), rtol=1e-6)
    by_shape = {info["feed_shapes"][0]: info["concat_inplace_inputs"] for info in b.p.plans()}
    assert by_shape == {(1, 2, 4, 8): 4, (1, 2, 6, 8): 4, (1, 5, 2, 8): 4, (3, 2, 4, 8): 0}


def test_sizes_not_fixed_by_signature(rng):
    # Slice ends come from feed values: one signature, different sizes per run. Slabs only
    # take their slot with exactly the planned size, and the Concat output only when every
    # input has its planned size (here 1+2+3 == 2+2+2 rows: same output shape, other layout).
    b = Builder()
    x = b.v("x")
    ends = [b.v(f"e{i}") for i in range(3)]
    starts = b.const("starts", np.array([0], np.int64))
    axes = b.const("axes", np.array([1], np.int64))
    parts = [b.step("Slice", [x, starts, e, axes]) for e in ends]
    c = b.step("Concat", parts, {"axis": 1})
    y = b.step("Neg", [c])
    b.p.set_io([x, *ends], [y])
    xa = randn(rng, 1, 8, 16)

    def ref(k):
        return -np.concatenate([xa[:, : k[0]], xa[:, : k[1]], xa[:, : k[2]]], 1)

    for k in [
        (2, 2, 2),
        (2, 2, 2),
        (1, 2, 3),
        (2, 2, 2),
        (3, 2, 1),
        (4, 4, 4),
        (2, 2, 2),
        (2, 4, 2),
    ]:
        feeds = [xa] + [np.array([v], np.int64) for v in k]
        np.testing.assert_allclose(b.p.run(feeds)[0], ref(k), rtol=1e-6)
    assert placed(b.p) == 3


def _block_program(threads):
    b = Builder(threads)
    x = b.v("x")
    cur = b.step("Neg", [x])
    for i in range(4):
        f = b.step(["Relu", "Sigmoid", "Neg", "Tanh"][i], [cur])
        cur = b.step("Concat", [cur, f], {"axis": 1})
    y = b.step("Transpose", [cur], {"perm": [0, 1, 3, 2]})
    b.p.set_io([x], [y])
    return b.p


def _block_ref(xa):
    cur = -xa
    for fn in (lambda t: np.maximum(t, 0), lambda t: 1 / (1 + np.exp(-t)), np.negative, np.tanh):
        cur = np.concatenate([cur, fn(cur)], 1)
    return cur.transpose(0, 1, 3, 2)


def test_two_kernel_threads(rng):
    p = _block_program(2)
    xa = randn(rng, 1, 8, 33, 40)
    for _ in range(3):
        np.testing.assert_allclose(p.run([xa])[0], _block_ref(xa), rtol=1e-5, atol=1e-6)
    assert placed(p) == 8


def test_python_threads_share_program(rng):
    p = _block_program(2)
    inputs = [randn(rng, 1, 4, 16, 24) for _ in range(4)]
    refs = [_block_ref(a) for a in inputs]

    def worker(k):
        for i in range(30):
            j = (k + i) % len(inputs)
            np.testing.assert_allclose(p.run([inputs[j]])[0], refs[j], rtol=1e-5, atol=1e-6)

    run_in_threads(worker, 3)
    assert placed(p) == 8
