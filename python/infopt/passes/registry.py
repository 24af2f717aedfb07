"""The one table of passes, by the name the CLI and pipelines use."""

from __future__ import annotations

from .base import Pass
from .eliminate_dead_code import EliminateDeadCode
from .fold_constants import FoldConstants
from .freeze_initializer_inputs import FreezeInitializerInputs
from .fuse_conv_activation import FuseConvActivation
from .infer_shapes import InferShapes
from .remove_identity import RemoveIdentity

PASSES: dict[str, type[Pass]] = {
    cls.name: cls
    for cls in (
        InferShapes,
        FreezeInitializerInputs,
        FoldConstants,
        RemoveIdentity,
        EliminateDeadCode,
        FuseConvActivation,
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
