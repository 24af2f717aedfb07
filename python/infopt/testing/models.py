"""The model zoo available without downloads: the real architectures shipped in the onnx wheel.

A bare name (``resnet50``) resolves to ``onnx/backend/test/data/light/light_resnet50.onnx``.
Their weights are ConstantOfShape fills of 0.02; ``with_random_weights`` swaps those for seeded
random tensors so that numerical tests exercise real arithmetic.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

LIGHT_MODELS = [
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
]


def light_dir() -> Path:
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A path as given, or the light model of that bare name."""
    path = Path(name_or_path)
    if path.exists() or path.suffix or os.sep in str(name_or_path):
        return path
    for candidate in (f"light_{name_or_path}.onnx", f"light_bvlc_{name_or_path}.onnx"):
        if (light_dir() / candidate).exists():
            return light_dir() / candidate
    return path


def with_random_weights(path: str | os.PathLike, seed: int = 0) -> onnx.ModelProto:
    """The light model with each ConstantOfShape weight replaced by a random initializer scaled
    so activations stay O(1) through deep networks (variance-preserving fan-in scaling).
    BatchNorm variances are made positive."""
    model = onnx.load(str(path))
    rng = np.random.default_rng(seed)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    keep = []
    new_inits = []
    for node in graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in inits:
            keep.append(node)
            continue
        shape = tuple(int(d) for d in numpy_helper.to_array(inits[node.input[0]]))
        name = node.output[0]
        if len(shape) >= 2:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 2 else shape[-1]
            array = rng.standard_normal(shape, dtype=np.float32)
            array *= np.float32(np.sqrt(1.0 / max(fan_in, 1)))
        elif name.endswith(("_riv_0", "_var_0")) or "var" in name.rsplit("/", 1)[-1]:
            array = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("_s_0", "_scale_0")) or "scale" in name:
            array = rng.uniform(0.5, 1.5, shape)
        else:
            array = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)
        new_inits.append(numpy_helper.from_array(array.astype(np.float32), name))
    del graph.node[:]
    graph.node.extend(keep)
    used = {i for n in graph.node for i in n.input}
    shape_inits = [
        t for t in graph.initializer if t.name.endswith("__SHAPE") and t.name not in used
    ]
    drop = {t.name for t in shape_inits}
    remaining = [t for t in graph.initializer if t.name not in drop]
    del graph.initializer[:]
    graph.initializer.extend(remaining + new_inits)
    inputs = [i for i in graph.input if i.name not in drop]
    del graph.input[:]
    graph.input.extend(inputs)
    for t in new_inits:
        if not any(i.name == t.name for i in graph.input):
            graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, t.dims))
    return model


def cache_dir() -> Path:
    """Where generated models go (never into git): $INFOPT_CACHE or ~/.cache/infopt."""
    root = Path(os.environ.get("INFOPT_CACHE", Path.home() / ".cache" / "infopt"))
    (root / "models").mkdir(parents=True, exist_ok=True)
    return root / "models"


def random_weight_model(name: str, seed: int = 0) -> Path:
    """Path of the light model ``name`` with random weights, generated once into the cache."""
    path = cache_dir() / f"{name}_random_seed{seed}.onnx"
    if not path.exists():
        model = with_random_weights(resolve(name), seed)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(model.SerializeToString())
        os.replace(tmp, path)
    return path
