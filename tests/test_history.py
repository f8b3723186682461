"""Re-imports as change sets, kept versions, the twin "as of" a date, exports."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

import twin
from tests.conftest import BUILDING_FIELDS, buildings_frame


@pytest.fixture
def versions(city: twin.Twin, tmp_path: Path) -> tuple[twin.Twin, list[twin.ImportReport]]:
    """Three deliveries of the same buildings: v2 changes, removes and adds some."""
    v1 = buildings_frame(5)
    v2 = v1.copy()
    v2.loc[1, "层数"] = 9  # B001 attribute change
    v2.loc[2, "geometry"] = v2.loc[2, "geometry"].buffer(1, join_style="mitre")  # B002 reshaped
    v2 = v2.drop(index=3)  # B003 demolished
    v2.loc[10] = ["B010", 2, 6.0, "新楼", shapely.box(505_900, 3_392_300, 505_910, 3_392_310)]
    v3 = v2.copy()  # identical re-delivery
    reports = []
    for i, frame in enumerate((v1, v2, v3)):
        src = tmp_path / f"v{i + 1}.gpkg"
        gpd.GeoDataFrame(frame, crs=v1.crs).to_file(src)
        reports.append(
            city.import_layer(
                src, layer="buildings", kind="building", id="建筑编码", fields=BUILDING_FIELDS
            )
        )
    return city, reports


def test_change_set_counts(versions: tuple[twin.Twin, list[twin.ImportReport]]) -> None:
    _, (r1, r2, r3) = versions
    assert (r1.added, r1.changed, r1.removed, r1.unchanged) == (5, 0, 0, 0)
    assert (r2.added, r2.changed, r2.removed, r2.unchanged) == (1, 2, 1, 2)
    assert (r3.added, r3.changed, r3.removed, r3.unchanged) == (0, 0, 0, 5)


def test_change_set_uids(versions: tuple[twin.Twin, list[twin.ImportReport]]) -> None:
    city, (r1, r2, r3) = versions
    changes = city.changes(r2.import_id)
    assert sorted(map(tuple, changes[["change", "uid"]].to_numpy().tolist())) == [
        ("added", "buildings.B010"),
        ("changed", "buildings.B001"),
        ("changed", "buildings.B002"),
        ("removed", "buildings.B003"),
    ]
    assert sorted(city.changes(r1.import_id)["uid"]) == [f"buildings.B00{i}" for i in range(5)]
    assert city.changes(r3.import_id).empty


def test_unchanged_features_keep_uid_and_valid_from(
    versions: tuple[twin.Twin, list[twin.ImportReport]],
) -> None:
    city, (r1, r2, _) = versions
    layer = city.layer("buildings")
    stamp = {
        uid: t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" for uid, t in layer["valid_from"].items()
    }
    assert stamp["buildings.B000"] == stamp["buildings.B004"] == r1.time
    assert stamp["buildings.B001"] == stamp["buildings.B002"] == stamp["buildings.B010"] == r2.time


def test_history_keeps_replaced_versions(
    versions: tuple[twin.Twin, list[twin.ImportReport]],
) -> None:
    city, (_, r2, _) = versions
    old = city.history("buildings").set_index("uid").sort_index()
    assert old.index.tolist() == ["buildings.B001", "buildings.B002", "buildings.B003"]
    assert old["change"].tolist() == ["changed", "changed", "removed"]
    assert old.loc["buildings.B001", "floors"] == 2
    assert (old["import_id"] == r2.import_id).all()
    one = city.history("buildings", uid="buildings.B003")
    assert len(one) == 1 and one["floors"].iloc[0] == 4


def test_as_of_returns_each_version(versions: tuple[twin.Twin, list[twin.ImportReport]]) -> None:
    city, (r1, r2, _) = versions
    before = city.layer("buildings", as_of=r1.time).sort_index()
    assert before.index.tolist() == [f"buildings.B00{i}" for i in range(5)]
    assert before["floors"].tolist() == [1, 2, 3, 4, 5]
    v1 = buildings_frame(5).set_index("建筑编码")
    assert before.geometry.area.tolist() == pytest.approx(v1.area.tolist())
    after = city.layer("buildings", as_of=r2.time).sort_index()
    assert after.index.tolist() == [
        "buildings.B000",
        "buildings.B001",
        "buildings.B002",
        "buildings.B004",
        "buildings.B010",
    ]
    assert after.loc["buildings.B001", "floors"] == 9
    earlier = pd.Timestamp(r1.time) - pd.Timedelta(seconds=1)
    assert city.layer("buildings", as_of=earlier).empty


def test_bad_as_of(versions: tuple[twin.Twin, list[twin.ImportReport]]) -> None:
    city, _ = versions
    with pytest.raises(twin.UsageError, match="not a date"):
        city.layer("buildings", as_of="last tuesday")


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".parquet", ".shp", ".fgb", ".csv"])
def test_export_formats(
    versions: tuple[twin.Twin, list[twin.ImportReport]], tmp_path: Path, suffix: str
) -> None:
    city, _ = versions
    out = city.export("buildings", tmp_path / f"out{suffix}")
    if suffix == ".parquet":
        back = gpd.read_parquet(out)
    elif suffix == ".csv":
        back = pd.read_csv(out)
    else:
        back = pyogrio.read_dataframe(out)
    assert sorted(back["uid"]) == sorted(city.layer("buildings").index)
    if suffix != ".csv":
        assert back.crs.to_epsg() == 4544


def test_export_as_of_in_another_crs(
    versions: tuple[twin.Twin, list[twin.ImportReport]], tmp_path: Path
) -> None:
    city, (r1, _, _) = versions
    out = city.export("buildings", tmp_path / "v1.geojson", as_of=r1.time, crs="EPSG:4490")
    back = pyogrio.read_dataframe(out)
    assert back.crs.to_epsg() == 4490 and len(back) == 5
    expected = city.layer("buildings", as_of=r1.time).to_crs(4490).sort_index()
    got = back.set_index("uid").sort_index()
    assert shapely.equals_exact(got.geometry.array, expected.geometry.array, tolerance=1e-9).all()


def test_export_gbk_shapefile(
    versions: tuple[twin.Twin, list[twin.ImportReport]], tmp_path: Path
) -> None:
    city, _ = versions
    out = city.export("buildings", tmp_path / "b.shp", encoding="GBK")
    assert "新楼".encode("gbk") in out.with_suffix(".dbf").read_bytes()
    assert sorted(pyogrio.read_dataframe(out)["name"]) == sorted(city.layer("buildings")["name"])
