"""Benchmark scenarios: each is a pair (ours, peer) of functions run in fresh processes.

A scenario function takes the prepared inputs (paths) and a scratch folder,
does the work, and returns a small dict of facts (counts) so the runner can
check that ours and the peer produced the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Inputs = dict[str, Path]
Fn = Callable[[Inputs, Path], dict[str, Any]]

BUILDING_FIELDS = {"层数": "floors", "建筑高度": "height_m", "建筑名称": "name", "用途": "use"}


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    ours: Fn
    peer: Fn | None
    peer_name: str
    goal_ratio: float | None  # ours / peer at most, when the issue sets one
    metric: str | None = None  # a figure from ours' facts to show (e.g. ms per query)
    goal: str = ""  # the goal in words, for scenarios without a peer
    same: tuple[str, ...] | None = None  # facts ours and the peer must agree on (None: all)
    needs_network: bool = False
    needs_city_twin: bool = False
    needs_addresses: bool = False
    timed: str | None = None  # compare this timed figure from the facts, not the wall time
    needs_terrain: bool = False  # 1 m DEM/DSM of the city and the 100 km² flood DEM
    needs_city: bool = True  # False: reads only its own cached inputs (no city generated)


def import_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    import twin

    city = twin.Twin.create(scratch / "ours.gpkg", crs="EPSG:4544")
    report = city.import_layer(
        inputs["buildings"],
        layer="buildings",
        kind="building",
        id="建筑编码",
        fields=BUILDING_FIELDS,
    )
    return {"features": report.imported}


def import_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    import pyogrio

    frame = pyogrio.read_dataframe(inputs["buildings"], use_arrow=True)
    pyogrio.write_dataframe(frame, scratch / "peer.gpkg", layer="buildings", use_arrow=True)
    return {"features": len(frame)}


def reimport_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """Re-import the same delivery into a twin holding it: every issue-12 guard runs
    (declared count, area of use, twin extent, id field, removal share), zero changes."""
    import shutil
    import time

    import twin

    shutil.copyfile(inputs["twin"], scratch / "ours.gpkg")  # set-up, not timed
    city = twin.Twin.open(scratch / "ours.gpkg")
    started = time.perf_counter()
    report = city.import_layer(
        inputs["buildings"],
        layer="buildings",
        kind="building",
        id="建筑编码",
        fields=BUILDING_FIELDS,
    )
    seconds = time.perf_counter() - started
    assert report.changed == report.added == report.removed == 0
    return {"features": report.imported, "reimport_s": seconds}


def reimport_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    import time

    import pyogrio

    started = time.perf_counter()
    frame = pyogrio.read_dataframe(inputs["buildings"], use_arrow=True)
    pyogrio.write_dataframe(frame, scratch / "peer.gpkg", layer="buildings", use_arrow=True)
    return {"features": len(frame), "reimport_s": time.perf_counter() - started}


def load_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    import twin

    frame = twin.Twin.open(inputs["twin"]).layer("buildings")
    return {"features": len(frame)}


def load_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    import pyogrio

    frame = pyogrio.read_dataframe(inputs["twin"], layer="buildings", use_arrow=True)
    return {"features": len(frame)}


def _network_scenarios() -> list[Scenario]:
    from bench import network

    return [
        Scenario(
            "segments",
            "isolation segments, same network, read + build + segment",
            network.segments_ours,
            network.segments_peer,
            "WNTR valve_segments",
            None,
            same=("segments", "pipes"),
            needs_network=True,
        ),
        Scenario(
            "segments-full",
            "all isolation segments of the full water network",
            network.segments_full_ours,
            None,
            "",
            None,
            metric="segments_s",
            goal="< 0.5 s",
            needs_network=True,
        ),
        Scenario(
            "pipe-break",
            "pipe break with buildings affected, 100 random pipes",
            network.break_ours,
            None,
            "",
            None,
            metric="ms_per_break",
            goal="< 20 ms",
            needs_network=True,
        ),
        Scenario(
            "criticality",
            "criticality ranking of every segment, with buildings",
            network.criticality_ours,
            None,
            "",
            None,
            metric="criticality_s",
            goal="< 5 s",
            needs_network=True,
        ),
    ]


def _build_scenarios() -> list[Scenario]:
    from bench import relations

    return [
        Scenario(
            "relations",
            "building -> parcel and sensor -> building, computation only",
            relations.relations_ours,
            relations.relations_peer,
            "sjoin centroids + sjoin_nearest + overlay of straddlers",
            1.5,
            same=("straddling", "sensors_with_building"),
            needs_city_twin=True,
            timed="compute_s",
        ),
        Scenario(
            "build",
            "twin build (every relation of every layer, stored), then indicators by grid",
            relations.build_ours,
            relations.build_peer,
            "sjoin centroids + sjoin_nearest + overlay of straddlers + grid overlay",
            None,
            metric="build_s",
            goal="< 25 s",
            same=("straddling", "sensors_with_building", "grid_buildings", "grid_footprint_km2"),
            needs_city_twin=True,
            timed="build_indicators_s",
        ),
        _against_whole_build(
            "build-tiled",
            "twin build tile by tile (250,000 features a tile), rows streamed per tile",
            relations.tiled_build,
            None,
            "same rows; memory bounded by a tile",
        ),
        _against_whole_build(
            "build-dask",
            "the same tiles on dask.distributed (local cluster, 2 workers)",
            relations.dask_build,
            1.3,
            "≤ 1.3 × in-process",
        ),
        _against_whole_build(
            "build-dask-processes",
            "the same tiles on a local cluster of 2 worker processes (its start timed too)",
            relations.dask_processes_build,
            None,
            "threads or processes: the faster is dask's default here",
        ),
    ]


def _against_whole_build(
    name: str, description: str, ours: Fn, goal_ratio: float | None, goal: str
) -> Scenario:
    """A build variant timed against today's whole-layer build: the same rows, stored."""
    from bench import relations

    return Scenario(
        name,
        description,
        ours,
        relations.whole_build,
        "today's whole-layer twin build",
        goal_ratio,
        metric="build_s",
        goal=goal,
        same=("relations", "rows", "checksum", "unrelated"),
        needs_city_twin=True,
        timed="build_s",
    )


def _road_scenarios() -> list[Scenario]:
    from bench import roads

    return [
        Scenario(
            "road-service",
            "nearest facility + time for every building (20 facilities)",
            roads.service_ours,
            roads.service_peer,
            "networkx multi_source_dijkstra, buildings on nodes",
            0.2,
            metric="compute_s",
            goal="< 1 s",
            same=("buildings", "reached", "mean_time_s", "per_facility"),
            timed="compute_s",
            needs_city=False,
        ),
        Scenario(
            "road-closure",
            "10-segment closures (mean of 5 draws), every building's detour",
            roads.closure_ours,
            roads.closure_peer,
            "networkx: edges removed from a copy, Dijkstra again",
            0.2,
            metric="compute_s",
            goal="< 0.5 s",
            same=("lose_access", "delayed", "total_detour_s"),
            timed="compute_s",
            needs_city=False,
        ),
    ]


def _api_scenarios() -> list[Scenario]:
    from bench import api

    return [
        Scenario(
            "api-items",
            "twin serve: bbox pages of ~100 buildings, 4 connections, 1 worker",
            api.items_ours,
            api.items_peer,
            "pygeoapi 0.21 (OGR provider on a GeoPackage), uvicorn, 1 worker",
            0.1,
            metric="ms_per_page",
            same=("features_per_page",),
            needs_city_twin=True,
            timed="ms_per_page",
        ),
        Scenario(
            "api-identify",
            "twin serve: identify at a building, 1 connection (start-up too)",
            api.identify_ours,
            None,
            "",
            None,
            metric="identify_p50_ms",
            goal="p50 < 2 ms, p99 < 10 ms, start-up < 10 s",
            needs_city_twin=True,
        ),
    ]


def _threed_scenarios() -> list[Scenario]:
    from bench import threed

    return [
        Scenario(
            "heights",
            "building heights: p90 of DSM - DEM (1 m, tiled files) per footprint, with the"
            " sample count; above 20,000 buildings both sides on the 20,000 nearest the centre",
            threed.heights_ours,
            threed.heights_rasterstats,
            "rasterstats.zonal_stats (count, percentile_90) on a DSM - DEM VRT of the same files",
            2.0,
            metric="compute_s",
            same=("buildings", "measured", "mean_height_m"),
            timed="compute_s",
            needs_terrain=True,
        ),
        Scenario(
            "heights-exactextract",
            "building heights of every building of the city, against exactextract",
            threed.heights_whole_ours,
            threed.heights_exactextract,
            "exactextract 0.3 (count, quantile 0.9; coverage-weighted cells) on the VRT",
            1.0,
            metric="compute_s",
            same=("buildings",),
            timed="compute_s",
            needs_terrain=True,
        ),
        Scenario(
            "lod1-cityjson",
            "LOD1 extrusion + CityJSONSeq export of every building",
            threed.lod1_cityjson_ours,
            None,
            "",
            None,
            metric="export_s",
            goal="< 60 s and < 6 GiB at 1M",
            timed="export_s",
        ),
        Scenario(
            "tiles3d-sample",
            "3D Tiles 1.1 (glb per district) of the 3,000-building sample district",
            threed.tiles_sample_ours,
            None,
            "",
            None,
            metric="tiles_s",
            goal="< 10 s",
            timed="tiles_s",
        ),
        Scenario(
            "flood",
            "flood connected to a seed on a 100 km² DEM at 1 m (10^8 cells)",
            threed.flood_ours,
            threed.flood_peer,
            "scipy.ndimage.label, then the seed's component",
            None,
            metric="compute_s",
            goal="< 10 s",
            same=("cells", "km2"),
            timed="compute_s",
            needs_terrain=True,
        ),
    ]


def _address_scenarios() -> list[Scenario]:
    from bench import addresses

    return [
        Scenario(
            "geocode",
            "geocode N typed addresses against an N-address standard layer, all CPUs",
            addresses.geocode_ours,
            addresses.geocode_peer,
            f"cpca + rapidfuzz extractOne over the layer ({addresses.PEER_SAMPLE} addresses)",
            0.1,
            metric="per_s",
            goal=">= 20,000/s on 2 cores",
            same=("addresses",),
            needs_addresses=True,
            timed="ms_per_1000",
        ),
    ]


def _tile_scenarios() -> list[Scenario]:
    from bench import tiles

    return [
        Scenario(
            "tiles",
            "building vector tiles z14-z16, 60 tiles, each timed alone",
            tiles.tiles_ours,
            tiles.tiles_peer,
            "GeoDataFrame.clip + mapbox_vector_tile.encode per tile",
            0.2,
            metric="p50_ms",
            goal="p50 < 20 ms, p99 < 100 ms, >= 5x the peer",
            same=("tiles", "features", "uid_digest"),
            needs_city_twin=True,
            timed="tiles_s",
        ),
        Scenario(
            "page-render",
            "one-map page, sample twin: first full render in headless Chromium",
            tiles.page_render,
            None,
            "",
            None,
            metric="first_render_s",
            goal="< 3 s",
        ),
    ]


def _postgis_scenarios() -> list[Scenario]:
    from bench import live_postgis, postgis

    return [
        Scenario(
            "import-postgis",
            "import the buildings into a PostGIS twin (COPY, one transaction, keys and indexes)",
            postgis.import_ours,
            postgis.import_peer,
            "ogr2ogr -f PostgreSQL with PG_USE_COPY",
            1.5,
            same=("features",),
            timed="import_s",
        ),
        Scenario(
            "build-postgis",
            "twin build --force on the city twin in PostGIS (copied in first, not timed)",
            postgis.build_ours,
            postgis.build_peer,
            "the same build on the GeoPackage twin",
            1.5,
            metric="build_s",
            same=("relations", "rows", "unrelated", "digests"),
            needs_city_twin=True,
            timed="build_s",
        ),
        Scenario(
            "observe-ingest-postgis",
            "bulk ingest into the live store of a PostGIS twin, N/10 sensors x 100 readings "
            "(validated, COPY + ON CONFLICT dedup, latest values); then latest, window",
            live_postgis.ingest_ours,
            live_postgis.ingest_peer,
            "bare psycopg COPY of the same rows into the same table",
            1.5,
            metric="readings_per_s",
            same=("stored", "rows"),
            timed="ingest_s",
        ),
    ]


def _pgserve_scenarios() -> list[Scenario]:
    from bench import pgserve

    return [
        Scenario(
            "serve-postgis-items",
            "twin serve on a PostGIS twin, 4 workers: bbox pages of ~100 buildings, 8 connections",
            pgserve.items_ours,
            pgserve.items_peer,
            "tipg 1.6 (FastAPI on PostGIS), uvicorn, 4 workers, the same table",
            0.2,
            metric="identify_p50_ms",
            same=("features_per_page", "page_ids"),
            timed="ms_per_page",
        ),
        Scenario(
            "serve-postgis-reimport",
            "re-import the buildings under a wrk load on 4 workers (PostGIS, LISTEN/NOTIFY)",
            pgserve.reimport_ours,
            None,
            "",
            None,
            metric="max_reload_lag_s",
            goal="0 failed requests, every worker on the new data < 2 s after the commit",
        ),
    ]


def _sensing_scenarios() -> list[Scenario]:
    from bench import sensing, sensorthings

    return [
        Scenario(
            "observe-ingest",
            "bulk ingest, N/10 sensors x 100 readings (Parquet), validated; then latest, window",
            sensing.ingest_ours,
            sensing.ingest_peer,
            "bare sqlite3 executemany of the same rows",
            1.5,
            metric="readings_per_s",
            same=("stored",),
            timed="ingest_s",
        ),
        Scenario(
            "sta-filter",
            "SensorThings $filter: one stream by result and time, observations by Thing id, "
            "Things by type and name (median of 20 each, summed)",
            sensorthings.sta_ours,
            sensorthings.sta_peer,
            "the same conditions hand-written for sqlite3 / pandas, no JSON",
            None,
            metric="query_ms",
            same=("stream", "thing", "things"),
            timed="query_ms",
        ),
        Scenario(
            "observe-mqtt",
            "MQTT via Mosquitto: 5,000 readings/s for 60 s, 10,000 sensors; alarms to SSE",
            sensing.mqtt_ours,
            None,
            "",
            None,
            metric="stored_rate",
            goal=">= 5000/s",
        ),
    ]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "import",
            "import the buildings GeoPackage into a new twin",
            import_ours,
            import_peer,
            "pyogrio read + GeoPackage write",
            1.3,
        ),
        Scenario(
            "reimport",
            "re-import the same buildings (zero change set, every delivery guard)",
            reimport_ours,
            reimport_peer,
            "pyogrio read + GeoPackage write",
            None,
            same=("features",),
            timed="reimport_s",
        ),
        Scenario(
            "load",
            "open the twin and load every building",
            load_ours,
            load_peer,
            "pyogrio arrow read of the same table",
            1.2,
        ),
        *_network_scenarios(),
        *_build_scenarios(),
        *_api_scenarios(),
        *_road_scenarios(),
        *_threed_scenarios(),
        *_address_scenarios(),
        *_tile_scenarios(),
        *_sensing_scenarios(),
        *_postgis_scenarios(),
        *_pgserve_scenarios(),
    )
}
