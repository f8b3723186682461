"""Run the benchmark suite: ``python -m bench.run [--buildings N] [--only import,load]``.

Generates (and caches under bench/.cache) the synthetic city, then runs every
scenario's own implementation and its peer, each in a fresh process, and prints
wall time and peak memory side by side with the ratio and the issue's goal.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"


def prepare(n_buildings: int, seed: int) -> dict[str, Path]:
    """Generate the city once per size and seed; later runs reuse the files."""
    folder = CACHE / f"city-{n_buildings}-{seed}"
    buildings = folder / "buildings.gpkg"
    twin_path = folder / "twin.gpkg"
    if not buildings.exists():
        import pyogrio

        from twin.sample import generate_city

        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        city = generate_city(n_buildings, seed=seed)
        print(
            f"generated {n_buildings:,} buildings in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        tmp = buildings.with_suffix(".tmp.gpkg")
        pyogrio.write_dataframe(city["buildings"], tmp, layer="buildings", use_arrow=True)
        tmp.rename(buildings)
    if not twin_path.exists():
        from bench.scenarios import import_ours

        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            import_ours({"buildings": buildings}, Path(scratch))
            (Path(scratch) / "ours.gpkg").rename(twin_path)
    return {"buildings": buildings, "twin": twin_path}


def run_child(scenario: str, side: str, inputs: dict[str, Path]) -> dict[str, Any]:
    """Run one side of a scenario in a fresh interpreter; return its timing and memory."""
    payload = json.dumps(
        {"scenario": scenario, "side": side, "inputs": {k: str(v) for k, v in inputs.items()}}
    )
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--child", payload],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{scenario}/{side} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def child(payload: str) -> None:
    spec = json.loads(payload)
    scenario = SCENARIOS[spec["scenario"]]
    fn = scenario.ours if spec["side"] == "ours" else scenario.peer
    inputs = {k: Path(v) for k, v in spec["inputs"].items()}
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        started = time.perf_counter()
        facts = fn(inputs, Path(scratch))
        wall_s = time.perf_counter() - started
    seconds = _timed_seconds(facts, scenario.timed) if scenario.timed else wall_s
    peak_mib = _peak_rss_mib()
    print(json.dumps({"seconds": seconds, "wall_s": wall_s, "peak_mib": peak_mib, "facts": facts}))


def _timed_seconds(facts: dict[str, Any], name: str) -> float:
    """The scenario's own timed figure in seconds (``*_s`` or ``*ms*`` facts).

    Scenarios that start a server or load data before the part the issue times
    report that part themselves; comparing wall times would compare set-up.
    """
    value = float(facts[name])
    return value / 1000 if "ms" in name.split("_") else value


def _peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM).

    Not ``ru_maxrss``: Linux carries that over ``execve`` from the parent, so a
    child started by a runner that generated a big city would report the runner's peak.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--buildings", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument("--repeat", type=int, default=1, help="runs per side; the best is shown")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    CACHE.mkdir(parents=True, exist_ok=True)
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; scenarios: {', '.join(SCENARIOS)}")
    if any(SCENARIOS[n].needs_city for n in names):
        inputs = prepare(args.buildings, args.seed)
    else:  # scenarios with their own cached inputs, found beside the city's folder
        inputs = {"buildings": CACHE / f"city-{args.buildings}-{args.seed}" / "buildings.gpkg"}
    if any(SCENARIOS[n].needs_network for n in names):
        from bench.network import prepare_network

        inputs.update(prepare_network(CACHE, args.buildings, args.seed))
    if any(SCENARIOS[n].needs_city_twin for n in names):
        from bench.relations import prepare_city_twin

        inputs.update(prepare_city_twin(CACHE, args.buildings, args.seed))
    if any(SCENARIOS[n].needs_terrain for n in names):
        from bench.threed import prepare_terrain

        inputs.update(prepare_terrain(CACHE, inputs["buildings"], args.buildings, args.seed))
    if any(SCENARIOS[n].needs_addresses for n in names):
        from bench.addresses import prepare_addresses

        inputs.update(prepare_addresses(CACHE, args.buildings, args.seed))
    rows = [_run_scenario(name, inputs, args.repeat) for name in names]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        _print_table(rows, args.buildings)
    return 0 if all(r["same_answer"] for r in rows) else 1


def _run_scenario(name: str, inputs: dict[str, Path], repeat: int) -> dict[str, Any]:
    scenario = SCENARIOS[name]
    ours = min((run_child(name, "ours", inputs) for _ in range(repeat)), key=_seconds)
    row: dict[str, Any] = {
        "scenario": name,
        "description": scenario.description,
        "peer": scenario.peer_name,
        "ours": ours,
        "peer_result": None,
        "ratio": None,
        "goal_ratio": scenario.goal_ratio,
        "goal": scenario.goal,
        "metric": scenario.metric,
        "same_answer": True,
    }
    if scenario.peer is not None:
        peer = min((run_child(name, "peer", inputs) for _ in range(repeat)), key=_seconds)
        keys = scenario.same or tuple(ours["facts"])
        row.update(
            peer_result=peer,
            ratio=ours["seconds"] / peer["seconds"],
            same_answer=all(ours["facts"].get(k) == peer["facts"].get(k) for k in keys),
        )
    return row


def _seconds(result: dict[str, Any]) -> float:
    return float(result["seconds"])


def _print_table(rows: list[dict[str, Any]], n: int) -> None:
    print(f"citytwin benchmarks: {n:,} buildings, {os.cpu_count()} cores")
    header = (
        f"{'scenario':14} {'ours s':>8} {'peer s':>8} {'ratio':>6} {'goal':>8} "
        f"{'ours MiB':>9} {'peer MiB':>9}  peer / figure"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        peer = r["peer_result"]
        if peer is None:
            value = r["ours"]["facts"].get(r["metric"]) if r["metric"] else None
            figure = f"{value:.4g}" if isinstance(value, float) else str(value)
            print(
                f"{r['scenario']:14} {r['ours']['seconds']:8.2f} {'':>8} {'':>6} "
                f"{r['goal']:>8} {r['ours']['peak_mib']:9.0f} {'':>9}  {r['metric']} = {figure}"
            )
            continue
        goal = f"≤{r['goal_ratio']:.1f}" if r["goal_ratio"] else ""
        flag = "" if r["same_answer"] else "  (ANSWERS DIFFER)"
        print(
            f"{r['scenario']:14} {r['ours']['seconds']:8.2f} {peer['seconds']:8.2f} "
            f"{r['ratio']:6.2f} {goal:>8} {r['ours']['peak_mib']:9.0f} "
            f"{peer['peak_mib']:9.0f}  {r['peer']}{flag}"
        )
        if r["metric"] and r["metric"] in r["ours"]["facts"]:  # e.g. build_s, indicators_s
            facts = r["ours"]["facts"]
            parts = [f"{k} = {v}" for k, v in facts.items() if k.endswith("_s")]
            print(f"{'':14} {'':>8} {'':>8} {'':>6} {'':>8}  ours: {', '.join(parts)}")


if __name__ == "__main__":
    sys.exit(main())
