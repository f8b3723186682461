"""Real OGC API Features clients against a real ``twin serve``: GDAL (Debian's ogrinfo /
ogr2ogr and pyogrio's own GDAL) and OWSLib read every feature with the right attributes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from owslib.ogcapi.features import Features

import twin
from tests.api.conftest import LiveServer

needs_ogr = pytest.mark.skipif(
    shutil.which("ogrinfo") is None, reason="GDAL's command-line tools (Debian gdal-bin)"
)


def stored(server: LiveServer, layer: str) -> pd.DataFrame:
    return twin.Twin.open(server.twin).layer(layer)


def check_same_features(got: pd.DataFrame, expected: pd.DataFrame, columns: list[str]) -> None:
    """Same uids, and every listed attribute equal (missing values on both sides)."""
    got = got.set_index("id") if "id" in got.columns else got
    assert len(got) == len(expected)
    assert set(got.index) == set(expected.index)
    got = got.loc[expected.index]
    for name in columns:
        mine, theirs = got[name].to_numpy(dtype=object), expected[name].to_numpy(dtype=object)
        for a, b in zip(mine, theirs, strict=True):
            if pd.isna(b):
                assert a is None or pd.isna(a), name
            elif isinstance(b, float):
                assert float(a) == pytest.approx(b), name
            else:
                assert a == b, name


@needs_ogr
def test_ogrinfo_lists_public_layers_with_counts(live_server: LiveServer) -> None:
    result = subprocess.run(
        ["ogrinfo", "-ro", "-so", f"OAPIF:{live_server.url}", "parcels"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Feature Count: 739" in result.stdout
    listing = subprocess.run(
        ["ogrinfo", "-ro", "-q", f"OAPIF:{live_server.url}"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "buildings" in listing and "water_pipes" not in listing


@needs_ogr
def test_ogr2ogr_copies_every_building(live_server: LiveServer, tmp_path: Path) -> None:
    target = tmp_path / "copy.gpkg"
    result = subprocess.run(
        ["ogr2ogr", "-f", "GPKG", str(target), f"OAPIF:{live_server.url}", "buildings"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    copy = pyogrio.read_dataframe(target)
    expected = stored(live_server, "buildings")
    check_same_features(copy, expected, ["建筑编码", "floors", "height_m", "name", "use"])
    # Geometries arrive in CRS84 as the service's default, equal to our own transform.
    mine = expected.to_crs("OGC:CRS84").geometry
    theirs = copy.set_index("id").loc[expected.index].geometry.to_numpy()
    assert shapely.equals_exact(np.asarray(mine.array), theirs, tolerance=1e-9).all()


@needs_ogr
def test_ogr2ogr_with_a_key_reads_a_restricted_layer(
    live_server: LiveServer, tmp_path: Path
) -> None:
    target = tmp_path / "valves.geojson"
    header = f"X-API-Key: {live_server.keys['restricted']}"
    command = ["ogr2ogr", "--config", "GDAL_HTTP_HEADERS", header, "-f", "GeoJSON", str(target)]
    result = subprocess.run(
        [*command, f"OAPIF:{live_server.url}", "valves"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    copy = pyogrio.read_dataframe(target)
    check_same_features(copy, stored(live_server, "valves"), ["status", "network", "diameter_mm"])
    anonymous = subprocess.run(
        ["ogrinfo", "-ro", "-so", f"OAPIF:{live_server.url}", "valves"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert anonymous.returncode != 0 and "Feature Count" not in anonymous.stdout


def test_pyogrio_gdal_reads_a_whole_layer(live_server: LiveServer) -> None:
    frame = pyogrio.read_dataframe(f"OAPIF:{live_server.url}", layer="parcels")
    expected = stored(live_server, "parcels")
    check_same_features(
        frame, expected, ["parcel_code", "land_use", "far_limit", "height_limit_m", "name"]
    )
    # Whatever CRS GDAL chose to ask for, the shapes land where ours are.
    back = frame.set_index("id").loc[expected.index].to_crs(expected.crs)
    distance = shapely.hausdorff_distance(
        np.asarray(back.geometry.array), np.asarray(expected.geometry.array)
    )
    assert float(distance.max()) < 1e-3  # metres


def test_owslib_pages_through_every_road(live_server: LiveServer) -> None:
    client = Features(live_server.url)
    ids = [c["id"] for c in client.collections()["collections"]]
    assert "roads" in ids and "water_pipes" not in ids
    assert client.collection("roads")["featureCount"] == 350
    features, offset = [], 0
    while True:
        page = client.collection_items("roads", limit=60, offset=offset)
        features += page["features"]
        offset += 60
        if offset >= page["numberMatched"]:
            break
    got = pd.DataFrame([{"id": f["id"], **f["properties"]} for f in features])
    check_same_features(
        got, stored(live_server, "roads"), ["name", "road_class", "lanes", "speed_kmh", "oneway"]
    )


def test_owslib_with_key_and_bbox(live_server: LiveServer) -> None:
    client = Features(live_server.url, headers={"X-API-Key": live_server.keys["restricted"]})
    pipes = stored(live_server, "water_pipes").to_crs("OGC:CRS84")
    x0, y0, x1, y1 = pipes.total_bounds
    box = [x0, y0, (x0 + x1) / 2, (y0 + y1) / 2]
    expected = set(pipes.index[pipes.intersects(shapely.box(*box))])
    page = client.collection_items("water_pipes", bbox=box, limit=1000)
    assert {f["id"] for f in page["features"]} == expected
    assert json.loads(json.dumps(page))["numberMatched"] == len(expected)
