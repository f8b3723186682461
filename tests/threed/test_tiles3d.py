"""glb files checked by the Khronos glTF validator (npm) and 3D Tiles 1.1 invariants."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely

import twin
from tests.conftest import ROOT, run_cli
from twin.tiles3d import read_glb

VALIDATOR = ROOT / "tools" / "gltf-validator" / "validate.mjs"


def validate(files: list[Path]) -> list[dict]:
    """Run the Khronos validator (installed by scripts/setup.sh) on glb files."""
    result = subprocess.run(
        ["node", str(VALIDATOR), *map(str, files)], capture_output=True, text=True
    )
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def tileset(sample3d_read: twin.Twin, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiles")
    result = run_cli("export", str(sample3d_read.path), "buildings", str(folder / "tileset.json"))
    assert result.returncode == 0, result.stderr
    return folder


def _to_lonlath(points_ecef: np.ndarray) -> np.ndarray:
    to_geo = pyproj.Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True)
    return np.column_stack(to_geo.transform(*points_ecef.T))


def _inside(region: list[float], inner: list[float], tol: float = 1e-9) -> bool:
    w, s, e, n, lo, hi = region
    w2, s2, e2, n2, lo2, hi2 = inner
    return (
        w2 >= w - tol
        and s2 >= s - tol
        and e2 <= e + tol
        and n2 <= n + tol
        and lo2 >= lo - 1e-3
        and hi2 <= hi + 1e-3
    )


def test_every_glb_is_valid(tileset: Path) -> None:
    files = sorted(tileset.glob("*.glb"))
    assert len(files) == 6  # one per district of the sample
    for report in validate(files):
        assert report["errors"] == 0 and report["warnings"] == 0, report


def test_validator_catches_a_broken_glb(tileset: Path, tmp_path: Path) -> None:
    data = bytearray((tileset / "district_000.glb").read_bytes())
    data[-4000:] = b"\x00" * 4000  # zero the tail of the binary chunk: indices out of range
    broken = tmp_path / "broken.glb"
    broken.write_bytes(bytes(data[:-4000]))
    (report,) = validate([broken])
    assert report["errors"] > 0


def test_tileset_invariants(tileset: Path, sample3d_read: twin.Twin) -> None:
    document = json.loads((tileset / "tileset.json").read_text())
    assert document["asset"]["version"] == "1.1"
    root = document["root"]
    frame = np.asarray(root["transform"]).reshape(4, 4).T  # column-major
    assert document["geometricError"] >= root["geometricError"] > 0
    buildings = sample3d_read.layer("buildings")
    seen: list[str] = []
    for child in root["children"]:
        assert child["geometricError"] < root["geometricError"]
        assert _inside(root["boundingVolume"]["region"], child["boundingVolume"]["region"])
        _, positions, feature_ids, uids = read_glb((tileset / child["content"]["uri"]).read_bytes())
        # glTF y-up -> the tile's z-up frame -> ECEF -> lon, lat, height
        enu = np.column_stack([positions[:, 0], -positions[:, 2], positions[:, 1]])
        ecef = (frame @ np.column_stack([enu, np.ones(len(enu))]).T).T[:, :3]
        lonlath = _to_lonlath(ecef.astype(float))
        w, s, e, n, lo, hi = child["boundingVolume"]["region"]
        lon, lat = np.radians(lonlath[:, 0]), np.radians(lonlath[:, 1])
        assert lon.min() >= w - 1e-7 and lon.max() <= e + 1e-7
        assert lat.min() >= s - 1e-7 and lat.max() <= n + 1e-7
        assert lonlath[:, 2].min() >= lo - 0.05 and lonlath[:, 2].max() <= hi + 0.05
        # A click on a vertex gives a feature id, the property table gives the uid,
        # and that building's footprint is under the vertex.
        to_twin = pyproj.Transformer.from_crs("EPSG:4979", "EPSG:4544", always_xy=True)
        x, y = to_twin.transform(lonlath[:, 0], lonlath[:, 1])
        for vertex in range(0, len(positions), max(1, len(positions) // 50)):
            uid = uids[int(feature_ids[vertex])]
            footprint = buildings.geometry[uid]
            assert shapely.distance(footprint, shapely.Point(x[vertex], y[vertex])) < 0.05
        seen.extend(uids)
    assert sorted(seen) == sorted(buildings.index)


def test_single_glb_export(sample3d_read: twin.Twin, tmp_path: Path) -> None:
    result = run_cli("export", str(sample3d_read.path), "buildings", str(tmp_path / "all.glb"))
    assert result.returncode == 0, result.stderr
    document, _, feature_ids, uids = read_glb((tmp_path / "all.glb").read_bytes())
    assert len(uids) == 3000 and int(feature_ids.max()) == 2999
    lon, lat, _ = document["asset"]["extras"]["origin"]
    assert 104.0 < lon < 104.1 and 30.6 < lat < 30.7
    (report,) = validate([tmp_path / "all.glb"])
    assert report["errors"] == 0
    folder = run_cli("export", str(sample3d_read.path), "buildings", str(tmp_path / "new" / "t"))
    assert folder.returncode == 0, folder.stderr
    assert (tmp_path / "new" / "t" / "tileset.json").exists()
    bad = run_cli("export", str(sample3d_read.path), "roads", str(tmp_path / "r.glb"))
    assert bad.returncode == 2 and "not a building layer" in bad.stderr
