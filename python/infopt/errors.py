"""Error hierarchy: every user-facing failure is one of these, with a one-line message."""

from __future__ import annotations


class InfoptError(Exception):
    """Base class of every error infopt raises on purpose."""


class ModelError(InfoptError):
    """The model file or graph is malformed (corrupt protobuf, cycle, dangling value...)."""


class UnsupportedOpError(InfoptError):
    """An operator or opset version that infopt does not know."""


class InputError(InfoptError, ValueError):
    """Bad user input: a missing file, an unwritable path, a bad feed."""
