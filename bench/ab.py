"""Before/after table: two trees' own bench children, alternately, under the same load.

``python -m bench.ab --before DIR [--only segments,load] [--repeat 3] [--buildings N]``

``DIR`` is a snapshot of an older commit (``git archive b829a8f | tar -x -C DIR``); the
"after" tree is this one (or ``--after``). For each scenario the runner starts the
before tree's child and the after tree's child alternately (B A B A B A with
``--repeat 3``), each a fresh interpreter with ``PYTHONPATH`` set to that tree's
``src`` and root, so each side runs its own library and its own bench definition, and
keeps each side's best. Alternating is what makes the comparison fair on a shared
machine: a burst of someone else's load hits both sides alike. The load average is
read before and after each scenario; with ``--lock FILE`` each scenario's runs hold an
exclusive ``flock`` on it (one scenario at a time, so others can interleave).

Each tree reads its own inputs (their formats may differ): ``prepare`` runs the tree's
own ``bench`` preparation (``bench.run.prepare``, ``prepare_network``,
``prepare_roads``, ``prepare_city_twin``) in a child of that tree, in ``--before-inputs``
/ ``--after-inputs`` (default: the tree's ``bench/.cache``). Files already in the
tree's cache are linked, not made again.

Where a scenario's definition changed between the trees, comparing the two trees' own
children would compare two definitions. :data:`SAME_DEFINITION` lists those; each
runs one definition, a function of this module, on both libraries (its child is this
file run as a script, the tree's ``src`` first on the path).

Examples
--------
>>> row = table_row("load", [{"seconds": 2.0, "facts": {}}], [{"seconds": 2.1, "facts": {}}])
>>> row["ratio"], row["within"]
(1.05, True)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# b829a8f's scenarios but import and build (issue 11: "every other scenario")
ISSUE_11 = (
    "segments",
    "segments-full",
    "pipe-break",
    "criticality",
    "relations",
    "road-service",
    "road-closure",
    "api-items",
    "api-identify",
    "load",
)
TOLERANCE = 1.10  # "every other scenario stays within 10% of its figure today"
# the scenario's headline figure beside the runner's seconds (the issue's goal is on it)
METRICS = {
    "segments-full": "segments_s",
    "pipe-break": "ms_per_break",
    "criticality": "criticality_s",
    "api-items": "ms_per_page",
    "api-identify": "identify_p50_ms",
}
SAME_DEFINITION = {
    "road-closure": "closure_same_definition",
}
NOTES = {
    "road-closure": (
        "definition changed (1 draw of 10 uniform non-local segments, the set-up partly on"
        " the clock -> 5 draws of a fixed class mix, prepare() off the clock, and the"
        " per-building frame made lazily after the timed call): both sides run"
        " bench.ab.closure_same_definition, today's definition with the frame's time"
        " added (answer_s), since b829a8f's road_closure builds that frame inside the call"
    ),
    "pipe-break": "same definition (keyword renamed buildings= -> connections=)",
    "criticality": "same definition (keyword renamed buildings= -> connections=)",
    "road-service": "same definition (prepare moved from network.routing to network.sptree)",
}


# --------------------------------------------------------------------------- trees


def tree_env(tree: Path, shim: Path, bench_root: Path | None = None) -> dict[str, str]:
    """The environment of a child of ``tree``: its ``src`` and root first on the path.

    ``shim`` holds a ``twin_api`` link to the tree's ``api/`` (installed under that name,
    which a plain path entry cannot give). ``bench_root`` replaces the tree's root (this
    file's tree, for :data:`SAME_DEFINITION` children that import today's ``bench``).
    """
    parts = [tree / "src", bench_root or tree, shim]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in parts)
    return env


def make_shim(tree: Path, folder: Path) -> Path:
    """A folder with ``twin_api`` -> ``tree/api``, for :func:`tree_env`."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "twin_api"
    if not link.exists():
        link.symlink_to(tree / "api", target_is_directory=True)
    return folder


PREPARE = """
import json, sys
from pathlib import Path
import twin.sample

spec = json.loads(sys.argv[1])
n, seed, folder = spec["n"], spec["seed"], Path(spec["folder"])
made = twin.sample.generate_city
cities = {}


def generate_once(n_buildings=3000, *, seed=42):
    # each preparation generates the city again: the same call gives the same frames
    if (n_buildings, seed) not in cities:
        cities.clear()
        cities[(n_buildings, seed)] = made(n_buildings, seed=seed)
    return {k: v.copy() for k, v in cities[(n_buildings, seed)].items()}


twin.sample.generate_city = generate_once
from bench.run import prepare
from bench.network import prepare_network
from bench.roads import prepare_roads
from bench.relations import prepare_city_twin

inputs = dict(prepare(n, seed))
inputs.update(prepare_roads(folder, n, seed))
inputs.update(prepare_city_twin(folder, n, seed))
inputs.update(prepare_network(folder, n, seed))
print(json.dumps({k: str(v) for k, v in inputs.items()}))
"""


def prepare_inputs(
    tree: Path, folder: Path, n: int, seed: int, python: str, shim: Path
) -> dict[str, str]:
    """The tree's own inputs of every scenario in :data:`ISSUE_11`, made by its code."""
    folder.mkdir(parents=True, exist_ok=True)
    cache = tree / "bench" / ".cache"
    if cache.resolve() != folder.resolve():
        for pattern in (f"roads-{n}-{seed}.gpkg", f"city-twin-{n}-{seed}.gpkg", "network*.gpkg"):
            for found in cache.glob(pattern):
                link = folder / found.name
                if link.is_symlink() and not link.exists():
                    link.unlink()  # into a tree since removed
                if not link.exists():
                    link.symlink_to(found)
    spec = json.dumps({"n": n, "seed": seed, "folder": str(folder)})
    result = subprocess.run(
        [python, "-c", PREPARE, spec],
        env=tree_env(tree, shim),
        cwd=tree,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"preparing {tree} failed:\n{result.stderr}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def feature_digests(path: Path) -> dict[str, str]:
    """Each layer's content hash: every column in file order, geometries as WKB.

    Two GeoPackages written at different times differ in bytes (timestamps, page
    layout) while holding the same features; these digests tell whether they do.
    """
    import hashlib

    import pandas as pd
    import pyogrio
    import shapely

    digests = {}
    for layer, _ in pyogrio.list_layers(path):
        frame = pyogrio.read_dataframe(path, layer=layer, use_arrow=True)
        digest = hashlib.sha256()
        for column in frame.columns:
            digest.update(str(column).encode())
            values = frame[column]
            if values.dtype.name == "geometry":
                digest.update(b"".join(shapely.to_wkb(values.to_numpy(), hex=False)))
            else:
                digest.update(pd.util.hash_pandas_object(values, index=False).to_numpy())
        digests[str(layer)] = digest.hexdigest()[:16]
    return digests


def compare_inputs(inputs: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Per input and layer: ``same``, ``differs``, or which side alone has it."""
    verdicts: dict[str, dict[str, str]] = {}
    for key in sorted(set(inputs["before"]) & set(inputs["after"])):
        b = feature_digests(Path(inputs["before"][key]))
        a = feature_digests(Path(inputs["after"][key]))
        verdicts[key] = {layer: _verdict(b.get(layer), a.get(layer)) for layer in sorted({*a, *b})}
    return verdicts


def _verdict(before: str | None, after: str | None) -> str:
    if before is None or after is None:
        return "after only" if before is None else "before only"
    return "same" if before == after else "differs"


# --------------------------------------------------------------------------- children


def run_child(
    tree: Path, scenario: str, inputs: dict[str, str], python: str, shim: Path
) -> dict[str, Any]:
    """One run of ``scenario`` by ``tree`` in a fresh interpreter: seconds, memory, facts."""
    payload = json.dumps({"scenario": scenario, "side": "ours", "inputs": inputs})
    if scenario in SAME_DEFINITION:
        command = [python, str(Path(__file__).resolve()), "--child", payload]
        env = tree_env(tree, shim, bench_root=ROOT)
    else:
        command = [python, "-m", "bench.run", "--child", payload]
        env = tree_env(tree, shim)
    result = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{scenario} in {tree} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def child(payload: str) -> None:
    """Run one :data:`SAME_DEFINITION` scenario here (the tree's library on the path)."""
    spec = json.loads(payload)
    fn = globals()[SAME_DEFINITION[spec["scenario"]]]
    inputs = {k: Path(v) for k, v in spec["inputs"].items()}
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        facts = fn(inputs, Path(scratch))
        wall_s = time.perf_counter() - started
    with open("/proc/self/status", encoding="ascii") as status:
        peak = next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
    print(
        json.dumps(
            {"seconds": facts["answer_s"], "wall_s": wall_s, "peak_mib": peak, "facts": facts}
        )
    )


def closure_same_definition(inputs: dict[str, Path], scratch: Path) -> dict[str, Any]:
    """``bench.roads.closure_ours`` of today, runnable on b829a8f's library too.

    The same 5 closures of 10 segments (``bench.roads.closure_draws``), each the best of
    3, ``prepare`` off the clock; ``answer_s`` adds the time to read every building's
    row (``result.buildings``: made inside ``road_closure`` at b829a8f, lazily today).
    The answers on exact access points are facts, so both sides' can be compared.
    """
    import numpy as np
    import pyogrio

    from bench.roads import closure_draws
    from twin.network import road_access, road_closure, road_network_from_frame

    try:
        from twin.network.sptree import prepare
    except ImportError:  # b829a8f's name of the same function
        from twin.network.routing import prepare  # type: ignore[no-redef]

    frames = {
        layer: pyogrio.read_dataframe(inputs["roads"], layer=layer, use_arrow=True).set_index("uid")
        for layer in ("roads", "buildings", "facilities")
    }
    net = road_network_from_frame(frames["roads"])
    access = road_access(net, frames["buildings"], frames["facilities"], snap="edge")
    draws = closure_draws(frames["roads"])
    road_closure(access, roads=draws[0])
    access.cache.clear()
    prepare(access)
    best, frame_s, answers = [], [], []
    for closed in draws:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            result = road_closure(access, roads=closed)
            times.append(time.perf_counter() - started)
        best.append(min(times))
        started = time.perf_counter()
        frame = result.buildings
        frame_s.append(time.perf_counter() - started)
        kept = frame.loc[~frame["lost"], "detour_s"]
        answers.append((int(frame["lost"].sum()), int((kept > 1.0).sum()), float(kept.sum())))
    compute_s, rows_s = float(np.mean(best)), float(np.mean(frame_s))
    return {
        "answer_s": round(compute_s + rows_s, 6),
        "compute_s": round(compute_s, 6),
        "frame_s": round(rows_s, 6),
        "lose_access": sum(a[0] for a in answers),
        "delayed": sum(a[1] for a in answers),
        "total_detour_s": round(sum(a[2] for a in answers), 0),
    }


# --------------------------------------------------------------------------- table


def table_row(
    name: str, before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> dict[str, Any]:
    """Best of each side, after / before, and whether it is within :data:`TOLERANCE`.

    Examples
    --------
    >>> b = [{"seconds": 1.0, "facts": {"ms_per_break": 9.0}}]
    >>> a = [{"seconds": 1.2, "facts": {"ms_per_break": 9.9}}]
    >>> r = table_row("pipe-break", b, a)
    >>> r["ratio"], r["within"], r["metric_ratio"], r["metric_within"]
    (1.2, False, 1.1, True)
    """
    b = min(before, key=lambda r: float(r["seconds"]))
    a = min(after, key=lambda r: float(r["seconds"]))
    ratio = round(float(a["seconds"]) / float(b["seconds"]), 3)
    row: dict[str, Any] = {
        "scenario": name,
        "before_s": float(b["seconds"]),
        "after_s": float(a["seconds"]),
        "ratio": ratio,
        "within": ratio <= TOLERANCE,
        "before_runs": [float(r["seconds"]) for r in before],
        "after_runs": [float(r["seconds"]) for r in after],
        "before_facts": b["facts"],
        "after_facts": a["facts"],
        "before_mib": b.get("peak_mib"),
        "after_mib": a.get("peak_mib"),
        "metric": None,
        "definition": "ab" if name in SAME_DEFINITION else "own",
        "note": NOTES.get(name, "same definition on both sides"),
    }
    metric = METRICS.get(name)
    if metric and metric in b["facts"] and metric in a["facts"]:
        mb = min(float(r["facts"][metric]) for r in before)
        ma = min(float(r["facts"][metric]) for r in after)
        metric_ratio = round(ma / mb, 3)
        row.update(
            metric=metric,
            metric_before=mb,
            metric_after=ma,
            metric_ratio=metric_ratio,
            metric_within=metric_ratio <= TOLERANCE,
        )
    shared = [k for k in b["facts"] if k in a["facts"] and not _is_time(k)]
    row["facts_differ"] = {
        k: [b["facts"][k], a["facts"][k]] for k in shared if b["facts"][k] != a["facts"][k]
    }
    return row


def _is_time(key: str) -> bool:
    """Whether a fact is a timing (``compute_s``, ``p50_ms``, ``items_rps``), not an answer.

    A travel time (``mean_time_s``) is an answer.
    """
    parts = key.split("_")
    return (
        "ms" in parts or parts[-1] in ("rps", "mib") or (parts[-1] == "s" and "time" not in parts)
    )


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table.

    Examples
    --------
    >>> r = table_row("load", [{"seconds": 2.0, "facts": {}}], [{"seconds": 3.0, "facts": {}}])
    >>> print(format_table([r]).splitlines()[2])
    | load | 2 | 3 | 1.50 | **no** |  |  |  |  |
    """
    lines = [
        "| scenario | before s | after s | after/before | within 10% "
        "| figure | before | after | after/before |",
        "|---|---:|---:|---:|---|---|---:|---:|---:|",
    ]
    for r in rows:
        within = "yes" if r["within"] else "**no**"
        metric = ""
        if r["metric"]:
            flag = "" if r["metric_within"] else " **>10%**"
            metric = (
                f"{r['metric']} | {r['metric_before']:.4g} | {r['metric_after']:.4g} "
                f"| {r['metric_ratio']:.2f}{flag}"
            )
        else:
            metric = " |  |  | "
        lines.append(
            f"| {r['scenario']} | {r['before_s']:.4g} | {r['after_s']:.4g} "
            f"| {r['ratio']:.2f} | {within} | {metric} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- runner


@contextlib.contextmanager
def held(lock: Path | None) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock`` while the block runs (nothing without one)."""
    if lock is None:
        yield
        return
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(v, 2) for v in os.getloadavg()]


def run_ab(
    name: str,
    trees: dict[str, Path],
    inputs: dict[str, dict[str, str]],
    repeat: int,
    python: dict[str, str],
    shims: dict[str, Path],
    lock: Path | None,
) -> dict[str, Any]:
    """``repeat`` alternations of before and after on ``name``: its table row."""
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    with held(lock):
        load = load_average()
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        for _ in range(repeat):
            for side in ("before", "after"):
                result = run_child(trees[side], name, inputs[side], python[side], shims[side])
                runs[side].append(result)
                print(f"  {name} {side}: {result['seconds']:.4f} s", file=sys.stderr)
        load_end = load_average()
    row = table_row(name, runs["before"], runs["after"])
    row.update(started=started, load_before=load, load_after=load_end)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="the older tree (a git archive)")
    parser.add_argument("--after", type=Path, default=ROOT)
    parser.add_argument("--before-inputs", type=Path, help="default: DIR/bench/.cache")
    parser.add_argument("--after-inputs", type=Path, help="default: the tree's bench/.cache")
    parser.add_argument("--before-python", default=sys.executable)
    parser.add_argument("--buildings", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", help="comma-separated scenario names (default: issue 11's)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lock", type=Path, help="flock this file around each scenario")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument(
        "--compare-inputs", action="store_true", help="print whether the inputs hold the same"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    if args.before is None:
        parser.error("--before is required")
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    folders = {
        "before": args.before_inputs or trees["before"] / "bench" / ".cache",
        "after": args.after_inputs or trees["after"] / "bench" / ".cache",
    }
    python = {"before": args.before_python, "after": sys.executable}
    names = args.only.split(",") if args.only else list(ISSUE_11)
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as scratch:
        shims = {s: make_shim(t, Path(scratch) / s) for s, t in trees.items()}
        inputs = {
            s: prepare_inputs(trees[s], folders[s], args.buildings, args.seed, python[s], shims[s])
            for s in trees
        }
        print(json.dumps(inputs, indent=1), file=sys.stderr)
        if args.compare_inputs:
            print(json.dumps(compare_inputs(inputs), indent=1))
        if args.prepare_only or args.compare_inputs:
            return 0
        rows = []
        for name in names:
            rows.append(run_ab(name, trees, inputs, args.repeat, python, shims, args.lock))
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    if not __package__:  # run as a script (a child): not this folder's modules as top level
        sys.path.pop(0)
    sys.exit(main())
