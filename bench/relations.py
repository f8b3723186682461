"""Benchmark functions for ``twin build`` (relations) beside the bare geopandas calls."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

Inputs = dict[str, Path]


def prepare_city_twin(folder: Path, n_buildings: int, seed: int = 42) -> Inputs:
    """A twin holding every layer of the generated city (built once, then reused)."""
    path = folder / f"city-twin-{n_buildings}-{seed}.gpkg"
    if not path.exists():
        import twin
        from twin.sample import generate_city, write_delivery

        started = time.perf_counter()
        delivery = folder / f"city-gpkg-{n_buildings}-{seed}"
        paths = write_delivery(generate_city(n_buildings, seed=seed), delivery, formats="gpkg")
        tmp = path.with_suffix(".tmp.gpkg")
        tmp.unlink(missing_ok=True)
        twin.Twin.create(tmp, crs="EPSG:4544").import_mapping(paths["mapping"])
        tmp.rename(path)
        shutil.rmtree(delivery)
        seconds = time.perf_counter() - started
        print(f"prepared the city twin in {seconds:.0f} s", file=sys.stderr)
    return {"city_twin": path}


def build_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """``twin build`` (every relation of every layer, stored), then indicators by grid."""
    import twin
    from twin.zones import indicators_by_zone

    copy = scratch / "city.gpkg"
    shutil.copy(inputs["city_twin"], copy)
    started = time.perf_counter()
    city = twin.Twin.open(copy)
    report = city.build(force=True)
    built = time.perf_counter()
    table = indicators_by_zone(city, "grid")
    done = time.perf_counter()
    parcels, sensors = "building_parcel:buildings->parcels", "sensor_building:sensors->buildings"
    return {
        "build_s": round(built - started, 2),
        "indicators_s": round(done - built, 2),
        "build_indicators_s": round(done - started, 2),
        "buildings_on_parcels": report.recomputed[parcels] - report.unrelated[parcels],
        "straddling": _straddling(city),
        "sensors_with_building": report.recomputed[sensors] - report.unrelated[sensors],
        "grid_buildings": int(table["building_count"].sum()),
        "grid_footprint_km2": round(float(table["footprint_m2"].sum()) / 1e6, 3),
        "relations": len(report.recomputed),
    }


def _straddling(city: Any) -> int:
    """Buildings with a part on more than one parcel, counted in the stored relation."""
    sets = city.store.query(
        "SELECT set_id FROM twin_relation_sets WHERE relation='building_parcel'"
        " AND from_layer='buildings' AND to_layer='parcels'"
    )
    first = int(sets["set_id"].iloc[0]) << 32
    count = city.store.query(
        "SELECT count(*) AS n FROM twin_relations WHERE fid BETWEEN ? AND ? AND n_candidates > 1",
        (first, first + (1 << 32) - 1),
    )
    return int(count["n"].iloc[0])


def build_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """The bare geopandas calls for the same answers, then the grid aggregation.

    Centroids into parcels; nearest building per sensor within 30 m; overlay of
    the buildings straddling parcels; buildings into grid cells with the
    straddlers overlaid, each counted in the cell holding most of it, and the
    footprint area inside each cell summed.
    """
    import geopandas as gpd
    import pandas as pd

    started = time.perf_counter()
    buildings, parcels, sensors, grids = (
        _read(inputs, n) for n in ("buildings", "parcels", "sensors", "grids")
    )
    centroids = gpd.GeoDataFrame(geometry=buildings.centroid, index=buildings.index)
    in_parcel = gpd.sjoin(centroids, parcels, predicate="within")
    nearest = gpd.sjoin_nearest(sensors, buildings, max_distance=30)
    straddling = _straddlers(buildings, parcels)
    gpd.overlay(
        straddling.reset_index(), parcels.reset_index(), how="intersection", keep_geom_type=True
    )
    # Grid: whole footprints for buildings in one cell, overlay pieces for the rest.
    in_cells = gpd.sjoin(buildings, grids, predicate="intersects")
    across = in_cells.index.duplicated(keep=False)
    whole = pd.DataFrame(
        {
            "uid": in_cells.index[~across],
            "cell": in_cells["uid_right"].to_numpy()[~across],
            "area": in_cells.geometry.area.to_numpy()[~across],
        }
    )
    pieces = gpd.overlay(
        buildings.loc[in_cells.index[across].unique()].reset_index(),
        grids.reset_index().rename(columns={"uid": "cell"}),
        how="intersection",
        keep_geom_type=True,
    )
    pieces = pd.DataFrame(
        {"uid": pieces["uid"], "cell": pieces["cell"], "area": pieces.geometry.area}
    )
    parts = pd.concat([whole, pieces], ignore_index=True)
    parts = parts[parts["area"] > 0]
    footprint = parts.groupby("cell")["area"].sum()
    counted = parts.sort_values("area").drop_duplicates("uid", keep="last")
    per_cell = counted.groupby("cell").size().reindex(grids.index, fill_value=0)
    return {
        "build_indicators_s": round(time.perf_counter() - started, 2),
        "buildings_on_parcels": int(in_parcel.index.nunique()),
        "straddling": len(straddling),
        "sensors_with_building": int(nearest.index.nunique()),
        "grid_buildings": int(per_cell.sum()),
        "grid_footprint_km2": round(float(footprint.sum()) / 1e6, 3),
    }


def _straddlers(buildings: Any, parcels: Any) -> Any:
    import geopandas as gpd

    touching = gpd.sjoin(buildings, parcels, predicate="intersects")
    return buildings.loc[touching.index[touching.index.duplicated()].unique()]


def _read(inputs: Inputs, layer: str) -> Any:
    import pyogrio

    frame = pyogrio.read_dataframe(
        inputs["city_twin"], layer=layer, columns=["uid"], use_arrow=True
    )
    return frame.set_index("uid")


def relations_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """Largest-share building -> parcel and sensor -> building (inside or nearest within 30 m)."""
    from twin.relate import largest_share, nearest_within

    buildings, parcels, sensors = (_read(inputs, n) for n in ("buildings", "parcels", "sensors"))
    started = time.perf_counter()
    shares = largest_share(buildings, parcels)
    nearest = nearest_within(sensors, buildings, max_distance_m=30)
    return {
        "compute_s": time.perf_counter() - started,
        "buildings_on_parcels": int(shares["zone"].notna().sum()),
        "straddling": int((shares["n_zones"] > 1).sum()),
        "sensors_with_building": int(nearest["target"].notna().sum()),
    }


def relations_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """The bare calls: centroids into parcels, nearest building per sensor, overlay straddlers."""
    import geopandas as gpd

    buildings, parcels, sensors = (_read(inputs, n) for n in ("buildings", "parcels", "sensors"))
    started = time.perf_counter()
    centroids = gpd.GeoDataFrame(geometry=buildings.centroid, index=buildings.index)
    in_parcel = gpd.sjoin(centroids, parcels, predicate="within")
    nearest = gpd.sjoin_nearest(sensors, buildings, max_distance=30)
    straddling = _straddlers(buildings, parcels)
    gpd.overlay(
        straddling.reset_index(), parcels.reset_index(), how="intersection", keep_geom_type=True
    )
    return {
        "compute_s": time.perf_counter() - started,
        "buildings_on_parcels": int(in_parcel.index.nunique()),
        "straddling": len(straddling),
        "sensors_with_building": int(nearest.index.nunique()),
    }


# --------------------------------------------------------------------------- province scale


def _relation_facts(city: Any, report: Any) -> dict[str, Any]:
    """What the whole and the tiled builds must agree on: rows and unmatched rows per set,
    and a checksum of every stored row (fid, uids, share, distance, candidates)."""
    table = city.store.query(
        "SELECT count(*) AS n, sum(fid % 1000003) AS fids, sum(length(to_uid)) AS to_len,"
        " round(sum(coalesce(share, 0)), 3) AS shares,"
        " round(sum(coalesce(distance_m, 0)), 3) AS distances,"
        " sum(n_candidates) AS candidates FROM twin_relations"
    ).iloc[0]
    return {
        "relations": len(report.recomputed),
        "rows": int(table["n"]),
        "checksum": [
            int(table["fids"]),
            int(table["to_len"]),
            float(table["shares"]),
            float(table["distances"]),
            int(table["candidates"]),
        ],
        "unrelated": int(sum(report.unrelated.values())),
    }


def whole_build(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """Today's ``twin build --force``: whole layers in one process (the peer of the tiles)."""
    return _timed_build(inputs, scratch)


def tiled_build(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """``twin build --force --tile-features 250000``: tile by tile, rows streamed per tile."""
    from twin.partition import TILE_FEATURES

    return _timed_build(inputs, scratch, tile_features=TILE_FEATURES)


def dask_build(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """``twin build --force --engine dask``: the same tiles on dask's local cluster of 2
    workers (threads of this process; the cluster's start is timed too), so the peak
    memory includes the workers'."""
    from twin.partition import TILE_FEATURES

    return _timed_build(inputs, scratch, tile_features=TILE_FEATURES, engine="dask")


def dask_processes_build(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """The same tiles on a local cluster of 2 worker *processes* (``LocalCluster(processes=
    True)``, its address given as the scheduler): no GIL shared with the writer, but each
    tile's packed image crosses a socket. The cluster's start is timed too (not overlapped
    with the build's reads, as the default cluster's is); the workers' memory is not in
    the peak."""
    from dask.distributed import LocalCluster

    from twin.partition import TILE_FEATURES

    started = time.perf_counter()
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        start_s = time.perf_counter() - started
        facts = _timed_build(
            inputs,
            scratch,
            tile_features=TILE_FEATURES,
            engine="dask",
            scheduler=cluster.scheduler_address,
        )
    return {**facts, "build_s": round(facts["build_s"] + start_s, 2)}


def _timed_build(inputs: Inputs, scratch: Path, **options: Any) -> dict[str, Any]:
    """``build(force=True, **options)`` on a copy of the city twin: seconds and row facts."""
    import twin

    copy = scratch / "city.gpkg"
    shutil.copy(inputs["city_twin"], copy)
    city = twin.Twin.open(copy)
    started = time.perf_counter()
    report = city.build(force=True, **options)
    return {"build_s": round(time.perf_counter() - started, 2), **_relation_facts(city, report)}
