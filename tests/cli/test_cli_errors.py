"""infopt-compile on bad input: exit status 2, exactly one line on stderr naming the problem, no
output file created, and an existing output file left byte for byte as it was.

Each case runs the CLI twice at once in subprocesses: once towards a fresh output path and once
towards an output file pre-filled with sentinel bytes.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import set_external_data

from infopt.testing.models import resolve

SENTINEL = b"\x00sentinel: must survive a failed compile\xff" * 3
PREFIX = "infopt-compile: error:"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("INFOPT_DEBUG", None)  # it would turn an internal error into a traceback
    return env


def _launch(args: list[str], cwd: Path, script: str | None = None) -> subprocess.Popen:
    cmd = [script] if script else [sys.executable, "-m", "infopt.cli"]
    return subprocess.Popen(
        [*cmd, *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def _finish(proc: subprocess.Popen) -> Result:
    out, err = proc.communicate(timeout=120)
    return Result(proc.returncode, out, err)


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _assert_refused(res: Result, keyword: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(PREFIX), lines[0]
    assert keyword.lower() in lines[0].lower(), lines[0]
    assert res.stdout == "", res.stdout


def _run_fresh_and_existing(
    tmp_path: Path, inputs: list[str], keyword: str, script: str | None = None
) -> None:
    """Run towards a fresh output and towards a sentinel-filled one concurrently; check both."""
    fresh, existing = tmp_path / "fresh", tmp_path / "existing"
    fresh.mkdir()
    existing.mkdir()
    (existing / "out.opt").write_bytes(SENTINEL)
    procs = [
        _launch([*inputs[:1], "-o", str(folder / "out.opt"), *inputs[1:]], tmp_path, script)
        for folder in (fresh, existing)
    ]
    results = [_finish(p) for p in procs]
    for res in results:
        _assert_refused(res, keyword)
    assert _listing(fresh) == {}, "a failed compile created files"
    assert _listing(existing) == {"out.opt": SENTINEL}, "a failed compile touched the output"


# ---------------------------------------------------------------------------------- inputs --
def _squeezenet_bytes() -> bytes:
    return resolve("squeezenet").read_bytes()


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / "in" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _graph_model(build, nodes, opset: int = 17) -> bytes:
    return build(nodes, opset=opset).SerializeToString()


def _missing(tmp_path: Path, build) -> list[str]:
    return [str(tmp_path / "in" / "nope.onnx")]


def _text_file(tmp_path: Path, build) -> list[str]:
    return [_write(tmp_path, "notes.onnx", b"this is a text file, not a model\n" * 20)]


def _truncated(tmp_path: Path, build) -> list[str]:
    data = _squeezenet_bytes()
    return [_write(tmp_path, "half.onnx", data[: len(data) // 2])]


def _corrupt(tmp_path: Path, build) -> list[str]:
    data = np.random.default_rng(1234).bytes(4096)
    return [_write(tmp_path, "noise.onnx", data)]


def _empty(tmp_path: Path, build) -> list[str]:
    return [_write(tmp_path, "empty.onnx", b"")]


def _cyclic(tmp_path: Path, build) -> list[str]:
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="n1"),
        helper.make_node("Relu", ["a"], ["y"], name="n2"),
        helper.make_node("Neg", ["y"], ["b"], name="n3"),
    ]
    return [_write(tmp_path, "cycle.onnx", _graph_model(build, nodes))]


def _unknown_op(tmp_path: Path, build) -> list[str]:
    nodes = [helper.make_node("FrobnicateTensor", ["x"], ["y"], name="frob")]
    return [_write(tmp_path, "unknown.onnx", _graph_model(build, nodes))]


def _opset_999(tmp_path: Path, build) -> list[str]:
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    return [_write(tmp_path, "future.onnx", _graph_model(build, nodes, opset=999))]


def _tiny_valid(tmp_path: Path, build) -> str:
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    return _write(tmp_path, "tiny.onnx", _graph_model(build, nodes))


def _bad_level(tmp_path: Path, build) -> list[str]:
    return [_tiny_valid(tmp_path, build), "-O", "7"]


def _unknown_pass(tmp_path: Path, build) -> list[str]:
    return [_tiny_valid(tmp_path, build), "--passes", "fold_constants,no_such_pass"]


def _unknown_target(tmp_path: Path, build) -> list[str]:
    return [_tiny_valid(tmp_path, build), "--target", "tpu"]


CASES: list[tuple[str, Callable[..., list[str]], str]] = [
    ("missing-file", _missing, "no such file"),
    ("text-file", _text_file, "not a valid ONNX model"),
    ("truncated-protobuf", _truncated, "not a valid ONNX model"),
    ("corrupt-protobuf", _corrupt, "not a valid ONNX model"),
    ("empty-file", _empty, "empty"),
    ("cyclic-graph", _cyclic, "cycle"),
    ("unknown-op", _unknown_op, "FrobnicateTensor"),
    ("opset-999", _opset_999, "opset 999"),
    ("unknown-pass", _unknown_pass, "no_such_pass"),
]


@pytest.mark.parametrize(("setup", "keyword"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused(tmp_path, model_builder, setup, keyword):
    _run_fresh_and_existing(tmp_path, setup(tmp_path, model_builder), keyword)


@pytest.mark.parametrize(
    ("setup", "keyword"),
    [
        pytest.param(_bad_level, "-O", id="bad-O-level"),
        pytest.param(_unknown_target, "target", id="unknown-target"),
    ],
)
def test_bad_option_value_is_refused_in_one_line(tmp_path, model_builder, setup, keyword):
    _run_fresh_and_existing(tmp_path, setup(tmp_path, model_builder), keyword)


@pytest.mark.parametrize(
    ("setup", "keyword"),
    [(_bad_level, "-O"), (_unknown_target, "tpu")],
    ids=["bad-O-level", "unknown-target"],
)
def test_bad_option_value_exits_2_and_writes_nothing(tmp_path, model_builder, setup, keyword):
    """What holds of argparse's refusals today (the one-line rule aside): status 2, the last
    line names the option, and no output is created or touched."""
    fresh, existing = tmp_path / "fresh", tmp_path / "existing"
    fresh.mkdir()
    existing.mkdir()
    (existing / "out.opt").write_bytes(SENTINEL)
    args = setup(tmp_path, model_builder)
    procs = [
        _launch([args[0], "-o", str(f / "out.opt"), *args[1:]], tmp_path) for f in (fresh, existing)
    ]
    for res in map(_finish, procs):
        assert res.returncode == 2
        last = res.stderr.strip().splitlines()[-1]
        assert last.startswith(PREFIX) and keyword in last, res.stderr
    assert _listing(fresh) == {}
    assert _listing(existing) == {"out.opt": SENTINEL}


def test_external_data_outside_model_folder_is_refused(tmp_path):
    folder = tmp_path / "in" / "model"
    folder.mkdir(parents=True)
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    (tmp_path / "in" / "secret.bin").write_bytes(weight.tobytes())
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    tensor = model.graph.initializer[0]
    set_external_data(tensor, location="../secret.bin")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    _run_fresh_and_existing(tmp_path, [str(folder / "model.onnx")], "outside")


# --------------------------------------------------------------------------------- outputs --
def _single(tmp_path: Path, out: Path, build) -> Result:
    return _finish(_launch([_tiny_valid(tmp_path, build), "-o", str(out)], tmp_path))


def test_output_folder_does_not_exist(tmp_path, model_builder):
    out = tmp_path / "no" / "such" / "folder" / "out.opt"
    res = _single(tmp_path, out, model_builder)
    _assert_refused(res, "does not exist")
    assert not (tmp_path / "no").exists()


def test_output_is_a_directory(tmp_path, model_builder):
    out = tmp_path / "out.opt"
    out.mkdir()
    (out / "keep.txt").write_bytes(SENTINEL)
    res = _single(tmp_path, out, model_builder)
    _assert_refused(res, "directory")
    assert _listing(out) == {"keep.txt": SENTINEL}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out.opt"]


def test_output_folder_not_writable(tmp_path, model_builder):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "out.opt").write_bytes(SENTINEL)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("chmod does not stop this user (root?) from writing")
        model = _tiny_valid(tmp_path, model_builder)
        fresh = _launch([model, "-o", str(folder / "new.opt")], tmp_path)
        existing = _launch([model, "-o", str(folder / "out.opt")], tmp_path)
        for res in (_finish(fresh), _finish(existing)):
            _assert_refused(res, "permission denied")
        assert _listing(folder) == {"out.opt": SENTINEL}
    finally:
        folder.chmod(stat.S_IRWXU)


def test_output_not_writable_message_even_as_root(tmp_path, model_builder, monkeypatch, capsys):
    """Root ignores chmod; pretend the folder is read-only to check the in-process path."""
    import infopt.cli

    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "out.opt").write_bytes(SENTINEL)
    real_access = os.access

    def access(path, mode, *a, **kw):
        if mode & os.W_OK and Path(path).resolve().is_relative_to(folder.resolve()):
            return False
        return real_access(path, mode, *a, **kw)

    monkeypatch.setattr(os, "access", access)
    for name in ("out.opt", "new.opt"):
        code = infopt.cli.main(
            [_tiny_valid(tmp_path, model_builder), "-o", str(folder / name), "-q"]
        )
        captured = capsys.readouterr()
        assert code == 2
        assert captured.err.count("\n") == 1 and "permission denied" in captured.err
    assert _listing(folder) == {"out.opt": SENTINEL}


# ----------------------------------------------------------------------- the console script --
def _console_script() -> str | None:
    found = shutil.which("infopt-compile")
    if found:
        return found
    beside = Path(sys.executable).parent / "infopt-compile"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def test_console_script_refuses_corrupt_input(tmp_path, model_builder):
    script = _console_script()
    if script is None:
        pytest.skip("the infopt-compile console script is not installed")
    inputs = _corrupt(tmp_path, model_builder)
    _run_fresh_and_existing(tmp_path, inputs, "not a valid ONNX model", script)
