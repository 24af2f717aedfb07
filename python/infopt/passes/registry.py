"""The one table of passes, by the name the CLI and pipelines use."""

from __future__ import annotations

from .base import Pass
from .eliminate_common_subexpressions import EliminateCommonSubexpressions
from .eliminate_dead_code import EliminateDeadCode
from .fold_attention_transposes import FoldAttentionTransposes
from .fold_constants import FoldConstants
from .freeze_initializer_inputs import FreezeInitializerInputs
from .fuse_attention import FuseAttention
from .fuse_batchnorm import BatchNormToScaleShift, FuseBatchNorm
from .fuse_conv_activation import FuseConvActivation
from .fuse_gelu import FuseGelu
from .fuse_gemm_activation import FuseGemmActivation
from .fuse_layer_norm import FuseLayerNorm
from .fuse_pad_conv import FusePadConv
from .infer_shapes import InferShapes
from .layout_nchwc import LayoutNchwc
from .merge_initializers import MergeInitializers
from .remove_identity import RemoveIdentity
from .resolve_dynamic_shapes import ResolveDynamicShapes
from .simplify_shape_ops import SimplifyShapeOps

PASSES: dict[str, type[Pass]] = {
    cls.name: cls
    for cls in (
        InferShapes,
        FreezeInitializerInputs,
        FoldConstants,
        RemoveIdentity,
        EliminateDeadCode,
        MergeInitializers,
        EliminateCommonSubexpressions,
        SimplifyShapeOps,
        ResolveDynamicShapes,
        FuseBatchNorm,
        BatchNormToScaleShift,
        FusePadConv,
        FuseLayerNorm,
        FuseGelu,
        FuseAttention,
        FoldAttentionTransposes,
        FuseGemmActivation,
        FuseConvActivation,
        LayoutNchwc,
    )
}


def create(name: str) -> Pass:
    from ..errors import InputError

    try:
        return PASSES[name]()
    except KeyError:
        raise InputError(
            f"unknown pass '{name}'; known passes: {', '.join(sorted(PASSES))}"
        ) from None
