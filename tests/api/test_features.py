"""OGC API Features over a real ``twin serve``: every answer checked against the twin itself.

Expected values come from ``twin.Twin`` (the library reading the file) and from
independent geopandas / pyproj computations, never from the service.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

import twin
from tests.api.conftest import LiveServer

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
PUBLIC = ["parcels", "buildings", "roads", "districts", "grids"]


def all_features(server: LiveServer, layer: str, role: str | None = None, **params: Any) -> list:
    """Follow ``next`` links from the first page; return every feature."""
    features: list[dict[str, Any]] = []
    response = server.get(f"/collections/{layer}/items", role, **params)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        features += body["features"]
        assert body["numberReturned"] == len(body["features"])
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        if not nxt:
            return features
        response = httpx.get(nxt[0], headers=server.headers(role), timeout=60)


def as_json(value: Any) -> Any:
    """What a stored value becomes in JSON: missing values are null."""
    return None if pd.isna(value) else value


def test_landing_page_and_conformance(live_server: LiveServer) -> None:
    landing = live_server.get("/").json()
    rels = {link["rel"]: link["href"] for link in landing["links"]}
    assert rels["data"] == live_server.url + "/collections"
    assert rels["conformance"] == live_server.url + "/conformance"
    api = live_server.get("/api")
    assert api.status_code == 200 and "/collections/{collectionId}/items" in api.json()["paths"]
    classes = live_server.get("/conformance").json()["conformsTo"]
    for part in (
        "features-1/1.0/conf/core",
        "features-1/1.0/conf/geojson",
        "features-2/1.0/conf/crs",
    ):
        assert f"http://www.opengis.net/spec/ogc{'api-' + part}" in classes


def test_collections_list_public_layers_with_extent_and_crs(live_server: LiveServer) -> None:
    city = twin.Twin.open(live_server.twin)
    body = live_server.get("/collections").json()
    ids = [c["id"] for c in body["collections"]]
    public = [i.name for i in city.layer_infos() if i.classification == "public"]
    assert ids == public
    assert set(PUBLIC) <= set(ids) and "water_pipes" not in ids and "sensors" not in ids
    parcels = next(c for c in body["collections"] if c["id"] == "parcels")
    expected = city.layer("parcels").to_crs("OGC:CRS84").total_bounds
    got = parcels["extent"]["spatial"]["bbox"][0]
    # The extent must contain the layer (transformed corners of the stored extent).
    assert got[0] <= expected[0] and got[1] <= expected[1]
    assert got[2] >= expected[2] and got[3] >= expected[3]
    assert np.allclose(got, expected, atol=2e-4)
    assert parcels["storageCrs"] == EPSG + "4544"
    assert parcels["crs"] == [CRS84, EPSG + "4326", EPSG + "4490", EPSG + "4544"]
    assert parcels["featureCount"] == 739


def test_paging_returns_every_feature_once_with_attributes(live_server: LiveServer) -> None:
    frame = twin.Twin.open(live_server.twin).layer("buildings")
    features = all_features(live_server, "buildings", limit=700)
    ids = [f["id"] for f in features]
    assert len(ids) == len(set(ids)) == len(frame) == 3000
    assert set(ids) == set(frame.index)
    by_id = {f["id"]: f for f in features}
    for uid in frame.index[[0, 1234, 2999]]:
        props = by_id[uid]["properties"]
        row = frame.loc[uid]
        for name in ("建筑编码", "floors", "height_m", "use", "name"):
            assert props[name] == as_json(row[name]), name
    # Missing values travel as JSON null.
    assert frame["height_m"].isna().any()
    missing = frame.index[frame["height_m"].isna()][0]
    assert by_id[missing]["properties"]["height_m"] is None


def test_offset_pages_do_not_overlap(live_server: LiveServer) -> None:
    first = live_server.get("/collections/roads/items", limit=100).json()
    second = live_server.get("/collections/roads/items", limit=100, offset=100).json()
    assert first["numberMatched"] == second["numberMatched"] == 350
    ids_1 = [f["id"] for f in first["features"]]
    ids_2 = [f["id"] for f in second["features"]]
    assert len(ids_1) == len(ids_2) == 100 and not set(ids_1) & set(ids_2)
    prev = [link for link in second["links"] if link["rel"] == "prev"]
    assert prev and "offset=0" in prev[0]["href"]


def _crs84_frame(server: LiveServer, layer: str) -> gpd.GeoDataFrame:
    return twin.Twin.open(server.twin).layer(layer).to_crs("OGC:CRS84")


def test_bbox_in_crs84_selects_what_geopandas_selects(live_server: LiveServer) -> None:
    frame = _crs84_frame(live_server, "buildings")
    x0, y0, x1, y1 = frame.total_bounds
    box = (x0 + (x1 - x0) * 0.3, y0 + (y1 - y0) * 0.4, x0 + (x1 - x0) * 0.45, y0 + (y1 - y0) * 0.5)
    expected = set(frame.index[frame.intersects(shapely.box(*box))])
    assert 50 < len(expected) < 1000
    got = all_features(live_server, "buildings", bbox=",".join(map(str, box)), limit=1000)
    assert {f["id"] for f in got} == expected


def test_bbox_crs_4490_is_latitude_first(live_server: LiveServer) -> None:
    frame = _crs84_frame(live_server, "parcels")
    lon0, lat0, lon1, lat1 = 104.055, 30.655, 104.065, 30.662
    expected = set(frame.index[frame.intersects(shapely.box(lon0, lat0, lon1, lat1))])
    assert expected
    got = all_features(
        live_server,
        "parcels",
        bbox=f"{lat0},{lon0},{lat1},{lon1}",
        **{"bbox-crs": EPSG + "4490"},
        limit=1000,
    )
    assert {f["id"] for f in got} == expected


@pytest.mark.parametrize("code", ["4490", "4326"])
def test_crs_output_matches_pyproj(live_server: LiveServer, code: str) -> None:
    frame = twin.Twin.open(live_server.twin).layer("districts")
    response = live_server.get("/collections/districts/items", crs=EPSG + code)
    assert response.headers["content-crs"] == f"<{EPSG}{code}>"
    # Authority axis order: latitude, longitude.
    to_geo = pyproj.Transformer.from_crs("EPSG:4544", f"EPSG:{code}", always_xy=False)
    for feature in response.json()["features"]:
        stored = shapely.get_coordinates(frame.loc[feature["id"], "geometry"])
        northing, easting = stored[:, 1], stored[:, 0]
        lat, lon = to_geo.transform(northing, easting)  # EPSG:4544 is northing first too
        got = shapely.get_coordinates(shapely.geometry.shape(feature["geometry"]))
        assert np.allclose(got[:, 0], lat, atol=1e-9) and np.allclose(got[:, 1], lon, atol=1e-9)


def test_default_crs84_and_twin_crs_axis_order(live_server: LiveServer) -> None:
    frame = twin.Twin.open(live_server.twin).layer("grids")
    uid = frame.index[3]
    plain = live_server.get(f"/collections/grids/items/{uid}").json()
    assert plain["id"] == uid
    expected = shapely.get_coordinates(frame.to_crs("OGC:CRS84").loc[uid, "geometry"])
    assert np.allclose(shapely.get_coordinates(shapely.geometry.shape(plain["geometry"])), expected)
    native = live_server.get(f"/collections/grids/items/{uid}", crs=EPSG + "4544")
    assert native.headers["content-crs"] == f"<{EPSG}4544>"
    stored = shapely.get_coordinates(frame.loc[uid, "geometry"])
    got = shapely.get_coordinates(shapely.geometry.shape(native.json()["geometry"]))
    assert np.allclose(got, stored[:, ::-1])  # EPSG:4544 axes: northing, easting


def test_property_filter(live_server: LiveServer) -> None:
    frame = twin.Twin.open(live_server.twin).layer("parcels")
    expected = set(frame.index[frame["land_use"] == "R2"])
    assert 0 < len(expected) < len(frame)
    got = all_features(live_server, "parcels", land_use="R2", limit=1000)
    assert {f["id"] for f in got} == expected
    tall = frame.index[frame["height_limit_m"] == frame["height_limit_m"].iloc[0]]
    value = frame["height_limit_m"].iloc[0]
    got = all_features(live_server, "parcels", height_limit_m=str(value), limit=1000)
    assert {f["id"] for f in got} == set(tall)


def test_one_feature_and_unknown_uid(live_server: LiveServer) -> None:
    frame = twin.Twin.open(live_server.twin).layer("roads")
    uid = frame.index[7]
    feature = live_server.get(f"/collections/roads/items/{uid}").json()
    assert feature["properties"]["name"] == frame.loc[uid, "name"]
    assert feature["properties"]["lanes"] == frame.loc[uid, "lanes"]
    missing = live_server.get("/collections/roads/items/roads.NOPE")
    assert missing.status_code == 404
    assert "roads.NOPE" in missing.json()["description"]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"bbox": "104,30,104.1"}, "4 numbers"),
        ({"bbox": "104,30,abc,31"}, "numbers"),
        ({"bbox": "-190,30,104,31"}, "out of range"),
        ({"bbox": "104,95,105,96"}, "out of range"),
        ({"bbox": "105,30,104,31"}, "minimum"),
        ({"crs": "EPSG:3857"}, "not offered"),
        ({"crs": "urn:nonsense"}, "unknown CRS"),
        ({"bbox": "1,2,3,4", "bbox-crs": "EPSG:99999"}, "bbox-crs"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"datetime": "yesterday"}, "RFC 3339"),
        ({"datetime": "2026-01-01/2026-02-01"}, "interval"),
        ({"height_m": "tall"}, "number"),
        ({"colour": "red"}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_400_json(live_server: LiveServer, params: dict, needle: str) -> None:
    response = live_server.get("/collections/buildings/items", **params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == 400 and needle in body["description"]
    assert "Traceback" not in response.text and "\n" not in body["description"]


def test_unknown_collection_and_path_are_404_json(live_server: LiveServer) -> None:
    for path in ("/collections/nowhere", "/collections/nowhere/items", "/not/a/route"):
        response = live_server.get(path)
        assert response.status_code == 404
        assert response.json()["code"] == "NotFound"


def test_item_timestamps_are_iso(live_server: LiveServer) -> None:
    frame = twin.Twin.open(live_server.twin).layer("districts")
    feature = live_server.get(f"/collections/districts/items/{frame.index[0]}").json()
    stamp = pd.Timestamp(feature["properties"]["valid_from"])
    assert stamp == frame["valid_from"].iloc[0]


def test_bbox_in_the_twin_crs_is_northing_first_and_z_is_ignored(live_server: LiveServer) -> None:
    frame = twin.Twin.open(live_server.twin).layer("buildings")
    x0, y0 = frame.total_bounds[:2]
    box = (x0 + 200, y0 + 300, x0 + 600, y0 + 500)
    expected = set(frame.index[frame.intersects(shapely.box(*box))])
    assert expected
    got = all_features(
        live_server,
        "buildings",
        bbox=f"{box[1]},{box[0]},0,{box[3]},{box[2]},100",  # northing, easting, height
        **{"bbox-crs": EPSG + "4544"},
        limit=1000,
    )
    assert {f["id"] for f in got} == expected


def test_other_methods_get_a_json_405(live_server: LiveServer) -> None:
    response = httpx.delete(live_server.url + "/collections/buildings/items", timeout=30)
    assert response.status_code == 405
    assert response.json()["code"] == "MethodNotAllowed"
