"""infopt-compile success paths: the output is valid ONNX with infopt's metadata, lowered for the
target, and computes what the original computes (onnxruntime on both).

The level x target matrix runs ``infopt.cli.main`` in-process (fast); a few end-to-end runs go
through ``python -m infopt.cli`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import infopt
import infopt.cli
from infopt.passes import pipeline
from infopt.testing.compare import relative_l2
from infopt.testing.models import random_weight_model, resolve

SQUEEZENET_FUSIONS = 26  # Conv+Relu pairs in light_squeezenet


def _launch(args: list[str], cwd: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("INFOPT_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "infopt.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def _all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from _all_nodes(g)


def _check_output(
    path: Path,
    *,
    target: str,
    level: int,
    passes: list[str] | None = None,
) -> onnx.ModelProto:
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["infopt.version"] == infopt.__version__
    assert meta["infopt.target"] == target
    assert meta["infopt.level"] == str(level)
    records = json.loads(meta["infopt.passes"])
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    expected = pipeline(level, target, opset) if passes is None else passes
    assert [r["pass"] for r in records] == expected
    infopt_nodes = [n for n in _all_nodes(model.graph) if n.domain == "infopt"]
    if target == "onnx":
        assert infopt_nodes == []
        assert list(model.functions) == []
        assert "infopt" not in {o.domain for o in model.opset_import}
    else:
        defined = {(f.domain, f.name) for f in model.functions}
        for node in infopt_nodes:
            assert (node.domain, node.op_type) in defined, node.op_type
        if infopt_nodes:
            assert "infopt" in {o.domain for o in model.opset_import}
    return model


@pytest.mark.parametrize("target", ["cpu", "onnx", "cuda"])
@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_level_and_target_matrix(tmp_path, capsys, level, target):
    out = tmp_path / "x.opt"
    code = infopt.cli.main(["squeezenet", "-o", str(out), f"-O{level}", "--target", target])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    assert f"-> {out}" in captured.out
    assert f"(-O{level}, target {target})" in captured.out
    model = _check_output(out, target=target, level=level)
    infopt_ops = [n for n in model.graph.node if n.domain == "infopt"]
    if "layout_nchwc" in pipeline(level, target):  # cpu, when _C has the NCHWc kernels
        convs = [n.op_type for n in infopt_ops if "Conv" in n.op_type]
        assert convs == ["NchwcConvNchwRelu"] + ["NchwcConvRelu"] * (SQUEEZENET_FUSIONS - 1)
        assert {f.name for f in model.functions} == {n.op_type for n in infopt_ops}
    elif target in ("cpu", "cuda") and level >= 2:
        assert len(infopt_ops) == SQUEEZENET_FUSIONS
        assert {n.op_type for n in infopt_ops} == {"FusedConvRelu"}
        assert {(f.domain, f.name) for f in model.functions} == {("infopt", "FusedConvRelu")}
    elif target == "onnx" and level >= 2:
        # inlined: the fused ops are back to their standard decomposition
        assert sum(n.op_type == "Conv" for n in model.graph.node) == SQUEEZENET_FUSIONS
    if level == 0:
        original = onnx.load(str(resolve("squeezenet")))
        assert [n.op_type for n in model.graph.node] == [n.op_type for n in original.graph.node]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.opt"]  # no temporary leftovers


def test_subprocess_by_bare_name_and_by_relative_path(tmp_path):
    (tmp_path / "out").mkdir()
    by_name = _launch(["squeezenet", "-o", "out/a.opt", "--target", "cpu"], tmp_path)
    by_path = _launch(
        [str(resolve("squeezenet")), "-o", "out/b.opt", "-O3", "--target", "onnx"], tmp_path
    )
    for proc in (by_name, by_path):
        code, out, err = _finish(proc)
        assert code == 0, err
        assert err == ""
        assert "total:" in out
    model = _check_output(tmp_path / "out" / "a.opt", target="cpu", level=2)
    convs = sum(n.domain == "infopt" and "Conv" in n.op_type for n in model.graph.node)
    assert convs == SQUEEZENET_FUSIONS
    _check_output(tmp_path / "out" / "b.opt", target="onnx", level=3)


def test_existing_output_is_replaced(tmp_path, capsys):
    out = tmp_path / "x.opt"
    out.write_bytes(b"old contents")
    assert infopt.cli.main(["squeezenet", "-o", str(out), "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    _check_output(out, target="cpu", level=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.opt"]


def test_quiet_prints_nothing(tmp_path, capsys):
    assert infopt.cli.main(["squeezenet", "-o", str(tmp_path / "x.opt"), "-q"]) == 0
    assert capsys.readouterr() == ("", "")


def test_print_ir_after_one_pass(tmp_path, capsys):
    code = infopt.cli.main(
        [
            "squeezenet",
            "-o",
            str(tmp_path / "x.opt"),
            "-q",
            "--print-ir-after",
            "fuse_conv_activation",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0
    headers = [line for line in err.splitlines() if line.startswith("// IR after")]
    assert headers == ["// IR after fuse_conv_activation (modified=True)"]
    assert "graph " in err
    assert err.count(" = infopt.FusedConvRelu(") == SQUEEZENET_FUSIONS


def test_print_ir_after_all(tmp_path, capsys):
    code = infopt.cli.main(
        ["squeezenet", "-o", str(tmp_path / "x.opt"), "-q", "-O1", "--print-ir-after", "all"]
    )
    err = capsys.readouterr().err
    assert code == 0
    headers = [line.split()[3] for line in err.splitlines() if line.startswith("// IR after")]
    assert headers == pipeline(1)


def test_explicit_passes_run_only_those(tmp_path, capsys):
    out = tmp_path / "x.opt"
    code = infopt.cli.main(
        ["squeezenet", "-o", str(out), "--passes", "fold_constants,eliminate_dead_code"]
    )
    stdout = capsys.readouterr().out
    assert code == 0
    _check_output(out, target="cpu", level=2, passes=["fold_constants", "eliminate_dead_code"])
    assert "fold_constants" in stdout and "eliminate_dead_code" in stdout
    for other in ("infer_shapes", "fuse_conv_activation", "remove_identity"):
        assert other not in stdout
    model = onnx.load(str(out))
    assert not any(n.domain == "infopt" for n in model.graph.node)


def test_help_exits_0():
    code, out, err = _finish(_launch(["--help"], Path.cwd()))
    assert code == 0, err
    assert out.startswith("usage: infopt-compile")
    for flag in ("--target", "--passes", "--print-ir-after", "-O"):
        assert flag in out


# ----------------------------------------------------------------------------- numerics --
def _ort_session(path: Path):
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(
    ("name", "target", "expect_infopt_ops"),
    [("squeezenet", "cpu", True), ("resnet50", "onnx", False)],
)
def test_compiled_model_matches_original_in_onnxruntime(tmp_path, name, target, expect_infopt_ops):
    seed = 0
    # with_random_weights, generated once into the model cache: the bundled 0.02 constant
    # weights would make the comparison weak
    source = random_weight_model(name, seed=seed)
    out = tmp_path / f"{name}.opt"
    code, _, err = _finish(
        _launch([str(source), "-o", str(out), "--target", target, "-q"], tmp_path)
    )
    assert code == 0, err
    compiled = onnx.load(str(out))
    assert any(n.domain == "infopt" for n in compiled.graph.node) == expect_infopt_ops
    original_sess, compiled_sess = _ort_session(source), _ort_session(out)
    inp = original_sess.get_inputs()[0]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(inp.shape).astype(np.float32)
    expected = original_sess.run(None, {inp.name: x})
    actual = compiled_sess.run(None, {inp.name: x})
    assert len(expected) == len(actual)
    for e, a in zip(expected, actual, strict=True):
        assert np.std(e) > 0, "degenerate reference output: the comparison would be vacuous"
        err_l2 = relative_l2(e, a)
        assert err_l2 <= 1e-4, f"{name} seed={seed}: relative L2 error {err_l2:.3g} > 1e-4"
