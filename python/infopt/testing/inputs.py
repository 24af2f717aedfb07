"""Random feeds for a model's inputs. Never all zeros or ones: standard normal floats, small
random integers."""

from __future__ import annotations

import numpy as np

from ..ir import Model, to_numpy_dtype


def random_feeds(
    model: Model,
    seed: int = 0,
    dims: dict[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """One random array per graph input that has no initializer; symbolic dims are taken from
    ``dims`` (default 1 for unknown dims, 2 for named ones)."""
    rng = np.random.default_rng(seed)
    dims = dims or {}
    feeds = {}
    for value in model.graph.inputs:
        if value.name in model.graph.initializers:
            continue
        if value.dtype is None:
            raise ValueError(f"input %{value.name} has no element type")
        shape = [
            d if isinstance(d, int) else dims.get(d, 2) if isinstance(d, str) else 1
            for d in (value.shape or ())
        ]
        dtype = to_numpy_dtype(value.dtype)
        if dtype.kind == "f":
            feeds[value.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[value.name] = rng.random(shape) < 0.5
        else:
            feeds[value.name] = rng.integers(0, 8, size=shape).astype(dtype)
    return feeds
