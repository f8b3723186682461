"""The in-memory index (twin.query.index), the key ring and the settings, without a server."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

import twin
from tests.api.conftest import sha256
from tests.conftest import SAMPLES
from twin.query.index import CityIndex, file_identity
from twin.query.live import LiveIndex
from twin_api.security import ANONYMOUS_CALLER, AuditLog, KeyRing, hash_key
from twin_api.settings import Settings


@pytest.fixture
def twin_copy(sample_twin_file: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(sample_twin_file, tmp_path / "city.gpkg"))


def test_index_holds_every_layer_as_the_twin_reads_it(twin_copy: Path) -> None:
    city = twin.Twin.open(twin_copy)
    index = CityIndex.load(twin_copy)
    assert list(index.layers) == city.layers
    assert index.crs_text == city.crs_text == "EPSG:4544"
    for info in city.layer_infos():
        layer = index.layer(info.name)
        assert len(layer) == info.feature_count
        assert layer.info == info
        frame = city.layer(info.name)
        assert list(layer.frame.index) == list(frame.index)
        assert shapely.equals(layer.geometries, np.asarray(frame.geometry.array)).all()


def test_bbox_and_distance_queries_match_geopandas(twin_copy: Path) -> None:
    index = CityIndex.load(twin_copy)
    buildings = index.layer("buildings")
    frame: gpd.GeoDataFrame = buildings.frame
    x0, y0, x1, y1 = frame.total_bounds
    box = (x0 + 300, y0 + 400, x0 + 800, y0 + 700)
    expected = np.flatnonzero(frame.intersects(shapely.box(*box)).to_numpy())
    assert len(expected) > 10
    assert np.array_equal(buildings.bbox(box), expected)
    centre = shapely.Point((x0 + x1) / 2, (y0 + y1) / 2)
    near = np.flatnonzero((frame.distance(centre) <= 75).to_numpy())
    assert len(near) > 0 and np.array_equal(buildings.within_distance(centre, 75), near)
    uid = frame.index[17]
    assert buildings.position(uid) == 17
    with pytest.raises(twin.FeatureNotFoundError, match="no feature 'nope'"):
        buildings.position("nope")
    with pytest.raises(twin.LayerNotFoundError, match="no layer 'nowhere'"):
        index.layer("nowhere")


def test_names_by_kind_and_classification(twin_copy: Path) -> None:
    index = CityIndex.load(twin_copy)
    infos = twin.Twin.open(twin_copy).layer_infos()
    public = [i.name for i in infos if i.classification == "public"]
    assert index.names(max_classification="public") == public
    assert index.names(kind="pipe") == ["water_pipes", "gas_pipes"]
    assert index.names(kind="pipe", max_classification="internal") == []


def test_transformers_round_trip(twin_copy: Path) -> None:
    index = CityIndex.load(twin_copy)
    x, y = index.layer("districts").frame.geometry.iloc[0].centroid.coords[0]
    lon, lat = index.from_twin("OGC:CRS84").transform(x, y)
    assert 103 < lon < 105 and 30 < lat < 31
    back = index.to_twin("OGC:CRS84").transform(lon, lat)
    assert np.allclose(back, (x, y), atol=1e-6)


def test_live_index_swaps_whole_snapshots_and_survives_a_broken_file(twin_copy: Path) -> None:
    live = LiveIndex(twin_copy, poll_s=0.05)
    first = live.current()
    assert live.refresh() is False  # nothing changed
    city = twin.Twin.open(twin_copy)
    spec = twin.read_mapping(SAMPLES / "mapping.yaml")["districts"]
    frame = gpd.read_file(SAMPLES / "boundaries.gpkg", layer="districts").iloc[:4]
    source = twin_copy.with_name("districts-v2.gpkg")
    frame.to_file(source, layer="districts")
    city.import_spec(dataclasses.replace(spec, source=source, allow_removals=True))  # 2 of 6
    assert first.changed()
    assert live.last_swap is None  # no reload yet
    noticed = time.time()
    assert live.refresh() is True
    second = live.current()
    assert second is not first and len(second.layer("districts")) == 4
    assert len(first.layer("districts")) == 6  # the old snapshot is untouched
    assert second.identity == file_identity(twin_copy) and live.reloads == 1
    swap = live.last_swap  # when the reload was asked for, and when the new snapshot took over
    assert swap is not None and swap.version == second.version_tag != first.version_tag
    assert noticed <= swap.heard_at <= swap.swapped_at <= time.time()
    assert swap.update_s == swap.swapped_at - swap.heard_at
    # the reloading thread's own CPU: some, and no more than the wall time it took
    assert swap.update_cpu_s is not None and 0 < swap.update_cpu_s <= swap.update_s
    shutil.copy(twin_copy, twin_copy.with_name("good.gpkg"))
    broken = twin_copy.with_name("broken.gpkg")
    broken.write_bytes(b"not a geopackage")
    broken.replace(twin_copy)
    assert live.refresh() is False
    assert live.current() is second and live.last_error is not None
    assert live.last_swap is swap  # a failed reload swapped nothing
    live.last_error = None
    assert live.refresh() is False and live.last_error is None  # that version is not retried
    shutil.copy(twin_copy.with_name("good.gpkg"), twin_copy)  # a good version again
    assert live.refresh() is True and live.current().identity == file_identity(twin_copy)


def test_key_ring_roles_and_errors(tmp_path: Path) -> None:
    ring = KeyRing([("desk", "ops", sha256("k1"))], roles={"ops": "restricted"})
    assert ring.caller(None) is ANONYMOUS_CALLER
    caller = ring.caller("k1")
    assert (caller.name, caller.role, caller.max_classification.value) == (
        "desk",
        "ops",
        "restricted",
    )
    with pytest.raises(PermissionError, match="unknown API key"):
        ring.caller("k2")
    with pytest.raises(twin.UsageError, match="unknown role 'boss'"):
        KeyRing([("x", "boss", sha256("k"))])
    with pytest.raises(twin.UsageError, match="not a SHA-256 hex digest"):
        KeyRing([("x", "public", "abc")])
    with pytest.raises(twin.UsageError, match="not a classification"):
        KeyRing(roles={"ops": "secret"})
    inline = KeyRing.load(inline=f"a:internal:{hash_key('ka')}, b:public:{hash_key('kb')}")
    assert inline.caller("ka").max_classification.value == "internal" and len(inline) == 2
    with pytest.raises(twin.UsageError, match="name:role:sha256hex"):
        KeyRing.load(inline="just-a-name")
    bad = tmp_path / "keys.yaml"
    bad.write_text("keys:\n  - name: x\n    role: public\n", encoding="utf-8")
    with pytest.raises(twin.UsageError, match="key 1 needs name, role and sha256"):
        KeyRing.load(bad)


def test_audit_lines_are_appended_whole(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "sub" / "audit.jsonl")
    log.write({"who": "a", "layers": ["valves"]})
    log.write({"who": "b", "layers": ["water_pipes"]})
    lines = (tmp_path / "sub" / "audit.jsonl").read_text().splitlines()
    assert [line.split('"who":')[1][:3] for line in lines] == ['"a"', '"b"']


def test_settings_from_environment_and_back(tmp_path: Path) -> None:
    env = {
        "TWIN_API_TWIN": str(tmp_path / "c.gpkg"),
        "TWIN_API_CORS_ORIGINS": "https://a.cn, https://b.cn",
        "TWIN_API_MAX_LIMIT": "500",
        "TWIN_API_KEYS": "x:public:" + "0" * 64,
    }
    settings = Settings.from_env(env)
    assert settings.cors_origins == ("https://a.cn", "https://b.cn")
    assert settings.max_limit == 500 and settings.audit_path == tmp_path / "c.gpkg.audit.jsonl"
    assert Settings.from_env(settings.to_env()) == settings
    with pytest.raises(twin.UsageError, match="TWIN_API_MAX_LIMIT='lots' is not a number"):
        Settings.from_env({**env, "TWIN_API_MAX_LIMIT": "lots"})
    with pytest.raises(twin.UsageError, match="TWIN_API_TWIN"):
        Settings.from_env({})
    with pytest.raises(twin.UsageError, match="default limit 20 must be between 1"):
        Settings(twin=tmp_path / "c.gpkg", default_limit=20, max_limit=10)


@pytest.mark.parametrize("text", ["-0.5", "61", "nan", "inf", "-inf", "1e308"])
def test_a_reload_pause_out_of_range_is_refused(tmp_path: Path, text: str) -> None:
    env = {"TWIN_API_TWIN": str(tmp_path / "c.gpkg"), "TWIN_API_RELOAD_PAUSE_S": text}
    refused = r"reload pause .* must be between 0 \(never\) and 60"
    with pytest.raises(twin.UsageError, match=refused):
        Settings.from_env(env)


def test_the_reload_pause_travels_to_the_workers(tmp_path: Path) -> None:
    env = {"TWIN_API_TWIN": str(tmp_path / "c.gpkg"), "TWIN_API_RELOAD_PAUSE_S": "0"}
    settings = Settings.from_env(env)
    assert settings.reload_pause_s == 0.0 and Settings(twin=tmp_path).reload_pause_s == 1.0
    assert settings.to_env()["TWIN_API_RELOAD_PAUSE_S"] == "0.0"
    assert Settings.from_env(settings.to_env()) == settings


def test_the_library_and_the_cli_never_import_fastapi() -> None:
    code = (
        "import sys, twin, twin.query, twin.query.index, twin.cli\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'starlette', 'uvicorn', 'twin_api'))\n"
        "print(','.join(loaded))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
