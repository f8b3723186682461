"""``twin rollback --import N`` restores a layer from the history (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

import twin
from tests.conftest import BUILDING_FIELDS, run_cli
from tests.conftest import buildings_frame as frame_of


def _deliver(city: twin.Twin, frame: gpd.GeoDataFrame, folder: Path) -> twin.ImportReport:
    src = folder / "b.gpkg"
    frame.to_file(src)
    return city.import_layer(
        src,
        layer="b",
        kind="building",
        id="建筑编码",
        fields=BUILDING_FIELDS,
        allow_removals=True,
    )


def _state(city: twin.Twin) -> pd.DataFrame:
    layer = city.layer("b")
    table = pd.DataFrame(layer.drop(columns=["valid_from", "geometry"]))
    table["wkb"] = shapely.to_wkb(layer.geometry.array)
    return table.sort_index()


@pytest.mark.parametrize("edit", ["attribute", "reshape", "remove", "add", "all"])
def test_rollback_restores_the_state_before_the_import(
    city: twin.Twin, tmp_path: Path, edit: str
) -> None:
    v1 = frame_of(6)
    _deliver(city, v1, tmp_path)
    before = _state(city)
    v2 = v1.copy()
    if edit in ("attribute", "all"):
        v2.loc[0, "层数"] = 30
    if edit in ("reshape", "all"):
        v2.loc[1, "geometry"] = v2.loc[1, "geometry"].buffer(2, join_style="mitre")
    if edit in ("remove", "all"):
        v2 = v2.drop(index=[2, 3])
    if edit in ("add", "all"):
        v2.loc[9] = ["B099", 1, 3.0, "新", shapely.box(505_900, 3_392_400, 505_910, 3_392_410)]
    second = _deliver(city, gpd.GeoDataFrame(v2, crs=v1.crs), tmp_path)
    assert not _state(city).equals(before)
    undo = city.rollback(second.import_id)
    assert undo.import_id == second.import_id + 1
    assert (undo.added, undo.changed, undo.removed) == (
        second.removed,
        second.changed,
        second.added,
    )
    pd.testing.assert_frame_equal(_state(city), before, check_dtype=False)
    # the rollback is itself an import: rolling it back gives v2 again
    redo = city.rollback(undo.import_id)
    assert (redo.added, redo.changed, redo.removed) == (undo.removed, undo.changed, undo.added)


def test_rollback_of_a_first_import_or_unknown_import_is_an_error(
    city: twin.Twin, tmp_path: Path
) -> None:
    first = _deliver(city, frame_of(3), tmp_path)
    with pytest.raises(twin.UsageError, match="created layer b"):
        city.rollback(first.import_id)
    with pytest.raises(twin.UsageError, match="no import 99"):
        city.rollback(99)


def test_rollback_from_the_cli(city: twin.Twin, tmp_path: Path) -> None:
    _deliver(city, frame_of(5), tmp_path)
    edited = frame_of(5)
    edited.loc[4, "层数"] = 40
    second = _deliver(city, edited, tmp_path)
    result = run_cli("rollback", str(city.path), "--import", str(second.import_id), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["changed"], report["source"]) == (1, f"rollback of import {second.import_id}")
    assert city.layer("b").loc["b.B004", "floors"] == 5
    assert run_cli("rollback", str(city.path), "--import", "1").returncode == 2
