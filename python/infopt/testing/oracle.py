"""onnxruntime as the test oracle (tests only: the runtime never calls it)."""

from __future__ import annotations

import numpy as np

from ..ir import Model
from ..ir.serde import ModelSource, load_proto, to_bytes


def ort_run(
    model: ModelSource | Model,
    feeds: dict[str, np.ndarray],
    *,
    optimize: bool = False,
    threads: int = 1,
) -> list[np.ndarray]:
    """Outputs of onnxruntime on ``model``; ORT_DISABLE_ALL unless ``optimize``."""
    import onnxruntime as ort

    if isinstance(model, Model):
        data = to_bytes(model)
    else:
        data = load_proto(model).SerializeToString()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimize
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return session.run(None, {k: v for k, v in feeds.items() if k in names})
