"""resolve_dynamic_shapes: run-time shape arithmetic of dynamic exports made constant."""

from __future__ import annotations

import onnx
import onnx.parser
import pytest

import infopt
from infopt.ir import serde, verify
from infopt.passes import create
from infopt.testing import hf_models
from infopt.testing.compare import relative_l2
from infopt.testing.inputs import random_feeds
from infopt.testing.oracle import ort_run

pytest.importorskip("onnxruntime")

RTOL = 1e-6  # the rewrites move no arithmetic: outputs must agree to rounding
SIZES = ({"batch": 3, "seq": 5}, {"batch": 1, "seq": 7}, {"batch": 4, "seq": 1})


def _parse(text: str) -> onnx.ModelProto:
    return onnx.parser.parse_model('<ir_version: 8, opset_import: ["" : 17]>\n' + text)


def _run(proto, before=("infer_shapes",)):
    """Run the pass (after ``before``), check verifier, idempotence, output names, and outputs
    against onnxruntime at several batch/sequence sizes. Returns (model, stats)."""
    model = infopt.load(proto)
    for name in before:
        create(name).run(model)
    names = [v.name for v in model.graph.outputs]
    result = create("resolve_dynamic_shapes").run(model)
    verify(model)
    assert [v.name for v in model.graph.outputs] == names
    snapshot = serde.to_bytes(model)
    assert create("resolve_dynamic_shapes").run(model).modified is False
    assert serde.to_bytes(model) == snapshot
    create("eliminate_dead_code").run(model)
    for seed, dims in enumerate(SIZES):
        feeds = random_feeds(infopt.load(proto), seed=seed, dims=dims)
        for want, got in zip(ort_run(proto, feeds), ort_run(model, feeds), strict=True):
            assert want.shape == got.shape
            assert relative_l2(want, got) <= RTOL
    return model, result


def _ops(model) -> list[str]:
    return [n.op_type for n in model.graph.nodes]


HEAD_SPLIT = """
g (float[batch, seq, 384] x) => (float[batch, seq, 12, 32] y) {
    s = Shape(x)
    i0 = Constant<value = int64[1] {0}>()
    i1 = Constant<value = int64[1] {1}>()
    b = Gather<axis = 0>(s, i0)
    n = Gather<axis = 0>(s, i1)
    heads = Constant<value = int64[2] {12, 32}>()
    target = Concat<axis = 0>(b, n, heads)
    y = Reshape(x, target)
}
"""


def test_head_split_reshape_gets_constant_target():
    model, result = _run(_parse(HEAD_SPLIT))
    assert result.stats["reshape_targets"] == 1
    assert _ops(model) == ["Reshape"]
    target = model.graph.nodes[0].inputs[1].const.numpy().tolist()
    assert target == [0, 0, 12, 32]


def test_merge_heads_uses_minus_one_for_the_product():
    proto = _parse(
        """
        g (float[batch, seq, 12, 32] x) => (float[batch, seq, 384] y) {
            s = Shape<start = 0, end = 2>(x)
            tail = Constant<value = int64[1] {-1}>()
            target = Concat<axis = 0>(s, tail)
            y = Reshape(x, target)
        }
        """
    )
    model, result = _run(proto)
    assert result.stats["reshape_targets"] == 1
    assert model.graph.nodes[0].inputs[1].const.numpy().tolist() == [0, 0, -1]


EXPAND_GUARD = """
g (int64[batch, seq] ids) => (int64[batch, seq] y) {
    s = Shape(ids)
    minus = Constant<value = int64[2] {-1, -1}>()
    ones = Constant<value = int64[2] {1, 1}>()
    is_neg = Equal(s, minus)
    target = Where(is_neg, ones, s)
    y0 = Expand(ids, target)
    y = Add(y0, ids)
}
"""


def test_torch_expand_guard_folds_and_expand_goes():
    model, result = _run(_parse(EXPAND_GUARD))
    assert result.stats["expands_removed"] == 1
    assert _ops(model) == ["Add"]


def test_flatten_unflatten_around_elementwise_cancels():
    proto = _parse(
        """
        g (float[batch, seq, 64] x, float[64, 96] w) => (float[batch, seq, 96] y) {
            flat = Constant<value = int64[2] {-1, 64}>()
            x2 = Reshape(x, flat)
            h = MatMul(x2, w)
            s = Shape<start = 0, end = 2>(x)
            width = Constant<value = int64[1] {96}>()
            unflat = Concat<axis = 0>(s, width)
            h3 = Reshape<allowzero = 1>(h, unflat)
            k = Constant<value = float {0.5}>()
            t = Tanh(h3)
            g1 = Mul(t, k)
            g2 = Add(g1, h3)
            flat2 = Constant<value = int64[2] {-1, 96}>()
            h4 = Reshape(g2, flat2)
            out = MatMul(h4, wo)
            y = Reshape<allowzero = 1>(out, unflat)
        }
        """.replace("float[64, 96] w)", "float[64, 96] w, float[96, 96] wo)")
    )
    model, result = _run(proto, before=("fold_constants", "infer_shapes"))
    assert result.stats["reshape_pairs_cancelled"] == 1
    assert _ops(model).count("Reshape") == 2  # the flatten in, the unflatten of the output


def test_unrelated_symbols_are_left_alone():
    # the target comes from another input's shape: nothing says m, n relate to a, b
    proto = _parse(
        """
        g (float[a, b] x, float[m, n] z) => (float[m, n] y) {
            s = Shape(z)
            y = Reshape(x, s)
        }
        """
    )
    model = infopt.load(proto)
    create("infer_shapes").run(model)
    assert create("resolve_dynamic_shapes").run(model).modified is False


def test_expand_that_broadcasts_stays():
    proto = _parse(
        """
        g (float[1, seq] x, float[batch, seq] z) => (float[batch, seq] y) {
            s = Shape(z)
            y = Expand(x, s)
        }
        """
    )
    model = infopt.load(proto)
    create("infer_shapes").run(model)
    assert create("resolve_dynamic_shapes").run(model).modified is False


def test_allowzero_reshape_needs_no_zero_copy():
    # allowzero=1 forbids writing 0 for "copy this dim"; with two unknown dims there is no
    # constant target, so the node stays
    proto = _parse(
        """
        g (float[batch, seq, 384] x) => (float[batch, seq, 12, 32] y) {
            s = Shape<start = 0, end = 2>(x)
            heads = Constant<value = int64[2] {12, 32}>()
            target = Concat<axis = 0>(s, heads)
            y = Reshape<allowzero = 1>(x, target)
        }
        """
    )
    model = infopt.load(proto)
    create("infer_shapes").run(model)
    assert create("resolve_dynamic_shapes").run(model).modified is False


@pytest.mark.skipif(not hf_models.available(), reason="transformers/torch not installed")
@pytest.mark.parametrize(
    "name, exporter, expected",
    [
        # every layer's head split/merge Reshape (6 layers x 4) and the embedding/mask Expands
        ("minilm", "torchscript", {"reshape_targets": 24, "expands_removed": 1}),
        # the flatten/unflatten Reshapes around each MLP's GELU (2 layers)
        ("gpt2", "dynamo", {"reshape_pairs_cancelled": 2}),
    ],
)
def test_transformer_shape_chains_resolve(name, exporter, expected):
    path = hf_models.model_path(name, exporter)
    model = infopt.load(path)
    for p in ("infer_shapes", "freeze_initializer_inputs", "fold_constants"):
        create(p).run(model)
    result = create("resolve_dynamic_shapes").run(model)
    verify(model)
    create("eliminate_dead_code").run(model)
    for key, at_least in expected.items():
        assert result.stats[key] >= at_least, result.stats
    for batch, length in ((1, 9), (3, 16)):
        if name == "minilm":
            feeds = hf_models.sentence_feeds(batch, length)
        else:
            feeds = hf_models.decoder_feeds(batch, length)
        want, got = ort_run(path, feeds)[0], ort_run(model, feeds)[0]
        assert relative_l2(want, got) <= 1e-6


def test_overlapping_sandwiches_keep_the_analysis_truthful():
    # random graph seed 1383: after the first flatten/unflatten pair cancels, the Tanh runs on
    # the flat tensor; the next Reshape must not then be taken for an identity
    proto = _parse(
        """
        g (float[2, 2, 4] x) => (float[1, 2, 2, 4] y) {
            flat = Constant<value = int64[1] {-1}>()
            full = Constant<value = int64[3] {2, 2, 4}>()
            a = Reshape(x, flat)
            b = Reshape(a, full)
            t = Tanh(b)
            c = Reshape(t, flat)
            d = Reshape(c, full)
            zero = Constant<value = int64[1] {0}>()
            y = Unsqueeze(d, zero)
        }
        """
    )
    model, result = _run(proto, before=("fold_constants", "infer_shapes"))
    assert result.stats["reshape_pairs_cancelled"] >= 1
