"""Exports carry the uid: re-importing an unedited export changes nothing (issue 12).

Also: Shapefile field names the format shortened come back from a sidecar,
and CSV text a spreadsheet would run as a formula is escaped.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import geopandas as gpd
import pytest

import twin
from tests.conftest import GK105, SAMPLES, X0, Y0
from twin.io.export import FIELD_NAMES_SUFFIX

FORMATS = [".gpkg", ".geojson", ".shp", ".csv", ".parquet", ".fgb"]


@pytest.fixture(scope="module")
def parcels_twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rt") / "city.gpkg"
    city = twin.Twin.create(path, crs=GK105)
    city.import_layer(
        SAMPLES / "parcels.shp",
        layer="parcels",
        kind="parcel",
        id="地块编码",
        fields={"容积率上限": "far_limit"},
    )
    return path


def _copy(src: Path, folder: Path) -> twin.Twin:
    target = folder / "city.gpkg"
    target.write_bytes(src.read_bytes())
    return twin.Twin.open(target)


def _csv_options(suffix: str) -> dict[str, str]:
    return {"wkt": "wkt", "src_crs": GK105} if suffix == ".csv" else {}


@pytest.mark.parametrize("id_field", [None, "地块编码"], ids=["uid-column", "id-field"])
@pytest.mark.parametrize("suffix", FORMATS)
def test_reimporting_an_unedited_export_changes_nothing(
    parcels_twin: Path, tmp_path: Path, suffix: str, id_field: str | None
) -> None:
    city = _copy(parcels_twin, tmp_path)
    fields = city.fields("parcels")
    out = city.export("parcels", tmp_path / f"parcels{suffix}")
    report = city.import_layer(
        out, layer="parcels", kind="parcel", id=id_field, **_csv_options(suffix)
    )
    assert (report.added, report.changed, report.removed, report.unchanged) == (0, 0, 0, 739)
    assert city.fields("parcels") == fields  # no src_uid / src_valid_from
    assert len(city.imports()) == 2


@pytest.mark.parametrize("suffix", [".geojson", ".shp", ".csv"])
def test_an_edited_export_changes_only_what_was_edited(
    parcels_twin: Path, tmp_path: Path, suffix: str
) -> None:
    city = _copy(parcels_twin, tmp_path)
    out = city.export("parcels", tmp_path / f"parcels{suffix}")
    if suffix == ".csv":
        rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
        rows[5]["far_limit"] = "9.5"
        with out.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        edited_uid = rows[5]["uid"]
    else:
        frame = gpd.read_file(out)
        short = "far_limit"
        frame.loc[5, short] = 9.5
        edited_uid = frame.loc[5, "uid"]
        frame.to_file(out, encoding="UTF-8") if suffix == ".shp" else frame.to_file(out)
    report = city.import_layer(out, layer="parcels", kind="parcel", **_csv_options(suffix))
    assert (report.changed, report.added, report.removed) == (1, 0, 0)
    assert city.changes(report.import_id)["uid"].tolist() == [edited_uid]
    assert city.layer("parcels").loc[edited_uid, "far_limit"] == 9.5


def test_shortened_shapefile_names_come_back(parcels_twin: Path, tmp_path: Path) -> None:
    city = _copy(parcels_twin, tmp_path)
    long_names = [f for f in city.fields("parcels") if len(f.encode("utf-8")) > 10]
    assert long_names  # 地块编码 is 12 bytes in UTF-8
    out = city.export("parcels", tmp_path / "parcels.shp")
    sidecar = json.loads((tmp_path / f"parcels{FIELD_NAMES_SUFFIX}").read_text("utf-8"))
    assert sorted(sidecar.values()) == sorted(long_names)
    assert all(len(short.encode("utf-8")) <= 10 for short in sidecar)
    other = twin.Twin.create(tmp_path / "other.gpkg", crs=GK105)
    other.import_layer(out, layer="parcels", kind="parcel", id="地块编码")
    assert other.fields("parcels") == city.fields("parcels")


# (imports strip surrounding blanks, so tab- and CR-led text never reaches a stored layer)
DANGEROUS = ["=1+1", "+31 6", "-2+3", "@SUM(A1)", '=HYPERLINK("http://x")', "-", "=中文"]
HARMLESS = ["plain", "1=1", "a-b", "mail@x", "'quoted", "中文=公式"]


@pytest.mark.parametrize("value", DANGEROUS + HARMLESS)
def test_csv_export_escapes_formulas_unless_raw(tmp_path: Path, value: str) -> None:
    city = twin.Twin.create(tmp_path / "c.gpkg", crs=GK105)
    frame = gpd.GeoDataFrame(
        {"id": ["p1"], "name": [value]},
        geometry=gpd.points_from_xy([X0], [Y0]),
        crs=GK105,
    )
    city.import_frame(frame, layer="pois", kind="poi", id="id", fields={})
    escaped = city.export("pois", tmp_path / "pois.csv")
    raw = city.export("pois", tmp_path / "raw.csv", raw=True)
    cell = next(csv.DictReader(escaped.open(encoding="utf-8-sig", newline="")))["name"]
    raw_cell = next(csv.DictReader(raw.open(encoding="utf-8-sig", newline="")))["name"]
    assert raw_cell == value
    assert cell == ("'" + value if value in DANGEROUS else value)
    report = city.import_layer(escaped, layer="pois", kind="poi", wkt="wkt", src_crs=GK105)
    assert report.unchanged == 1 and city.layer("pois").iloc[0]["name"] == value
