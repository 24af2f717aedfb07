"""Shared checks for pass tests: run a pass, verify, compare with onnxruntime, re-run.

``run_pass`` checks one pass on a hand-built graph; ``run_pipeline`` checks the last pass of a
sequence on a real model. Both assert the properties every pass keeps: the verifier passes, the
graph outputs keep their names, and running the pass a second time changes nothing."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import infopt
from infopt.ir import Model, model_to_proto, serde, verify
from infopt.passes import create
from infopt.passes.pipelines import O2
from infopt.testing import hf_models
from infopt.testing.compare import relative_l2
from infopt.testing.inputs import random_feeds
from infopt.testing.models import random_weight_model
from infopt.testing.oracle import ort_run

F = TensorProto.FLOAT


def run_pass(name, proto, *, before=("infer_shapes",), rtol=1e-5, seeds=(0, 1)):
    """Run the pass ``name`` (a registered name or a Pass class) on ``proto``; check the
    verifier, output names, idempotence and numerics against onnxruntime (ORT_DISABLE_ALL) on
    random feeds drawn with each of ``seeds``. Returns (model, result)."""
    if isinstance(proto, Model):
        proto = model_to_proto(proto)
    model = infopt.load(proto)
    for p in before:
        create(p).run(model)
    names = [v.name for v in model.graph.outputs]
    result = _create(name).run(model)
    _check_properties(name, model, names)
    for seed in seeds:
        feeds = random_feeds(infopt.load(proto), seed=seed)
        _compare(proto, model, feeds, rtol, f"seed {seed}")
    return model, result


def run_pipeline(source, passes, feeds, *, rtol):
    """Run ``passes`` in order on the model ``source`` (a path or proto), verifying after each;
    check the last pass's properties as ``run_pass`` does and compare every output with the
    original model in onnxruntime for each dict in ``feeds``. Returns (model, last result)."""
    model = infopt.load(source)
    names = [v.name for v in model.graph.outputs]
    for p in passes:
        result = create(p).run(model)
        verify(model)
    data = _check_properties(passes[-1], model, names)
    original = (
        str(source) if not isinstance(source, onnx.ModelProto) else source.SerializeToString()
    )
    want_session, got_session = ort_session(original), ort_session(data)
    for i, f in enumerate(feeds):
        wants, gots = want_session.run(None, f), got_session.run(None, f)
        for j, (want, got) in enumerate(zip(wants, gots, strict=True)):
            err = relative_l2(want, got)
            assert err <= rtol, f"feeds #{i}, output {j}: relative L2 {err:.3g} > {rtol}"
    return model, result


def ort_session(model: str | bytes):
    """One onnxruntime session at ORT_DISABLE_ALL (as ``ort_run``), reused across feeds: a real
    model's session takes longer to build than to run."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def o2_until(name: str) -> list[str]:
    """The -O2 pipeline up to and including the first run of ``name``."""
    return O2[: O2.index(name) + 1]


def light_model(name: str, seed: int = 0):
    """A light model with random weights and two random feeds for it (never all zeros/ones)."""
    path = random_weight_model(name, seed)
    model = infopt.load(path)
    return path, [random_feeds(model, seed=s) for s in (seed, seed + 1)]


def hf_model(name: str):
    """The TorchScript export of minilm or gpt2 (cached) and two feeds of random token ids, the
    last row of each right-padded; skips when the export is neither cached nor possible here."""
    try:
        path = hf_models.model_path(name, "torchscript")
    except ImportError:
        pytest.skip("the transformer export is not cached and torch is not installed")
    low, vocab = (1000, 30522) if name == "minilm" else (1, 1000)
    feeds = []
    for seed, (batch, seq) in enumerate([(2, 9), (3, 16)]):
        rng = np.random.default_rng(seed)
        mask = np.ones((batch, seq), dtype=np.int64)
        mask[-1, seq - 3 :] = 0
        ids = rng.integers(low, vocab, size=(batch, seq), dtype=np.int64)
        feeds.append({"input_ids": ids, "attention_mask": mask})
    return path, feeds


def _create(name):
    return create(name) if isinstance(name, str) else name()


def _check_properties(name, model, names):
    verify(model)
    assert [v.name for v in model.graph.outputs] == names, f"{name} renamed a graph output"
    snapshot = serde.to_bytes(model)
    again = _create(name).run(model)
    assert again.modified is False, f"{name} changed the graph on a second run"
    assert serde.to_bytes(model) == snapshot
    return snapshot


def _compare(original, model, feeds, rtol, label):
    for i, (want, got) in enumerate(
        zip(ort_run(original, feeds), ort_run(model, feeds), strict=True)
    ):
        err = relative_l2(want, got)
        assert err <= rtol, f"{label}, output {i}: relative L2 {err:.3g} > {rtol}"


def graph_model(nodes, inputs, outputs, inits=(), *, opset=17, domains=()):
    """A model from ``nodes``: inputs as (name, shape) or (name, shape, elem type); outputs as
    names (float, shape left to inference) or (name, elem type); initializers as (name, array);
    ``domains`` adds opset imports at version 1. No checker run."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(i[0], i[2] if len(i) > 2 else F, i[1]) for i in inputs],
        [
            helper.make_tensor_value_info(o, F, None)
            if isinstance(o, str)
            else helper.make_tensor_value_info(o[0], o[1], None)
            for o in outputs
        ],
        initializer=[numpy_helper.from_array(np.asarray(a), n) for n, a in inits],
    )
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=opsets)


def bn_params(c=8, seed=1):
    """BatchNormalization's scale, bias, mean and var initializers for ``c`` channels (names
    s, t, mu, var), the scale and variance in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    return [
        ("s", rng.uniform(0.5, 1.5, c).astype(np.float32)),
        ("t", rand(c, seed=seed + 1)),
        ("mu", rand(c, seed=seed + 2)),
        ("var", rng.uniform(0.5, 1.5, c).astype(np.float32)),
    ]


def ops(model) -> list[str]:
    return [n.qualified_op for n in model.graph.nodes]


def rand(*shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def attention_core(q, kt, v, y, mask=True, softmax_axis=-1):
    """Nodes of softmax(q @ kt / scale [+ mask]) @ v -> y, as the torch exporters write them
    (inputs ``scale`` and ``mask`` by those names)."""
    nodes = [
        helper.make_node("MatMul", [q, kt], ["s"]),
        helper.make_node("Div", ["s", "scale"], ["ss"]),
    ]
    last = "ss"
    if mask:
        nodes.append(helper.make_node("Add", ["ss", "mask"], ["sm"]))
        last = "sm"
    return nodes + [
        helper.make_node("Softmax", [last], ["p"], axis=softmax_axis),
        helper.make_node("MatMul", ["p", v], [y]),
    ]
