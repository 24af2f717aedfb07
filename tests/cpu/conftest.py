"""Fixtures for the native-module tests: both ISAs and a printed seed per test."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from cpu_helpers import ISAS


@pytest.fixture(params=ISAS)
def isa(request) -> str:
    return request.param


@pytest.fixture
def rng(request) -> np.random.Generator:
    seed = zlib.crc32(request.node.nodeid.encode())  # stable across runs
    print(f"seed={seed}")  # shown on failure
    return np.random.default_rng(seed)
