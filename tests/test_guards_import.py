"""Import guards (issue 12): every bad delivery is a clear error or a reported rejection.

Cases are generated over whole classes: reserved column names in every case
variant, case-duplicate fields, non-finite numbers, text encodings, truncation
points of a DBF, removal shares, CRS mix-ups.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

import twin
from tests.conftest import GK105, SAMPLES, X0, Y0, boxes, buildings_frame
from twin.guards import RESERVED_NAMES, safe_field_names


def _case_variants(name: str) -> list[str]:
    """lower, UPPER, Title and a mixed case of ``name`` (deduplicated)."""
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(name))
    return list(dict.fromkeys([name, name.upper(), name.title(), mixed]))


COLLISIONS = [v for name in sorted(RESERVED_NAMES) for v in _case_variants(name)]


def _feature_collection(features: list[str]) -> str:
    return '{"type": "FeatureCollection", "features": [' + ", ".join(features) + "]}"


def _point_feature(ident: str, x: str, y: str, **props: object) -> str:
    properties = json.dumps({"id": ident, **props}, ensure_ascii=False)
    return (
        f'{{"type": "Feature", "properties": {properties}, '
        f'"geometry": {{"type": "Point", "coordinates": [{x}, {y}]}}}}'
    )


def _buildings(tmp_path: Path, n: int = 5, name: str = "b.geojson", **extra: list) -> Path:
    frame = buildings_frame(n)
    for column, values in extra.items():
        frame[column] = values
    src = tmp_path / name
    frame.to_crs(4490).to_file(src)
    return src


# -- field names ------------------------------------------------------------
def test_collision_cases_cover_every_reserved_name_in_several_cases() -> None:
    assert len(COLLISIONS) >= 3 * len(RESERVED_NAMES)
    assert {c.lower() for c in COLLISIONS} == set(RESERVED_NAMES)


@pytest.mark.parametrize("column", COLLISIONS)
def test_reserved_source_field_is_renamed_with_a_warning(
    city: twin.Twin, tmp_path: Path, column: str
) -> None:
    src = tmp_path / "p.geojson"
    features = [
        _point_feature(f"P{i}", f"104.0{i}", "30.66", **{column: f"v{i}"}) for i in range(3)
    ]
    src.write_text(_feature_collection(features), encoding="utf-8")
    report = city.import_layer(src, layer="b", kind="poi", id="id")
    layer = city.layer("b")
    assert layer[f"src_{column}"].tolist() == ["v0", "v1", "v2"]
    assert layer.index.tolist() == ["b.P0", "b.P1", "b.P2"]
    assert any(f"{column} -> src_{column}" in w for w in report.warnings)


CASE_GROUPS = [
    ["Name", "name"],
    ["NAME", "name", "Name"],
    ["Floors", "FLOORS"],
    ["名称", "Code", "CODE", "code"],
]


@pytest.mark.parametrize("group", CASE_GROUPS, ids=lambda g: "-".join(g))
def test_fields_differing_only_by_case_are_numbered(
    city: twin.Twin, tmp_path: Path, group: list[str]
) -> None:
    src = tmp_path / "dup.geojson"
    feature = _point_feature("a", "104.06", "30.66", **{g: f"value of {g}" for g in group})
    src.write_text(_feature_collection([feature]), encoding="utf-8")
    report = city.import_layer(src, layer="p", kind="poi", id="id")
    row = city.layer("p").iloc[0]
    seen: dict[str, int] = {}
    for g in group:  # independent expectation: first keeps its name, then _2, _3 …
        seen[g.lower()] = seen.get(g.lower(), 0) + 1
        stored = g if seen[g.lower()] == 1 else f"{g}_{seen[g.lower()]}"
        assert row[stored] == f"value of {g}"
    assert report.warnings


def test_safe_field_names_never_returns_two_names_equal_but_for_case() -> None:
    pool = ["uid", "UID", "src_uid", "Name", "name", "name_2", "fid", "FID", "geometry"]
    for combo in itertools.combinations(pool, 4):
        columns = [c for c in combo if c != "geometry"]
        renames = safe_field_names(columns)
        final = [renames.get(c, c) for c in columns]
        assert len({f.lower() for f in final}) == len(final), combo
        assert not {f.lower() for f in final} & RESERVED_NAMES, combo


@pytest.mark.parametrize(
    "options",
    [
        {"fields": {"建筑名称": "uid"}},
        {"fields": {"建筑名称": "FID"}},
        {"set": {"uid": "x"}},
        {"set": {"Valid_From": "2001"}},
        {"set": {"geom": "x"}},
    ],
    ids=["map-uid", "map-FID", "set-uid", "set-Valid_From", "set-geom"],
)
def test_map_and_set_onto_reserved_names_are_renamed(
    city: twin.Twin, tmp_path: Path, options: dict
) -> None:
    report = city.import_layer(
        _buildings(tmp_path, 3), layer="b", kind="building", id="建筑编码", **options
    )
    target = next(iter((options.get("fields") or options["set"]).values()))
    target = target if "fields" in options else next(iter(options["set"]))
    assert report.imported == 3
    assert f"src_{target}" in city.layer("b").columns
    assert city.layer("b").index.tolist() == ["b.B000", "b.B001", "b.B002"]


@pytest.mark.parametrize("id_field", ["fid", "FID", "UID", "Geometry"])
def test_id_field_named_like_a_reserved_column(
    city: twin.Twin, tmp_path: Path, id_field: str
) -> None:
    src = tmp_path / "ids.geojson"
    features = [_point_feature(f"x{i}", "104.06", "30.66", **{id_field: f"K{i}"}) for i in range(3)]
    src.write_text(_feature_collection(features), encoding="utf-8")
    city.import_layer(src, layer="p", kind="poi", id=id_field)
    assert city.layer("p").index.tolist() == ["p.K0", "p.K1", "p.K2"]
    again = city.import_layer(src, layer="p", kind="poi", id=id_field)
    assert again.unchanged == 3


# -- non-finite and huge numbers ------------------------------------------------
NONFINITE_GEOJSON = ["Infinity", "-Infinity", "NaN"]
NONFINITE_CSV = ["inf", "-inf", "nan", "Infinity", "-Infinity", "NaN", "1e400", "-1e400"]
HUGE = ["1e308", "-1e308", "1e30", "9e15"]


@pytest.mark.parametrize("value", NONFINITE_GEOJSON + HUGE)
@pytest.mark.parametrize("axis", ["x", "y"])
def test_geojson_nonfinite_or_huge_coordinate_rejects_that_row(
    city: twin.Twin, tmp_path: Path, value: str, axis: str
) -> None:
    x, y = (value, "30.66") if axis == "x" else ("104.06", value)
    src = tmp_path / "p.geojson"
    good = [_point_feature(f"g{i}", f"104.0{i}", "30.66") for i in range(3)]
    src.write_text(_feature_collection([_point_feature("bad", x, y), *good]), encoding="utf-8")
    report = city.import_layer(src, layer="p", kind="poi", id="id")
    assert (report.read, report.imported, report.rejected) == (4, 3, 1)
    assert report.rejections[0].source_id == "bad"
    assert sorted(city.layer("p").index) == ["p.g0", "p.g1", "p.g2"]


@pytest.mark.parametrize("value", NONFINITE_CSV + HUGE)
def test_csv_nonfinite_or_huge_coordinate_rejects_that_row(
    city: twin.Twin, tmp_path: Path, value: str
) -> None:
    src = tmp_path / "s.csv"
    src.write_text(
        f"id,lon,lat\nbad,{value},30.66\ng0,104.06,30.66\ng1,104.07,30.67\n", encoding="utf-8"
    )
    report = city.import_layer(
        src, layer="s", kind="poi", id="id", src_crs="EPSG:4490", x="lon", y="lat"
    )
    assert (report.imported, report.rejected) == (2, 1)
    assert report.rejections[0].source_id == "bad"


# -- encodings -----------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "big5", "utf-16", "latin-1", "cp1252"])
def test_geojson_that_is_not_utf8_is_a_source_error(
    city: twin.Twin, tmp_path: Path, encoding: str
) -> None:
    name = "成都" if encoding not in ("latin-1", "cp1252") else "Zürich café"
    src = tmp_path / "p.geojson"
    src.write_bytes(
        _feature_collection([_point_feature("a", "104.06", "30.66", 名称=name)])
        .replace('"名称"', '"name"')
        .encode(encoding)
    )
    before = city.path.read_bytes()
    with pytest.raises(twin.errors.SourceError, match="not UTF-8"):
        city.import_layer(src, layer="p", kind="poi", id="id")
    assert city.path.read_bytes() == before


@pytest.mark.parametrize("encoding", ["UTF-16", "UTF-32", "ascii", "utf-8"])
def test_wrong_shapefile_encoding_is_a_source_error(
    city: twin.Twin, encoding: str, tmp_path: Path
) -> None:
    # The sample DBF is GBK (its .cpg says so): none of these decodes it.
    with pytest.raises(twin.errors.SourceError, match=f"encoding='{encoding}'"):
        city.import_layer(SAMPLES / "parcels.shp", layer="p", kind="parcel", encoding=encoding)


@pytest.mark.parametrize("encoding", ["bogus", "utf-9", "GBK2"])
def test_unknown_encoding_name_is_a_usage_error(city: twin.Twin, encoding: str) -> None:
    with pytest.raises(twin.errors.UsageError, match="not a known text encoding"):
        city.import_layer(SAMPLES / "parcels.shp", layer="p", kind="parcel", encoding=encoding)


@pytest.mark.parametrize("where", ["nonsense ===", "地块编码 = ", "((", "no_such_field = 1"])
def test_invalid_where_is_a_usage_error(city: twin.Twin, where: str) -> None:
    with pytest.raises(twin.errors.UsageError, match="where="):
        city.import_layer(SAMPLES / "parcels.shp", layer="p", kind="parcel", where=where)


@pytest.mark.parametrize("level", ["secret", "top-secret", "", "PUBLICX"])
def test_unknown_classification_is_a_usage_error(
    city: twin.Twin, tmp_path: Path, level: str
) -> None:
    with pytest.raises(twin.errors.UsageError, match="public, internal, restricted"):
        city.import_layer(_buildings(tmp_path), layer="b", kind="building", classification=level)


# -- deliveries -----------------------------------------------------------------
def _empty_sources(tmp_path: Path) -> dict[str, tuple[Path, dict]]:
    geojson = tmp_path / "empty.geojson"
    geojson.write_text(_feature_collection([]), encoding="utf-8")
    csv = tmp_path / "header.csv"
    csv.write_text("建筑编码,lon,lat\n", encoding="utf-8")
    gpkg = tmp_path / "empty.gpkg"
    buildings_frame(1).iloc[:0].to_file(gpkg)
    swapped = tmp_path / "swapped.csv"
    swapped.write_text("建筑编码,lon,lat\nB000,30.66,104.06\nB001,30.67,104.07\n", "utf-8")
    csv_opts = {"src_crs": "EPSG:4490", "x": "lon", "y": "lat"}
    return {
        "empty-geojson": (geojson, {}),
        "header-only-csv": (csv, csv_opts),
        "empty-gpkg": (gpkg, {}),
        "swapped-xy-csv": (swapped, csv_opts),
    }


@pytest.mark.parametrize("case", ["empty-geojson", "header-only-csv", "empty-gpkg"])
def test_empty_delivery_fails_and_keeps_the_layer(
    city: twin.Twin, tmp_path: Path, case: str
) -> None:
    city.import_layer(_buildings(tmp_path), layer="b", kind="building", id="建筑编码")
    before = city.path.read_bytes()
    src, options = _empty_sources(tmp_path)[case]
    with pytest.raises(twin.errors.InputDataError, match="holds no features"):
        city.import_layer(src, layer="b", kind="building", id="建筑编码", **options)
    assert city.path.read_bytes() == before
    assert city.info("b").feature_count == 5


@pytest.mark.parametrize(
    ("options", "cause"),
    [
        ({"src_crs": "EPSG:4490", "x": "lon", "y": "lat"}, "swapped"),
        ({"src_crs": "EPSG:4544", "x": "lon", "y": "lat"}, "degrees"),
    ],
    ids=["swapped-xy", "degrees-as-metres"],
)
def test_every_row_rejected_by_crs_fails_naming_the_cause(
    city: twin.Twin, tmp_path: Path, options: dict, cause: str
) -> None:
    src = tmp_path / "s.csv"
    rows = ["30.66,104.06", "30.67,104.07"] if cause == "swapped" else ["104.06,30.66"]
    src.write_text("id,lon,lat\n" + "\n".join(f"s{i},{r}" for i, r in enumerate(rows)) + "\n")
    with pytest.raises(twin.errors.CRSError, match=f"{cause}.*src_crs=|src_crs=.*{cause}"):
        city.import_layer(src, layer="s", kind="poi", id="id", **options)
    assert city.layers == []


def test_geojson_in_metres_without_crs_member_names_the_cause(
    city: twin.Twin, tmp_path: Path
) -> None:
    src = tmp_path / "gk.geojson"
    features = [_point_feature(f"p{i}", str(X0 + i), str(Y0)) for i in range(3)]
    src.write_text(_feature_collection(features), encoding="utf-8")
    with pytest.raises(twin.errors.CRSError, match=r"look like metres.*src_crs="):
        city.import_layer(src, layer="p", kind="poi", id="id")
    report = city.import_layer(src, layer="p", kind="poi", id="id", src_crs=GK105)
    assert report.imported == 3


@pytest.mark.parametrize("code", ["EPSG::999999", "EPSG::0", "EPSG::123456789", "FOO::4326"])
def test_geojson_crs_member_that_does_not_exist_is_an_error(
    city: twin.Twin, tmp_path: Path, code: str
) -> None:
    src = tmp_path / "p.geojson"
    body = _feature_collection([_point_feature("a", "104.06", "30.66")])
    member = f'"crs": {{"type": "name", "properties": {{"name": "urn:ogc:def:crs:{code}"}}}}, '
    src.write_text(body.replace('"features"', member + '"features"', 1), encoding="utf-8")
    with pytest.raises(twin.errors.CRSError, match="does not exist"):
        city.import_layer(src, layer="p", kind="poi", id="id")


def test_data_far_from_the_twin_is_an_error(city: twin.Twin, tmp_path: Path) -> None:
    city.import_layer(_buildings(tmp_path), layer="b", kind="building", id="建筑编码")
    far = tmp_path / "far.csv"  # Chongqing lon/lat, about 270 km from Chengdu
    far.write_text("id,lon,lat\nq0,106.55,29.56\nq1,106.56,29.57\n", encoding="utf-8")
    with pytest.raises(twin.errors.CRSError, match="km from the data already in the twin"):
        city.import_layer(
            far, layer="q", kind="poi", id="id", src_crs="EPSG:4490", x="lon", y="lat"
        )


@pytest.mark.parametrize("coords", ["gcj02", "bd09"])
def test_web_map_coords_need_no_src_crs(city: twin.Twin, tmp_path: Path, coords: str) -> None:
    src = tmp_path / "s.csv"
    src.write_text("id,lon,lat\ns0,104.0665,30.6598\n", encoding="utf-8")
    report = city.import_layer(src, layer="s", kind="poi", id="id", coords=coords)
    assert report.src_crs == "EPSG:4326" and report.imported == 1


@pytest.mark.parametrize("kept", [0, 1, 369, 738])
def test_truncated_dbf_is_detected(city: twin.Twin, tmp_path: Path, kept: int) -> None:
    for part in SAMPLES.glob("parcels.*"):
        shutil.copy(part, tmp_path / part.name)
    dbf = tmp_path / "parcels.dbf"
    raw = dbf.read_bytes()
    header, record = int.from_bytes(raw[8:10], "little"), int.from_bytes(raw[10:12], "little")
    declared = int.from_bytes(raw[4:8], "little")
    dbf.write_bytes(raw[: header + kept * record + record // 2])  # cut inside a record
    with pytest.raises(twin.errors.SourceError, match=f"declares {declared} features"):
        city.import_layer(tmp_path / "parcels.shp", layer="p", kind="parcel", id="地块编码")
    assert city.layers == []


@pytest.mark.parametrize(
    ("kept", "allowed"), [(5, True), (4, True), (3, False), (1, False), (0, False)]
)
def test_reimport_removing_more_than_20_percent_fails(
    city: twin.Twin, tmp_path: Path, kept: int, allowed: bool
) -> None:
    frame = buildings_frame(5)
    first = tmp_path / "b.gpkg"
    frame.to_file(first)
    city.import_layer(first, layer="b", kind="building", id="建筑编码")
    again = tmp_path / "b2" / "b.gpkg"
    again.parent.mkdir()
    extra = gpd.GeoDataFrame(
        {"建筑编码": ["N1"], "层数": [1], "建筑高度": [3.0], "建筑名称": ["新"]},
        geometry=[shapely.box(X0, Y0 + 50, X0 + 10, Y0 + 60)],
        crs=GK105,
    )
    gpd.GeoDataFrame(__import__("pandas").concat([frame.iloc[:kept], extra]), crs=GK105).to_file(
        again
    )
    before = city.path.read_bytes()
    if allowed:
        assert (
            city.import_layer(again, layer="b", kind="building", id="建筑编码").removed == 5 - kept
        )
        return
    with pytest.raises(twin.errors.InputDataError, match=f"remove {5 - kept} of the 5"):
        city.import_layer(again, layer="b", kind="building", id="建筑编码")
    assert city.path.read_bytes() == before
    report = city.import_layer(
        again, layer="b", kind="building", id="建筑编码", allow_removals=True
    )
    assert (report.removed, report.added, city.info("b").feature_count) == (5 - kept, 1, kept + 1)


def test_another_id_field_needs_replace(city: twin.Twin, tmp_path: Path) -> None:
    src = _buildings(tmp_path, 3)
    city.import_layer(src, layer="b", kind="building", id="建筑编码")
    with pytest.raises(twin.errors.UsageError, match="replace=True"):
        city.import_layer(src, layer="b", kind="building", id="建筑名称", allow_removals=True)
    report = city.import_layer(
        src, layer="b", kind="building", id="建筑名称", replace=True, allow_removals=True
    )
    assert (report.added, report.removed) == (3, 3)


def test_another_dataset_under_another_name_needs_replace(city: twin.Twin, tmp_path: Path) -> None:
    city.import_layer(_buildings(tmp_path, 5), layer="b", kind="building", id="建筑编码")
    other = buildings_frame(5)
    other["建筑编码"] = [f"Z{i}" for i in range(5)]
    other["geometry"] = boxes(5, gap=40)
    src = tmp_path / "roads_by_mistake.geojson"
    other.to_crs(4490).to_file(src)
    with pytest.raises(twin.errors.UsageError, match="replace=True"):
        city.import_layer(src, layer="b", kind="building", id="建筑编码", allow_removals=True)
    renamed = tmp_path / "b_2026.geojson"  # a re-delivery under a new name is fine
    buildings_frame(5).to_crs(4490).to_file(renamed)
    assert city.import_layer(renamed, layer="b", kind="building", id="建筑编码").unchanged == 5


def test_a_delivery_wholly_rejected_names_its_commonest_reasons(
    city: twin.Twin, tmp_path: Path
) -> None:
    """Lines delivered as buildings: the error says why, since a failed import shows no report."""
    src = tmp_path / "roads.gpkg"
    lines = [shapely.LineString([(X0, Y0 + 10 * i), (X0 + 50, Y0 + 10 * i)]) for i in range(2)]
    no_id = shapely.box(X0, Y0, X0 + 10, Y0 + 10)
    frame = gpd.GeoDataFrame({"code": ["r0", "r1", None]}, geometry=[*lines, no_id], crs=GK105)
    frame.to_file(src)
    with pytest.raises(twin.errors.InputDataError) as raised:
        city.import_layer(src, layer="b", kind="building", id="code")
    message = str(raised.value)
    assert message.startswith("all 3 features of roads.gpkg were rejected: ")
    assert "a LineString does not fit kind building (polygon) (2), " in message
    assert message.count("(1)") == 1  # the row without an id, the second reason
    assert city.layers == []
