"""The examples in the service's docstrings run (the default test run collects the
library's doctests, ``src/twin``, not those of ``api/``), with the names the library's
doctests find (the root ``conftest.py``: the built sample twin as ``city``, its
``index`` …)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from typing import Any

import pytest

import twin
import twin_api
from conftest import doctest_names, epanet_examples

MODULES = sorted(info.name for info in pkgutil.walk_packages(twin_api.__path__, "twin_api."))


def test_every_service_module_is_found() -> None:
    assert {"twin_api.preparing", "twin_api.settings", "twin_api.routers.features"} <= set(MODULES)


@pytest.fixture(scope="module")
def names(sample_twin: twin.Twin) -> dict[str, Any]:
    return {**epanet_examples(), **doctest_names(sample_twin)}


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_in_a_service_module_run(name: str, names: dict[str, Any]) -> None:
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, extraglobs=names, optionflags=flags)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
