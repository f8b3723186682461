"""Province-scale runs: ``python -m bench.province STEP [--buildings 10000000]``.

The generated province (``twin sample … --city-buildings 1000000``, cached under
``bench/.cache/a18-province-<N>-42/``) is imported into a twin, loaded, built,
summarised by zone and served, each step in a fresh process whose wall time and
peak memory (the child's ``ru_maxrss``) are printed as one JSON line:

    flock /work/bench-cache/.bigrun.lock python -m bench.province import
    flock /work/bench-cache/.bigrun.lock python -m bench.province load build indicators serve

Steps after ``import`` work on ``bench/.cache/a18-province-twin-<N>.gpkg``; ``build``
and ``indicators`` on a scratch copy of it, so the imported twin stays as imported.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
STEPS = ("import", "load", "build", "indicators", "serve")


def paths(n: int) -> dict[str, Path]:
    return {
        "mapping": CACHE / f"a18-province-{n}-42" / "mapping.yaml",
        "twin": CACHE / f"a18-province-twin-{n}.gpkg",
        "scratch": CACHE / f"a18-province-twin-{n}.scratch.gpkg",
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


def step_build(p: dict[str, Path]) -> dict[str, Any]:
    """``twin build --force`` (tiled past 2,000,000 features) on a copy of the twin."""
    import twin

    shutil.copyfile(p["twin"], p["scratch"])
    try:
        report = twin.Twin.open(p["scratch"]).build(force=True)
        return {"relations": len(report.recomputed), "rows": int(sum(report.recomputed.values()))}
    finally:
        p["scratch"].unlink(missing_ok=True)


def step_indicators(p: dict[str, Path]) -> dict[str, Any]:
    """``indicators_by_zone(city, 'district')``: buildings overlaid in batches."""
    import twin
    from twin.zones import indicators_by_zone

    table = indicators_by_zone(twin.Twin.open(p["twin"]), "district")
    return {"zones": len(table), "buildings_counted": int(table["building_count"].sum())}


def step_serve(p: dict[str, Path]) -> dict[str, Any]:
    """``twin serve`` start-up: the app's snapshot of the twin, then one identify and bbox page."""
    from bench.api import serve_facts

    return serve_facts(p["twin"])


def child(step: str, n: int) -> None:
    fn = globals()[f"step_{step}"]
    started = time.perf_counter()
    facts = fn(paths(n))
    wall = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps({"step": step, "wall_s": round(wall, 1), "peak_mib": round(peak_mib), **facts})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("steps", nargs="*", default=list(STEPS), help=", ".join(STEPS))
    parser.add_argument("--buildings", type=int, default=10_000_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.buildings)
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
                "--child",
                step,
                f"--buildings={args.buildings}",
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
