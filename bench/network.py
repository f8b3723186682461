"""Benchmark functions for pipe networks (issue 5), in the style of ``bench.scenarios``.

Inputs (prepared once by :func:`prepare_network` from the synthetic city):

- ``network``: a GeoPackage with the city's ``water_pipes``, ``valves`` and
  ``sources`` (about 100,000 water pipes at 1,000,000 buildings);
- ``network_small``: the same layers of a smaller city, sized so that WNTR's
  ``valve_segments`` finishes in about a minute (the peer comparison);
- ``buildings``: the runner's buildings GeoPackage (id field ``建筑编码``).

Scenario pairs: ``segments_ours`` / ``segments_peer`` (all isolation segments
of ``network_small``, ours vs WNTR, same answer = same number of segments);
ours only: ``segments_full_ours`` (all segments of ``network``),
``break_ours`` (pipe breaks with the buildings affected, time per query over
100 random pipes once the network is built), ``criticality_ours`` (every
segment ranked). Inner timings go to standard error and, for the ours-only
functions, into the facts.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

Inputs = dict[str, Path]

NETWORK_LAYERS = ("water_pipes", "valves", "sources")
PEER_BUILDINGS = 300_000  # a city whose water network WNTR segments in about a minute


def _generator_version() -> str:
    """A digest of the modules that draw the networks: a changed generator makes new files."""
    import hashlib

    import twin.sample.layout
    import twin.sample.pipes

    digest = hashlib.sha256()
    for module in (twin.sample.layout, twin.sample.pipes):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:8]


def prepare_network(folder: Path, n_buildings: int, seed: int = 42) -> Inputs:
    """Write ``network.gpkg`` (and ``network_small.gpkg``) for the scenarios; reuse them later."""
    import pyogrio

    from twin.sample import generate_city

    paths = {}
    version = _generator_version()
    for key, n in (("network", n_buildings), ("network_small", min(n_buildings, PEER_BUILDINGS))):
        path = folder / f"{key}-{n}-{seed}-{version}.gpkg"
        if not path.exists():
            city = generate_city(n, seed=seed)
            tmp = path.with_suffix(".tmp.gpkg")
            for layer in NETWORK_LAYERS:
                pyogrio.write_dataframe(city[layer], tmp, layer=layer)
            tmp.rename(path)
        paths[key] = path
    return paths


def _log(what: str, seconds: float) -> None:
    print(f"  {what}: {seconds * 1000:.1f} ms", file=sys.stderr)


def _frames(path: Path) -> dict[str, Any]:
    import pyogrio

    frames = {layer: pyogrio.read_dataframe(path, layer=layer) for layer in NETWORK_LAYERS}
    frames["water_pipes"] = frames["water_pipes"].set_index("pipe_id")
    frames["valves"] = frames["valves"].set_index("valve_id")
    frames["sources"] = frames["sources"].set_index("source_id")
    return frames


def _network(path: Path) -> Any:
    from twin.network import network_from_frames

    frames = _frames(path)
    started = time.perf_counter()
    net = network_from_frames(
        frames["water_pipes"], frames["valves"], frames["sources"], network="water"
    )
    _log(f"topology of {len(frames['water_pipes']):,} pipes", time.perf_counter() - started)
    return net


def _segments(path: Path, *, sizes: bool = False) -> dict[str, Any]:
    """All segments of the network at ``path``; with ``sizes``, how the valves cut it too."""
    import numpy as np

    from twin.network import isolation_segments

    net = _network(path)
    started = time.perf_counter()
    segs = isolation_segments(net)
    seconds = time.perf_counter() - started
    _log(f"{len(segs.table):,} segments", seconds)
    facts: dict[str, Any] = {"segments": len(segs.table), "pipes": len(net.pipes)}
    if sizes:
        n_pipes = segs.table["n_pipes"].to_numpy()
        n_pipes = n_pipes[n_pipes > 0]
        facts["segments_s"] = round(seconds, 4)
        facts["max_segment_share"] = round(float(n_pipes.max() / n_pipes.sum()), 4)
        facts["median_pipes_per_segment"] = float(np.median(n_pipes))
    return facts


def segments_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    return _segments(inputs["network_small"])


def segments_full_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    return _segments(inputs["network"], sizes=True)


def segments_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """WNTR's ``valve_segments`` on a graph built from the same pipes and valves.

    Nodes are pipe ends with the same coordinates (to the centimetre: the
    generator's mains share exact end points); a valve is on its nearest pipe,
    protecting that pipe's nearer end, as in WNTR's valve layer.
    """
    import networkx as nx
    import numpy as np
    import pandas as pd
    import shapely
    import wntr

    frames = _frames(inputs["network_small"])
    pipes = frames["water_pipes"][frames["water_pipes"]["network"] == "water"]
    valves = frames["valves"][frames["valves"]["network"] == "water"]
    lines = pipes.geometry.to_numpy()
    ends = [shapely.get_coordinates(shapely.get_point(lines, i)).round(2) for i in (0, -1)]
    names = [np.char.add(np.char.add(e[:, 0].astype(str), ","), e[:, 1].astype(str)) for e in ends]
    graph = nx.MultiDiGraph()
    graph.add_edges_from(zip(names[0], names[1], pipes.index, strict=True))
    (src, dst), _ = shapely.STRtree(lines).query_nearest(
        valves.geometry.to_numpy(), max_distance=0.5, all_matches=False, return_distance=True
    )
    along = shapely.line_locate_point(lines[dst], valves.geometry.to_numpy()[src], normalized=True)
    layer = pd.DataFrame(
        {
            "link": pipes.index.to_numpy()[dst],
            "node": np.where(along <= 0.5, names[0][dst], names[1][dst]),
        }
    )
    layer = layer[valves["status"].to_numpy()[src] != "inoperable"].reset_index(drop=True)
    started = time.perf_counter()
    _, _, size = wntr.metrics.topographic.valve_segments(graph, layer)
    _log(f"WNTR valve_segments ({len(size):,} segments)", time.perf_counter() - started)
    return {"segments": len(size), "pipes": len(pipes)}


def _buildings_and_network(inputs: Inputs) -> tuple[Any, Any]:
    import pyogrio

    from twin.network import service_connections

    net = _network(inputs["network"])
    buildings = pyogrio.read_dataframe(inputs["buildings"], columns=["建筑编码"]).set_index(
        "建筑编码"
    )
    started = time.perf_counter()
    links = service_connections(buildings, net)
    _log(f"service connections of {len(buildings):,} buildings", time.perf_counter() - started)
    return net, links


def break_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """Pipe breaks with the buildings affected: mean time per query over 100 random pipes."""
    import numpy as np

    from twin.network import isolation_segments, pipe_break

    net, links = _buildings_and_network(inputs)
    isolation_segments(net)  # builds the segment model once ("once the network is built")
    pipe_break(net, net.pipes.index[0], connections=links)  # prepares the service index
    rng = np.random.default_rng(42)
    chosen = rng.choice(net.pipes.index.to_numpy(), 100, replace=False)
    summaries, seconds = [], []
    for pipe in chosen:
        started = time.perf_counter()
        summaries.append(pipe_break(net, pipe, connections=links).summary)
        seconds.append(time.perf_counter() - started)
    per_query = float(np.mean(seconds))
    _log("per pipe break", per_query)
    return {
        "breaks": len(chosen),
        "ms_per_break": round(per_query * 1000, 2),
        "ms_median": round(float(np.median(seconds)) * 1000, 2),
        "ms_max": round(float(np.max(seconds)) * 1000, 2),
        "median_buildings": float(np.median([s["buildings"] for s in summaries])),
        "median_valves_to_close": float(np.median([s["valves_to_close"] for s in summaries])),
        "median_isolated_pipes": float(np.median([s["isolated_pipes"] for s in summaries])),
    }


def criticality_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """Criticality of every segment, with buildings, once the network is built."""
    from twin.network import criticality

    net, links = _buildings_and_network(inputs)
    started = time.perf_counter()
    ranking = criticality(net, connections=links)
    seconds = time.perf_counter() - started
    _log(f"criticality of {len(ranking):,} segments", seconds)
    return {"segments": len(ranking), "criticality_s": round(seconds, 3)}
