"""LOD1 solids (watertight, exact volumes) and CityJSON 2.0 / CityJSONSeq checked by cjio,
cityjson-lib and the specification's invariants, then read back with the same uids."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

import twin
from tests.conftest import run_cli
from twin.city3d import import_cityjson
from twin.cityjson import read_cityjson, write_cityjson
from twin.lod1 import lod1_blocks, solid_mesh


def _tricky() -> gpd.GeoDataFrame:
    """A courtyard building (hole), a two-part building, a concave L and one without height."""
    courtyard = shapely.box(0, 0, 30, 30).difference(shapely.box(10, 10, 20, 20))
    two_parts = shapely.MultiPolygon([shapely.box(50, 0, 60, 10), shapely.box(70, 0, 75, 20)])
    ell = shapely.Polygon([(100, 0), (120, 0), (120, 5), (105, 5), (105, 20), (100, 20)])
    return gpd.GeoDataFrame(
        {
            "height_m": [12.0, 7.5, None, None],
            "floors": [4, 2, 3, None],
            "ground_m": [500.0, 501.25, 499.0, 500.0],
        },
        geometry=[courtyard, two_parts, ell.reverse(), shapely.box(200, 0, 210, 10)],
        index=["b.court", "b.two", "b.ell", "b.none"],
        crs="EPSG:4544",
    )


def test_tricky_solids_are_watertight_with_exact_volumes() -> None:
    frame = _tricky()
    blocks = lod1_blocks(frame)
    assert list(blocks.uids) == ["b.court", "b.two", "b.ell"]  # no height: not extruded
    assert list(blocks.height_source) == ["height", "height", "floors"]
    for i, uid in enumerate(blocks.uids):
        mesh = solid_mesh(blocks, i)
        assert mesh.is_watertight and mesh.is_winding_consistent
        expected = frame.geometry[uid].area * blocks.height_m[i]
        assert mesh.volume == pytest.approx(expected, rel=1e-12)  # positive: outward normals
        low, high = mesh.bounds[:, 2]
        assert low == frame.loc[uid, "ground_m"] and high == low + blocks.height_m[i]
    assert len(list(blocks.parts(1))) == 2


def test_every_sample_solid_is_watertight(sample3d_read: twin.Twin) -> None:
    buildings = sample3d_read.layer("buildings")
    blocks = lod1_blocks(buildings)
    assert len(blocks) == len(buildings) == 3000
    for i, uid in enumerate(blocks.uids):
        mesh = solid_mesh(blocks, i)
        assert mesh.is_watertight, uid
        expected = buildings.geometry[uid].area * buildings.loc[uid, "height_m"]
        assert mesh.volume == pytest.approx(expected, rel=1e-9), uid


def _invariants(document: dict, vertices: np.ndarray) -> None:
    """CityJSON 2.0: indices in range, closed shells with outward surfaces, unique ids."""
    n = len(vertices)
    scale = np.array(document["transform"]["scale"])
    shift = np.array(document["transform"]["translate"])
    real = vertices * scale + shift
    for uid, obj in document["CityObjects"].items():
        assert obj["type"] == "Building"
        (geometry,) = obj["geometry"]
        assert geometry["lod"] == "1.2"
        solids = (
            geometry["boundaries"] if geometry["type"] == "MultiSolid" else [geometry["boundaries"]]
        )
        for solid in solids:
            (shell,) = solid
            edges: dict[tuple[int, int], int] = {}
            volume = 0.0
            for surface in shell:
                for ring in surface:
                    assert all(0 <= i < n for i in ring), uid
                    for a, b in zip(ring, [*ring[1:], ring[0]], strict=True):
                        edges[(a, b)] = edges.get((a, b), 0) + 1
                    # Divergence theorem on the fan of the ring: positive when outward.
                    p = real[ring]
                    for k in range(1, len(p) - 1):
                        volume += np.dot(p[0], np.cross(p[k], p[k + 1])) / 6.0
            # Closed 2-manifold: every directed edge is matched by its reverse once.
            assert all(edges.get((b, a)) == count for (a, b), count in edges.items()), uid
            assert volume > 0, uid


def test_cityjson_invariants_and_independent_readers(sample3d_read: twin.Twin, tmp_path) -> None:
    buildings = sample3d_read.layer("buildings")
    path = write_cityjson(buildings, tmp_path / "sample.city.json")
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["type"] == "CityJSON" and document["version"] == "2.0"
    assert document["metadata"]["referenceSystem"].endswith("/EPSG/0/4544")
    vertices = np.asarray(document["vertices"])
    assert vertices.dtype.kind == "i"
    assert len(document["CityObjects"]) == 3000
    _invariants(document, vertices)
    attrs = document["CityObjects"]["buildings.JZ0000003"]["attributes"]
    assert attrs["storeysAboveGround"] == 5 and attrs["height_source"] == "dsm"
    # cjio (PyPI) loads it and reports every object.
    info = subprocess.run(
        [str(Path(sys.executable).with_name("cjio")), str(path), "info"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "CityJSON version = 2.0" in info.stdout and "Building (3000)" in info.stdout
    assert "EPSG = 4544" in info.stdout
    # cityjson-lib (PyPI) parses it.
    import cityjson_lib

    model = cityjson_lib.CityModel.parse_document_bytes(path.read_bytes())
    summary = model.summary()
    assert summary.cityobject_count == 3000 and summary.geometry_count == 3000
    assert summary.vertex_count == len(vertices) and summary.has_transform
    assert sorted(model.cityobject_ids()) == sorted(buildings.index)


def test_tricky_cityjson_invariants(tmp_path) -> None:
    path = write_cityjson(_tricky(), tmp_path / "t.city.json")
    document = json.loads(path.read_text())
    _invariants(document, np.asarray(document["vertices"]))
    assert document["CityObjects"]["b.two"]["geometry"][0]["type"] == "MultiSolid"
    court = document["CityObjects"]["b.court"]["geometry"][0]["boundaries"][0]
    assert len(court[0]) == 2 and len(court) == 2 + 8  # floor with a hole, roof, 8 walls
    back = read_cityjson(path)
    for uid in back.index:
        assert back.geometry[uid].area == pytest.approx(_tricky().geometry[uid].area, abs=1e-3)
    assert back.loc["b.two", "height_m"] == 7.5 and back.loc["b.ell", "height_m"] == 9.0


def test_cityjsonseq_and_read_back_into_a_twin(sample3d_read: twin.Twin, tmp_path) -> None:
    buildings = sample3d_read.layer("buildings")
    path = write_cityjson(buildings, tmp_path / "sample.city.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["CityObjects"] == {} and header["vertices"] == []
    assert len(lines) == 3001
    import cityjson_lib

    feature = cityjson_lib.CityModel.parse_feature_with_base_bytes(
        lines[1].encode(), lines[0].encode()
    )
    assert feature.cityobject_ids() == [json.loads(lines[1])["id"]]
    for line in lines[1::500]:
        item = json.loads(line)
        doc = {"transform": header["transform"], "CityObjects": item["CityObjects"]}
        _invariants(doc, np.asarray(item["vertices"]))
    fresh = twin.Twin.create(tmp_path / "back.gpkg", crs="EPSG:4544")
    report = import_cityjson(fresh, path, layer="buildings")
    assert report.imported == 3000
    back = fresh.layer("buildings")
    assert sorted(back.index) == sorted(buildings.index)
    np.testing.assert_allclose(
        back["height_m"].sort_index(), buildings["height_m"].sort_index(), atol=0.002
    )
    areas = back.geometry.area.sort_index() - buildings.geometry.area.sort_index()
    assert areas.abs().max() < 0.1  # 1 mm quantisation
    # and through the CLI, a .city.json into another twin
    cli_twin = twin.Twin.create(tmp_path / "cli.gpkg", crs="EPSG:4544")
    doc = tmp_path / "s.city.json"
    assert run_cli("export", str(sample3d_read.path), "buildings", str(doc)).returncode == 0
    result = run_cli("import", str(cli_twin.path), str(doc), "-l", "buildings", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["imported"] == 3000
    assert sorted(twin.Twin.open(cli_twin.path).layer("buildings").index) == sorted(buildings.index)
