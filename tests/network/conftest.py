"""Fixtures of the network tests: the hand-drawn network of :mod:`small_network`."""

from __future__ import annotations

from pathlib import Path

import pytest

import twin
from tests.network.small_network import make_twin


@pytest.fixture
def small(tmp_path: Path) -> twin.Twin:
    return make_twin(tmp_path)
