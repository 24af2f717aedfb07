"""Optimization levels as plain lists of pass names.

-O1 cleans up: types, constant folding (shape chains of dynamic exporters included), no-op and
pair removal, duplicate constants and subexpressions, dead code. -O2 adds the fusions (norms,
GELU, attention, BatchNorm, Pad, and the Conv/Gemm/MatMul epilogues), ordered so that each
feeds the next: BatchNorm folds into Conv before Conv takes its activation, GELU becomes one op
before MatMul takes it as its epilogue. For target cpu, -O2 then lays CNN regions out in NCHWc
(``layout_nchwc``), after the conv fusions so that each conv carries its epilogue into it, and
reads attention heads in place (``fold_attention_transposes``).
"""

from __future__ import annotations

CLEANUP = [
    "fold_constants",
    "resolve_dynamic_shapes",
    "remove_identity",
    "simplify_shape_ops",
    "merge_initializers",
    "eliminate_common_subexpressions",
    "fold_constants",
    "eliminate_dead_code",
]
O1 = ["infer_shapes", "freeze_initializer_inputs", *CLEANUP]
O2 = [
    *O1,
    "infer_shapes",
    "fuse_batchnorm",
    "fuse_pad_conv",
    "fuse_layer_norm",
    "fuse_gelu",
    "fuse_attention",
    "fold_attention_transposes",
    "fold_constants",
    "infer_shapes",
    "fuse_gemm_activation",
    "fuse_conv_activation",
    "layout_nchwc",
    "eliminate_dead_code",
]
O3 = O2

PIPELINES: dict[int, list[str]] = {0: [], 1: O1, 2: O2, 3: O3}


# Fusions into infopt ops that standard ONNX (at the model's opset) cannot express. For
# --target onnx they would only be inlined back into a rewritten decomposition, which hides the
# exporter's pattern from the consuming runtime's own fusions (onnxruntime's attention and GELU
# fusions): skip them there. Value: the opset from which the fused op is standard, else None.
NOT_STANDARD_BELOW = {"fuse_attention": None, "fuse_gelu": 20}

# Layouts only infopt's CPU runtime runs natively; cuda and onnx keep NCHW and per-head
# Transposes.
CPU_ONLY = {"layout_nchwc", "fold_attention_transposes"}


def native_nchwc() -> bool:
    """Whether the native CPU backend (with its NCHWc kernels) is built. Without it the layout
    would only add reorders and send every convolution to the (slow) reference fallback, and
    ``AttentionBshd`` would run as its decomposition, so target cpu leaves ``CPU_ONLY`` out."""
    try:
        from .. import _C
    except ImportError:
        return False
    return "infopt.NchwcConv" in set(_C.native_ops())


def pipeline(level: int, target: str = "cpu", opset: int | None = None) -> list[str]:
    """The pass names of ``-O<level>`` for ``target`` (a model of ``opset`` for target onnx)."""
    if level not in PIPELINES:
        from ..errors import InputError

        raise InputError(f"unknown optimization level -O{level}; use 0 to 3")
    names = list(PIPELINES[level])
    if target != "cpu" or not native_nchwc():
        names = [n for n in names if n not in CPU_ONLY]
    if target == "onnx":
        for name, since in NOT_STANDARD_BELOW.items():
            if since is None or opset is None or opset < since:
                names = [n for n in names if n != name]
    return names
