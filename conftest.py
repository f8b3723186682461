"""Fixtures shared by the tests and the doctests: one built sample twin per session.

The sample district (``data/samples``) is imported through its mapping file and
its relations are built once; the tests that only read it share it as
``sample_twin`` and the doctests under ``src/twin`` find it as ``city`` (with
``sample_twin_path``, ``net`` (the water network), ``index`` (its
:class:`~twin.query.index.CityIndex`) and ``twin``) in their namespace,
so their examples run instead of being skipped; the EPANET readers' examples
find wntr's ``net3_inp`` and ``ky4_inp`` there too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

import twin

SAMPLES = Path(__file__).resolve().parent / "data" / "samples"


@pytest.fixture(scope="session")
def sample_twin(tmp_path_factory: pytest.TempPathFactory) -> twin.Twin:
    """The sample delivery imported and built, shared read-only by the whole session."""
    path = tmp_path_factory.mktemp("sample-twin") / "chengdu.twin.gpkg"
    city = twin.Twin.create(path, crs="auto", name="成都示例街区 (synthetic)")
    city.import_mapping(SAMPLES / "mapping.yaml")
    city.build()
    return city


def epanet_examples() -> dict[str, Path]:
    """EPANET's Net3 and the Kentucky network 4, as wntr ships them (found without
    importing wntr, which is slow): ``net3_inp`` and ``ky4_inp``."""
    spec = importlib.util.find_spec("wntr")
    assert spec is not None and spec.submodule_search_locations, "wntr is not installed"
    networks = Path(next(iter(spec.submodule_search_locations))) / "library" / "networks"
    return {"net3_inp": networks / "Net3.inp", "ky4_inp": networks / "ky4.inp"}


@pytest.fixture(autouse=True)
def _doctest_twin(request: pytest.FixtureRequest) -> None:
    """Put the built sample twin into the namespace of doctests that use it."""
    doctest_item = request.node
    if type(doctest_item).__name__ != "DoctestItem":
        return
    namespace: dict[str, Any] = request.getfixturevalue("doctest_namespace")
    if "net3_inp" not in namespace:
        namespace.update(epanet_examples())
    if "city" not in namespace:
        namespace.update(doctest_names(request.getfixturevalue("sample_twin")))


def doctest_names(city: twin.Twin) -> dict[str, Any]:
    """The names the doctests find beside the EPANET examples: the built sample twin as
    ``city``, its ``sample_twin_path``, water network ``net`` and ``index``, and ``twin``."""
    from twin.query.index import CityIndex

    return {
        "city": city,
        "sample_twin_path": city.path,
        "net": city.pipe_network("water"),
        "index": CityIndex.load(city.path),
        "twin": twin,
    }
