"""``infopt.InferenceSession``: the onnxruntime surface over infopt's own executor.

The session imports the model, builds a native plan (``runtime.cpu``) and validates every feed
before it reaches C++: unknown or missing names, wrong dtype, wrong rank or static dim are
reported as InputError naming the input. It never calls onnxruntime.

Memory: a session created from a path (or bytes) owns its model. Weights are read from the file
when the plan is built, borrowed by the native program, and the IR forgets them; the program
packs Conv/Gemm/MatMul weights at creation and frees each original that only its packed copy
reads. A weight is then held once. What needs a weight later (a plan for an overridden
initializer) reads it from the file again. A caller's ``ir.Model`` is never changed: its arrays
stay, read-only ones are borrowed and writable ones copied (the caller may change them).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import TensorProto

from ..errors import InputError
from ..ir import Model, Tensor, Value, load, to_numpy_dtype
from ..ir.serde import ModelSource

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


@dataclass
class NodeArg:
    """Describes an input or output, as onnxruntime's NodeArg does."""

    name: str
    type: str
    shape: list[int | str | None]


class SessionOptions:
    def __init__(self) -> None:
        self.intra_op_num_threads = 0  # 0: all cores
        self.inter_op_num_threads = 0
        self.log_severity_level = 2
        self.enable_profiling = False


def _type_string(value: Value) -> str:
    if value.dtype is None:
        return "unknown"
    name = TensorProto.DataType.Name(value.dtype).lower()
    return {"float": "tensor(float)", "double": "tensor(double)"}.get(name, f"tensor({name})")


def _node_arg(value: Value) -> NodeArg:
    return NodeArg(value.name, _type_string(value), list(value.shape or []))


class InferenceSession:
    """Run an ONNX or ``.opt`` model: ``InferenceSession(path | bytes | ModelProto | ir.Model)``."""

    def __init__(
        self,
        model: ModelSource | Model,
        sess_options: SessionOptions | None = None,
        providers: list[str | tuple[str, dict]] | None = None,
        **kwargs: Any,
    ):
        self._options = sess_options or SessionOptions()
        self._providers = _select_providers(providers)
        # a model the session loaded itself is its own: weights it hands to the native program
        # are dropped from the IR (build_plan's hand_over); a caller's Model is left as it is
        self._owns_model = not isinstance(model, Model)
        self._model = model if isinstance(model, Model) else load(model)
        graph = self._model.graph
        from ..ir.serde import infer_types

        if any(v.dtype is None for n in graph.nodes for v in n.outputs if v.name):
            infer_types(self._model)
        self._inputs = [v for v in graph.inputs]
        self._required = [v for v in graph.inputs if v.name not in graph.initializers]
        self._by_name = {v.name: v for v in graph.inputs}
        self._specs = {
            v.name: _InputSpec(
                v, graph.initializers[v.name].const if v.name in graph.initializers else None
            )
            for v in graph.inputs
        }
        # per-call fast paths: no initializer overridden, no symbolic dim to cross-check
        self._init_names = frozenset(graph.initializers)
        self._symbolic = any(spec.symbolic for spec in self._specs.values())
        self._plans: dict[frozenset[str], Any] = {}
        self._lock = threading.Lock()
        self._threads = int(self._options.intra_op_num_threads or 0)
        self._plan_for(frozenset())

    # --- onnxruntime surface -------------------------------------------------------------------
    def get_inputs(self) -> list[NodeArg]:
        return [_node_arg(v) for v in self._required]

    def get_overridable_initializers(self) -> list[NodeArg]:
        return [_node_arg(v) for v in self._inputs if v.name in self._model.graph.initializers]

    def get_outputs(self) -> list[NodeArg]:
        return [_node_arg(v) for v in self._model.graph.outputs]

    def get_providers(self) -> list[str]:
        return list(self._providers)

    def get_modelmeta(self) -> dict[str, str]:
        return dict(self._model.metadata_props)

    def run(
        self, output_names: list[str] | None, input_feed: dict[str, Any], run_options: Any = None
    ) -> list[np.ndarray]:
        if not isinstance(input_feed, dict):
            raise InputError("input_feed must be a dict of input name -> array")
        overrides = (
            _NO_OVERRIDES
            if self._init_names.isdisjoint(input_feed)
            else frozenset(n for n in input_feed if n in self._init_names)
        )
        plan = self._plans.get(overrides) or self._plan_for(overrides)
        arrays = [self._check_feed(name, input_feed) for name in plan.input_names]
        if len(input_feed) > len(arrays) or not input_feed.keys() <= self._by_name.keys():
            unknown = sorted(set(input_feed) - set(self._by_name))
            names = ", ".join(sorted(v.name for v in self._required))
            raise InputError(f"unknown input '{unknown[0]}'; model inputs are: {names}")
        if self._symbolic:
            self._check_symbolic_dims(plan.input_names, arrays)
        outputs = getattr(plan, "program", plan).run(arrays)
        if output_names is None:
            return list(outputs)
        index = {name: i for i, name in enumerate(plan.output_names)}
        result = []
        for name in output_names:
            if name not in index:
                raise InputError(
                    f"unknown output '{name}'; model outputs are: {', '.join(plan.output_names)}"
                )
            result.append(outputs[index[name]])
        return result

    # --- introspection -------------------------------------------------------------------------
    @property
    def fallback_ops(self) -> dict[str, int]:
        """Ops (and counts) that run through the reference-evaluator fallback."""
        return dict(self._plan_for(frozenset()).fallback_ops)

    @property
    def fallback_reasons(self) -> dict[str, str]:
        return dict(self._plan_for(frozenset()).fallback_reasons)

    @property
    def native_ops(self) -> dict[str, int]:
        return dict(self._plan_for(frozenset()).native_ops)

    @property
    def uses_python_plan(self) -> bool:
        """True when the graph holds values the native executor cannot carry, so every node runs
        through the fallback evaluator."""
        from .fallback import PythonPlan

        return isinstance(self._plan_for(frozenset()), PythonPlan)

    @property
    def program(self):
        return self._plan_for(frozenset()).program

    # --- internals -----------------------------------------------------------------------------
    def _plan_for(self, overrides: frozenset[str]):
        with self._lock:
            plan = self._plans.get(overrides)
            if plan is None:
                from .cpu import build_plan
                from .fallback import PythonPlan, needs_python_plan

                if self._providers[0] == CUDA:
                    from .cuda import build_cuda_plan

                    plan = build_cuda_plan(self._model, frozen_defaults=not overrides)
                elif needs_python_plan(self._model):
                    plan = PythonPlan(self._model, frozen_defaults=not overrides)
                else:
                    plan = build_plan(
                        self._model,
                        self._threads,
                        frozen_defaults=not overrides,
                        hand_over=self._owns_model,
                    )
                self._plans[overrides] = plan
            return plan

    def _check_feed(self, name: str, feeds: dict[str, Any]) -> Any:
        spec = self._specs[name]
        if name not in feeds:
            if spec.has_default:
                return spec.default
            raise InputError(f"missing input '{name}'")
        return spec.check(feeds[name])

    def _check_symbolic_dims(self, names: list[str], arrays: list[Any]) -> None:
        bound: dict[str, tuple[int, str]] = {}
        for name, array in zip(names, arrays, strict=True):
            for axis, dim in self._specs[name].symbolic:
                got = array.shape[axis]
                if dim in bound and bound[dim][0] != got:
                    raise InputError(
                        f"input '{name}' gives dim '{dim}' = {got}, but input "
                        f"'{bound[dim][1]}' gave {bound[dim][0]}"
                    )
                bound.setdefault(dim, (got, name))


class _InputSpec:
    """What a feed for one graph input must look like, computed once per session."""

    def __init__(self, value: Value, default: Tensor | None):
        self.name = value.name
        self.value = value
        # the initializer's value, read when a plan for overridden initializers first needs it
        # (the default plan holds it as a constant)
        self._default_tensor = default
        self._default: np.ndarray | None = None
        self.opaque = value.type_payload is not None  # sequences, maps, optionals: as given
        self.dtype = to_numpy_dtype(value.dtype) if value.dtype is not None else None
        self.shape = None if value.shape is None else tuple(value.shape)
        self.symbolic = [(axis, d) for axis, d in enumerate(self.shape or ()) if isinstance(d, str)]

    @property
    def has_default(self) -> bool:
        return self._default_tensor is not None

    @property
    def default(self) -> np.ndarray | None:
        if self._default is None and self._default_tensor is not None:
            self._default = np.require(self._default_tensor.numpy(), requirements="C")
        return self._default

    def check(self, array: Any) -> Any:
        if self.opaque:
            return array
        name = self.name
        if not isinstance(array, np.ndarray):
            try:
                array = np.asarray(array)
            except Exception:
                raise InputError(f"input '{name}' is not an array") from None
        if self.dtype is not None and array.dtype != self.dtype:
            raise InputError(
                f"input '{name}' has dtype {array.dtype}, the model expects {self.dtype} "
                f"({_type_string(self.value)})"
            )
        shape = self.shape
        if shape is not None and array.shape != shape:  # equal: every dim fixed and matching
            if array.ndim != len(shape):
                raise InputError(
                    f"input '{name}' has rank {array.ndim} (shape {list(array.shape)}), the "
                    f"model expects rank {len(shape)} ({list(shape)})"
                )
            for axis, (got, want) in enumerate(zip(array.shape, shape, strict=True)):
                if got != want and isinstance(want, int):
                    raise InputError(
                        f"input '{name}' has shape {list(array.shape)}, the model expects "
                        f"{list(shape)} (dim {axis} must be {want})"
                    )
        if not array.flags.c_contiguous:
            array = np.ascontiguousarray(array) if array.ndim else array.copy()
        return array


_NO_OVERRIDES: frozenset[str] = frozenset()


def _select_providers(providers) -> list[str]:
    """The providers to use; CUDA first when asked for and available, refused in one line when
    asked for and not available (no silent fall back to the CPU)."""
    names = [p[0] if isinstance(p, tuple) else p for p in (providers or [CPU])]
    for name in names:
        if name not in (CPU, CUDA):
            raise InputError(f"unknown execution provider '{name}'; use {CPU} or {CUDA}")
    if CUDA in names:
        from .cuda import cuda_unavailable_reason

        reason = cuda_unavailable_reason()
        if reason is not None:
            raise InputError(f"CUDAExecutionProvider is not available: {reason}")
    return names


def default_threads() -> int:
    return os.cpu_count() or 1
