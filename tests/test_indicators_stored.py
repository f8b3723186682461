"""Indicators by zone started from the build's stored building -> zone relation.

When the build is current, ``indicators_by_zone`` reads the stored relation
(``GpkgStore.zone_rows``: positions and a categorical, no uid text) and
overlays only the buildings straddling zones; the table must be the overlay's.
After a re-import the relation is stale: it must not be read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import twin
from tests.conftest import GK105, X0, Y0
from twin.indicators import building_indicators
from twin.store import GpkgStore
from twin.zones import indicators_by_zone

BUILDING_COLUMNS = ["building_count", "footprint_m2", "gfa_m2", "far", "coverage"]


def spy_zone_rows(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the relation each call of ``GpkgStore.zone_rows`` reads."""
    calls: list[str] = []
    real = GpkgStore.zone_rows

    def zone_rows(self: GpkgStore, stored: Any) -> pd.DataFrame:
        calls.append(stored.key)
        return real(self, stored)

    monkeypatch.setattr(GpkgStore, "zone_rows", zone_rows)
    return calls


@pytest.mark.parametrize("by", ["grids", "parcels"])
def test_stored_relation_gives_the_overlay_table(
    sample_twin: twin.Twin, monkeypatch: pytest.MonkeyPatch, by: str
) -> None:
    calls = spy_zone_rows(monkeypatch)
    table = indicators_by_zone(sample_twin, by)
    assert len(calls) == 1 and calls[0].endswith(f"buildings->{by}")
    zones = sample_twin.layer(by, columns=[])
    overlay = building_indicators(zones, sample_twin.layer("buildings"))
    columns = [c for c in overlay.columns if c in table.columns]
    assert set(BUILDING_COLUMNS) <= set(columns)
    pd.testing.assert_frame_equal(table[columns], overlay[columns], rtol=1e-12)


def write(frame: gpd.GeoDataFrame, path: Path) -> Path:
    frame.to_file(path, driver="GPKG")
    return path


def box(x: float, y: float, w: float, h: float) -> shapely.Polygon:
    return shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)


def test_a_stale_relation_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two 100 m cells a, b; buildings 1 (20x20 in a, 2 floors), 2 (30x10 across the
    edge: 100 m2 in a, 200 m2 in b, 3 floors), 3 (10x10 in b, 4 floors)."""
    city = twin.Twin.create(tmp_path / "city.gpkg", crs=GK105)
    cells = gpd.GeoDataFrame(
        {"cell": ["a", "b"]}, geometry=[box(0, 0, 100, 100), box(100, 0, 100, 100)], crs=GK105
    )
    city.import_layer(write(cells, tmp_path / "cells.gpkg"), layer="grids", kind="grid", id="cell")
    homes = gpd.GeoDataFrame(
        {"bid": ["1", "2", "3"], "floors": [2, 3, 4]},
        geometry=[box(10, 10, 20, 20), box(90, 10, 30, 10), box(150, 50, 10, 10)],
        crs=GK105,
    )
    source = write(homes, tmp_path / "homes.gpkg")
    city.import_layer(source, layer="buildings", kind="building", id="bid")
    city.build()
    calls = spy_zone_rows(monkeypatch)
    table = indicators_by_zone(city, "grid")
    assert len(calls) == 1
    assert table["building_count"].tolist() == [1, 2]  # 2 counts where most of it is: b
    np.testing.assert_allclose(table["footprint_m2"], [500.0, 300.0], rtol=1e-12)
    np.testing.assert_allclose(table["gfa_m2"], [400 * 2 + 100 * 3, 200 * 3 + 100 * 4])
    # Building 3 moves into a; no build since: the stored relation still has it in b.
    moved = homes.set_geometry([box(10, 10, 20, 20), box(90, 10, 30, 10), box(50, 50, 10, 10)])
    city.import_layer(write(moved, source), layer="buildings", kind="building", id="bid")
    calls.clear()
    table = indicators_by_zone(city, "grid")
    assert calls == []
    assert table["building_count"].tolist() == [2, 1]
    np.testing.assert_allclose(table["footprint_m2"], [600.0, 200.0], rtol=1e-12)
    np.testing.assert_allclose(table["gfa_m2"], [400 * 2 + 100 * 3 + 100 * 4, 200 * 3])
