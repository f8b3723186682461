"""Province-scale runs: ``python -m bench.province STEP [--buildings 10000000]``.

The generated province (``twin sample … --city-buildings 1000000``, cached under
``bench/.cache/a18-province-<N>-42/``) is imported into a twin, loaded, built,
summarised by zone and served, each step in a fresh process whose wall time and
peak memory (the child's ``ru_maxrss``) are printed as one JSON line:

    flock /work/bench-cache/.bigrun.lock python -m bench.province import
    flock /work/bench-cache/.bigrun.lock python -m bench.province load build indicators serve
    flock /work/bench-cache/.bigrun.lock python -m bench.province load-peer build-dask

Steps after ``import`` work on ``bench/.cache/a18-province-twin-<N>.gpkg``; ``build``
(``build-dask``: the same on dask's local cluster of two worker threads;
``build-dask-processes``: on a local cluster of two worker processes) and ``indicators``
on a scratch copy of it, so the imported twin stays as imported. The build steps time
the copy apart (``copy_s``) and are compared on ``build_s``, the build alone:

    flock /work/bench-cache/.bigrun.lock python -m bench.province build build-dask
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
STEPS = (
    "import",
    "load",
    "load-peer",
    "build",
    "build-dask",
    "build-dask-processes",
    "indicators",
    "serve",
)


def paths(n: int, twin: str | None = None) -> dict[str, Path]:
    twin_path = Path(twin) if twin else CACHE / f"a18-province-twin-{n}.gpkg"
    return {
        "mapping": CACHE / f"a18-province-{n}-42" / "mapping.yaml",
        "twin": twin_path,
        "scratch": twin_path.with_suffix(".scratch.gpkg"),
    }


def step_import(p: dict[str, Path]) -> dict[str, Any]:
    """``twin import`` of every layer of the mapping (large layers in Arrow batches)."""
    import twin

    tmp = p["twin"].with_suffix(".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    city = twin.Twin.create(tmp, crs="EPSG:4544")
    reports = city.import_mapping(p["mapping"])
    tmp.rename(p["twin"])
    return {"features": sum(r.imported for r in reports), "layers": len(reports)}


def step_load(p: dict[str, Path]) -> dict[str, Any]:
    """``Twin.layer('buildings')``: every building into one GeoDataFrame."""
    import twin

    return {"features": len(twin.Twin.open(p["twin"]).layer("buildings"))}


def step_load_peer(p: dict[str, Path]) -> dict[str, Any]:
    """The peer of ``load``: ``pyogrio.read_dataframe`` of the same table through Arrow."""
    import pyogrio

    return {"features": len(pyogrio.read_dataframe(p["twin"], layer="buildings", use_arrow=True))}


def step_build_dask(p: dict[str, Path]) -> dict[str, Any]:
    """``twin build --force --engine dask`` (a local cluster of 2 workers) on a copy."""
    return step_build(p, engine="dask")


def step_build_dask_processes(p: dict[str, Path]) -> dict[str, Any]:
    """The same on a ``LocalCluster`` of 2 worker processes, given as the scheduler.

    The cluster is started after the copy and its start counted in ``build_s``;
    ``workers_peak_mib`` is the larger worker's peak (``RUSAGE_CHILDREN``, read once
    the cluster is closed).
    """
    from dask.distributed import LocalCluster

    def on_cluster() -> dict[str, Any]:
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        return {"cluster": cluster, "engine": "dask", "scheduler": cluster.scheduler_address}

    facts = step_build(p, prepare=on_cluster)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {**facts, "workers_peak_mib": round(children / 1024)}


def step_build(
    p: dict[str, Path], prepare: Callable[[], dict[str, Any]] | None = None, **options: Any
) -> dict[str, Any]:
    """``twin build --force`` (tiled past 2,000,000 features) on a copy of the twin.

    The copy is timed apart (``copy_s``): ``build_s`` is the build alone (and whatever
    ``prepare`` starts for it), the figure the build steps are compared on; ``wall_s``
    holds both. Progress (one line a tile) goes to ``<twin>.build.log`` beside the twin.
    """
    import logging

    import twin

    logging.basicConfig(
        filename=p["twin"].with_suffix(".build.log"),
        level=logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
    )

    started = time.perf_counter()
    shutil.copyfile(p["twin"], p["scratch"])
    copied = time.perf_counter()
    cluster = None
    try:
        if prepare is not None:
            options = {**options, **prepare()}
            cluster = options.pop("cluster", None)
        log = logging.getLogger("bench.province")
        log.info("build %s", {k: v for k, v in options.items()})
        report = twin.Twin.open(p["scratch"]).build(
            force=True,
            progress=lambda stage, fraction: log.info("%s %.3f", stage, fraction),
            **options,
        )
        built = time.perf_counter()
        log.info("built in %.1f s", built - copied)
        return {
            "copy_s": round(copied - started, 1),
            "build_s": round(built - copied, 1),
            "relations": len(report.recomputed),
            "rows": int(sum(report.recomputed.values())),
        }
    finally:
        if cluster is not None:
            cluster.close()
        p["scratch"].unlink(missing_ok=True)


def step_indicators(p: dict[str, Path]) -> dict[str, Any]:
    """``indicators_by_zone(city, 'district')``: buildings overlaid in batches."""
    import twin
    from twin.zones import indicators_by_zone

    table = indicators_by_zone(twin.Twin.open(p["twin"]), "district")
    return {"zones": len(table), "buildings_counted": int(table["building_count"].sum())}


def step_serve(p: dict[str, Path]) -> dict[str, Any]:
    """``twin serve`` (1 worker): start-up, memory held and peak, identify and bbox pages.

    Layers past ``TWIN_COMPACT_ABOVE`` features (2,000,000 unless the
    environment says otherwise) are held compact, their CRS84 geometry texts
    packed (``TWIN_GEOJSON_TEXTS=all``: plain, ``none``: none). Memory is read once the
    server is idle (the vector-tile preparation in the background done):
    ``server_rss_mib`` is what it holds then, ``server_peak_mib`` its peak.
    """
    import tempfile

    from bench.api import TARGET_FEATURES, run_load, serving_ours
    from bench.pgserve import settle

    where = _probe(p["twin"])
    scratch = Path(tempfile.mkdtemp(dir=CACHE))
    with serving_ours({"city_twin": p["twin"]}, scratch) as (base, startup_s):
        pids = _server_pids(base)
        settle_s = settle(pids[0], timeout_s=1800)
        rss_mib = sum(_status_kib(pid, "VmRSS") for pid in pids) // 1024
        lon, lat = where["point"]
        identify = run_load(
            f"{base}/identify?lon={lon:.9f}&lat={lat:.9f}&geometry=false", connections=1
        )
        bbox = ",".join(f"{v:.9f}" for v in where["bbox"])
        items = run_load(
            f"{base}/collections/buildings/items?bbox={bbox}&limit={TARGET_FEATURES}",
            connections=1,
        )
        server_mib = sum(_status_kib(pid, "VmHWM") for pid in pids) // 1024
    shutil.rmtree(scratch, ignore_errors=True)
    return {
        "compact_above": os.environ.get("TWIN_COMPACT_ABOVE", "2000000"),
        "geojson_texts": os.environ.get("TWIN_GEOJSON_TEXTS", "auto"),
        "startup_s": round(startup_s, 1),
        "settle_s": round(settle_s, 1),
        "server_rss_mib": rss_mib,
        "server_peak_mib": server_mib,
        "identify_p50_ms": round(identify["p50_ms"], 2),
        "identify_p99_ms": round(identify["p99_ms"], 2),
        "bbox_page_p50_ms": round(items["p50_ms"], 2),
        "bbox_page_p99_ms": round(items["p99_ms"], 2),
        "bbox_pages_per_s": round(items["rps"], 1),
        "bbox_features": where["features"],
    }


def _probe(twin_path: Path, target: int = 100) -> dict[str, Any]:
    """A CRS84 bbox holding about ``target`` buildings around the middle building (by fid),
    and a point on that building, found through the layer's R-tree (no layer read)."""
    import sqlite3

    import pyogrio
    import pyproj
    import shapely

    middle = pyogrio.read_info(twin_path, layer="buildings")["features"] // 2
    frame = pyogrio.read_dataframe(twin_path, layer="buildings", fids=[middle], columns=[])
    building = frame.geometry.iloc[0]
    x, y = shapely.get_coordinates(building.centroid)[0]
    low, high = 1.0, 5000.0
    with sqlite3.connect(twin_path) as con:
        for _ in range(40):
            half = (low + high) / 2
            count = con.execute(
                "SELECT count(*) FROM rtree_buildings_geom WHERE maxx >= ? AND minx <= ?"
                " AND maxy >= ? AND miny <= ?",
                (x - half, x + half, y - half, y + half),
            ).fetchone()[0]
            if count == target:
                break
            low, high = (half, high) if count < target else (low, half)
    to_lonlat = pyproj.Transformer.from_crs(frame.crs, "OGC:CRS84", always_xy=True)
    west, south = to_lonlat.transform(x - half, y - half)
    east, north = to_lonlat.transform(x + half, y + half)
    px, py = shapely.get_coordinates(shapely.point_on_surface(building))[0]
    return {
        "bbox": [west, south, east, north],
        "features": int(count),
        "point": list(to_lonlat.transform(px, py)),
    }


def _server_pids(base: str) -> list[int]:
    """The process listening at ``base`` and its children."""
    import psutil

    port = int(base.rsplit(":", 1)[1])
    for conn in psutil.net_connections(kind="tcp"):
        if (
            conn.laddr
            and conn.laddr.port == port
            and conn.status == psutil.CONN_LISTEN
            and conn.pid
        ):
            parent = psutil.Process(conn.pid)
            return [conn.pid, *(child.pid for child in parent.children(recursive=True))]
    raise RuntimeError(f"no process listens at {base}")


def _status_kib(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` figure in KiB (``VmHWM``: peak, ``VmRSS``: now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def child(step: str, n: int, twin: str | None) -> None:
    fn = globals()[f"step_{step.replace('-', '_')}"]
    started = time.perf_counter()
    facts = fn(paths(n, twin))
    wall = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps({"step": step, "wall_s": round(wall, 1), "peak_mib": round(peak_mib), **facts})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("steps", nargs="*", default=list(STEPS), help=", ".join(STEPS))
    parser.add_argument("--buildings", type=int, default=10_000_000)
    parser.add_argument("--twin", help="another twin for the steps after import (e.g. the 1M city)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.buildings, args.twin)
        return
    unknown = [s for s in args.steps if s not in STEPS]
    if unknown:
        parser.error(f"unknown step {unknown[0]!r}: choose from {', '.join(STEPS)}")
    for step in args.steps:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.province",
                f"--child={step}",
                f"--buildings={args.buildings}",
                *([f"--twin={args.twin}"] if args.twin else []),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if result.returncode != 0:
            print(json.dumps({"step": step, "failed": result.stderr.strip().splitlines()[-3:]}))
            continue
        print(result.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
