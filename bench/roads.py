"""Benchmark functions for road networks (issue 6), in the style of ``bench.scenarios``.

Inputs (prepared once by :func:`prepare_roads` from the synthetic city, on
the first use by a scenario, next to the runner's city):
``roads``, a GeoPackage with the city's ``roads`` (about 100,000 segments at
1,000,000 buildings, in the twin's field names), ``buildings`` as points
(a point inside each footprint) and the emergency ``facilities`` (20 at
1,000,000 buildings).

Scenario pairs (the timed figure is the analysis once the inputs are read and
the network is built; building the network is logged apart):

- ``service_ours`` / ``service_peer``: the nearest facility and the travel time
  of every building. Ours: :func:`twin.network.service_areas` (access points on
  the road edges, one multi-source Dijkstra over a CSR graph). Peer: networkx,
  written directly: a directed graph of the same edges, every building mapped
  to the nearer end node of its nearest edge, ``multi_source_dijkstra`` from the
  facilities' nodes.
- ``closure_ours`` / ``closure_peer``: closures of 10 road segments on top of
  the same network, every building's detour. Ours:
  :func:`twin.network.road_closure`; peer: networkx with the 10 edges removed
  from a copy, the multi-source Dijkstra again. The timed figure is the mean
  over :data:`N_DRAWS` closures, each drawn the same way at every city size
  (:func:`closure_draws`): the harm of one segment has a heavy tail (an
  expressway segment changes about 200 times as many buildings as a local
  street), so one draw of 10 compares luck, not scale.

The timed side of ours links every building to the exact point of its edge;
the peer maps it to the nearer end node. So that the runner can check the
two answers are the same, ours also runs (untimed) with ``snap="node"``, the
peer's model, and reports those answers as the facts to compare: buildings
reached, mean time, buildings per facility; buildings losing access, delayed,
and the total detour.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

Inputs = dict[str, Path]

ROAD_FIELDS = {
    "道路等级": "road_class",
    "单行": "oneway",
    "桥梁": "bridge",
    "层级": "level",
    "设计时速": "speed_kmh",
}
N_CLOSED = 10
CLOSURE_SEED = 6
N_DRAWS = 5
# segments of each class per closure: the classes' shares of the generator's non-local
# roads (expressways 8 %, arterials 49 %, secondary roads 43 % at every city size)
CLOSURE_MIX = {"快速路": 1, "主干路": 5, "次干路": 4}


def prepare_roads(folder: Path, n_buildings: int, seed: int = 42) -> Inputs:
    """Write ``roads-<n>-<seed>.gpkg`` (roads, building points, facilities); reuse it later."""
    path = folder / f"roads-{n_buildings}-{seed}.gpkg"
    if not path.exists():
        import pyogrio
        import shapely

        from twin.sample import generate_city

        started = time.perf_counter()
        city = generate_city(n_buildings, seed=seed)
        roads = city["roads"].rename(columns={**ROAD_FIELDS, "道路编码": "uid"})
        buildings = city["buildings"][["建筑编码", "geometry"]].rename(columns={"建筑编码": "uid"})
        buildings = buildings.set_geometry(shapely.point_on_surface(buildings.geometry.to_numpy()))
        facilities = city["facilities"].rename(
            columns={"设施编码": "uid", "设施名称": "name", "设施类型": "poi_type"}
        )
        tmp = path.with_suffix(".tmp.gpkg")
        tmp.unlink(missing_ok=True)
        for name, frame in (("roads", roads), ("buildings", buildings), ("facilities", facilities)):
            pyogrio.write_dataframe(frame, tmp, layer=name, use_arrow=True)
        tmp.rename(path)
        print(f"prepared the road inputs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return {"roads": path}


def prepare_province_roads(city: Path, path: Path, batch: int = 1_000_000) -> Inputs:
    """Write ``path`` like :func:`prepare_roads` from a generated province's ``city.gpkg``.

    ``generate_city`` holds a whole city in memory, which a 10,000,000-building province
    does not fit; the province (``twin sample --city-buildings``) is read back instead,
    its buildings ``batch`` at a time (a point inside each footprint), so memory holds a
    batch. Reused when ``path`` exists; built under a ``.lock`` file beside it.
    """
    import fcntl

    import pyogrio
    import shapely

    lock = path.parent / f".{path.name}.lock"
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if path.exists():
            return {"roads": path}
        started = time.perf_counter()
        tmp = path.with_suffix(".tmp.gpkg")
        tmp.unlink(missing_ok=True)
        roads = pyogrio.read_dataframe(city, layer="roads", use_arrow=True)
        roads = roads.rename(columns={**ROAD_FIELDS, "道路编码": "uid"})
        pyogrio.write_dataframe(roads, tmp, layer="roads", use_arrow=True)
        del roads
        total = pyogrio.read_info(city, layer="buildings")["features"]
        for skip in range(0, total, batch):
            part = pyogrio.read_dataframe(
                city,
                layer="buildings",
                columns=["建筑编码"],
                skip_features=skip,
                max_features=batch,
                use_arrow=True,
            ).rename(columns={"建筑编码": "uid"})
            part = part.set_geometry(shapely.point_on_surface(part.geometry.to_numpy()))
            pyogrio.write_dataframe(part, tmp, layer="buildings", use_arrow=True, append=skip > 0)
        facilities = pyogrio.read_dataframe(city, layer="facilities", use_arrow=True).rename(
            columns={"设施编码": "uid", "设施名称": "name", "设施类型": "poi_type"}
        )
        pyogrio.write_dataframe(facilities, tmp, layer="facilities", use_arrow=True)
        tmp.rename(path)
        print(f"prepared the road inputs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return {"roads": path}


def _log(what: str, seconds: float) -> None:
    print(f"  {what}: {seconds * 1000:.1f} ms", file=sys.stderr)


def roads_input(inputs: Inputs) -> Path:
    """The road inputs of the runner's city (``city-<n>-<seed>/``), prepared on first use."""
    if "roads" in inputs:
        return inputs["roads"]
    folder = inputs["buildings"].parent
    _, n, seed = folder.name.split("-")
    return prepare_roads(folder.parent, int(n), int(seed))["roads"]


def _frames(path: Path) -> dict[str, Any]:
    import pyogrio

    return {
        layer: pyogrio.read_dataframe(path, layer=layer, use_arrow=True).set_index("uid")
        for layer in ("roads", "buildings", "facilities")
    }


def closed_segments(roads: Any, draw: int = 0) -> list[str]:
    """Road uids closed together by draw ``draw``: :data:`CLOSURE_MIX` segments per class.

    The same number of segments of each class at every city size (the classes carry
    very different traffic), each class's drawn at random at a fixed seed.
    """
    rng = np.random.default_rng([CLOSURE_SEED, draw])
    kind = roads["road_class"].to_numpy(dtype=str)
    chosen = [
        rng.choice(of, size=min(k, len(of)), replace=False)
        for cls, k in CLOSURE_MIX.items()
        if len(of := np.flatnonzero(kind == cls))
    ]
    return [str(u) for u in roads.index[np.sort(np.concatenate(chosen))]]


def closure_draws(roads: Any, n: int = N_DRAWS) -> list[list[str]]:
    """The :data:`N_DRAWS` closures the scenario times (see :func:`closed_segments`)."""
    return [closed_segments(roads, d) for d in range(n)]


# --------------------------------------------------------------------------- ours


def _ours_context(inputs: Inputs, snap: str = "edge") -> tuple[Any, Any, dict[str, Any]]:
    from twin.network import road_access, road_network_from_frame

    frames = _frames(roads_input(inputs))
    started = time.perf_counter()
    net = road_network_from_frame(frames["roads"])
    access = road_access(net, frames["buildings"], frames["facilities"], snap=snap)
    _log(f"network of {net.n_edges:,} edges and access points", time.perf_counter() - started)
    return net, access, frames


def service_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """Timed: exact access points. Checked against the peer: the same engine, node-snapped.

    Like the peer's graph, the CSR graph and the buildings' legs are built before the clock
    starts (``prepare``); ``cold_s`` is the time with that set-up included.
    """
    from twin.network import road_access, service_areas
    from twin.network.sptree import prepare

    net, access, frames = _ours_context(inputs)
    started = time.perf_counter()
    service_areas(access)
    cold = time.perf_counter() - started
    access.cache.clear()
    prepare(access)
    started = time.perf_counter()
    result = service_areas(access)
    seconds = time.perf_counter() - started
    _log(f"nearest facility of every building (with set-up: {cold * 1000:.0f} ms)", seconds)
    nodes = road_access(net, frames["buildings"], frames["facilities"], snap="node")
    return {
        "compute_s": round(seconds, 6),
        "cold_s": round(cold, 6),
        "exact_mean_time_s": round(float(result.summary.mean_time_s or 0.0), 2),
        **_service_facts(service_areas(nodes).buildings),
    }


def closure_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """Timed: the closures on exact access points (mean of each one's best of 3).

    Checked against the peer: the node-snapped answers, summed over the closures.
    ``frame_s``: the mean time to read the table of every building's row afterwards
    (:attr:`~twin.network.closures.ClosureResult.buildings`, built on first read).
    """
    from twin.network import road_access, road_closure
    from twin.network.sptree import prepare

    net, access, frames = _ours_context(inputs)
    draws = closure_draws(frames["roads"])
    started = time.perf_counter()
    road_closure(access, roads=draws[0])
    cold = time.perf_counter() - started
    # like the peer's graph, the per-network set-up (the base answer's shortest-path
    # tree and its lookups, which a server builds at start-up) stays off the clock
    access.cache.clear()
    prepare(access)
    best, frame_s, touched = [], [], 0
    for closed in draws:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            result = road_closure(access, roads=closed)
            times.append(time.perf_counter() - started)
        best.append(min(times))
        started = time.perf_counter()
        _ = result.buildings
        frame_s.append(time.perf_counter() - started)
        touched += len(result.rows.rows)
    seconds = float(np.mean(best))
    _log(
        f"closure of {N_CLOSED} segments, mean of {len(draws)} "
        f"(first with set-up: {cold * 1000:.0f} ms; every building's row: "
        f"{np.mean(frame_s) * 1000:.1f} ms more)",
        seconds,
    )
    del access, result  # the node-snapped check below holds its own (10M: GiBs)
    nodes = road_access(net, frames["buildings"], frames["facilities"], snap="node")
    facts = _closure_facts([road_closure(nodes, roads=closed).buildings for closed in draws])
    return {
        "compute_s": round(seconds, 6),
        "cold_s": round(cold, 6),
        "frame_s": round(float(np.mean(frame_s)), 6),
        "per_closure_s": [round(t, 6) for t in best],
        "touched_buildings": touched,
        **facts,
    }


def _closure_facts(frames: list[Any]) -> dict[str, Any]:
    """Buildings losing access, delayed, and the total detour, summed over the closures."""
    lost = delayed = 0
    detour = 0.0
    for frame in frames:
        lost += int(frame["lost"].sum())
        delayed += int(((frame["detour_s"] > 1.0) & ~frame["lost"]).sum())
        detour += float(frame.loc[~frame["lost"], "detour_s"].sum())
    return {"lose_access": lost, "delayed": delayed, "total_detour_s": round(detour, 0)}


def _service_facts(frame: Any) -> dict[str, Any]:
    times = frame["time_s"].to_numpy()
    reached = np.isfinite(times)
    return {
        "buildings": len(frame),
        "reached": int(reached.sum()),
        "mean_time_s": round(float(times[reached].mean()), 2),
        "per_facility": {str(k): int(v) for k, v in frame["facility"].value_counts().items()},
    }


# --------------------------------------------------------------------------- peer


def _peer_graph(frames: dict[str, Any]) -> tuple[Any, Any, Any]:
    """networkx DiGraph of the same road segments; nodes are the segments' end points."""
    import networkx as nx
    import shapely

    from twin.network.speeds import DEFAULT_SPEEDS

    roads = frames["roads"]
    xy = shapely.get_coordinates(roads.geometry.to_numpy(), return_index=False)
    counts = shapely.get_num_coordinates(roads.geometry.to_numpy())
    last = np.cumsum(counts) - 1
    first = last - counts + 1
    start, end = xy[first], xy[last]
    keys, node = np.unique(np.round(np.vstack([start, end]), 3), axis=0, return_inverse=True)
    n = len(roads)
    u, v = node[:n], node[n:]
    length = shapely.length(roads.geometry.to_numpy())
    speed = roads["speed_kmh"].to_numpy(dtype=float)
    fallback = roads["road_class"].map(DEFAULT_SPEEDS.speeds_kmh).to_numpy(dtype=float)
    speed = np.where(speed > 0, speed, fallback)
    time_s = length / (speed / 3.6)
    oneway = roads["oneway"].to_numpy(dtype=int)
    graph = nx.DiGraph()
    uid = roads.index.to_numpy(dtype=str)
    for i in range(n):
        if oneway[i] >= 0:
            graph.add_edge(int(u[i]), int(v[i]), weight=float(time_s[i]), uid=uid[i])
        if oneway[i] <= 0:
            graph.add_edge(int(v[i]), int(u[i]), weight=float(time_s[i]), uid=uid[i])
    return graph, keys, (u, v)


def _peer_nodes(frames: dict[str, Any], keys: Any, ends: Any) -> tuple[Any, Any]:
    """Each building's node (the nearer end of its nearest segment) and each facility's."""
    import shapely

    roads = frames["roads"].geometry.to_numpy()
    tree = shapely.STRtree(roads)
    out = []
    for layer in ("buildings", "facilities"):
        points = frames[layer].geometry.to_numpy()
        _, seg = tree.query_nearest(points, all_matches=False)
        u, v = ends[0][seg], ends[1][seg]
        xy = shapely.get_coordinates(points)
        du = np.hypot(*(keys[u] - xy).T)
        dv = np.hypot(*(keys[v] - xy).T)
        out.append(np.where(du <= dv, u, v))
    return out[0], out[1]


def _peer_nearest(graph: Any, building_node: Any, facility_node: Any, fac_uid: Any) -> Any:
    import networkx as nx

    sources = {int(node): str(uid) for node, uid in zip(facility_node, fac_uid, strict=True)}
    dist, paths = nx.multi_source_dijkstra(graph, set(sources))
    node_time = np.full(graph.number_of_nodes() + 1, np.inf)
    node_fac = np.full(len(node_time), None, dtype=object)
    for node, d in dist.items():
        node_time[node] = d
        node_fac[node] = sources[paths[node][0]]
    return node_time[building_node], node_fac[building_node]


def service_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    import pandas as pd

    frames = _frames(roads_input(inputs))
    started = time.perf_counter()
    graph, keys, ends = _peer_graph(frames)
    b_node, f_node = _peer_nodes(frames, keys, ends)
    _log(f"networkx graph of {graph.number_of_edges():,} arcs", time.perf_counter() - started)
    started = time.perf_counter()
    time_s, fac = _peer_nearest(graph, b_node, f_node, frames["facilities"].index)
    seconds = time.perf_counter() - started
    _log("nearest facility of every building", seconds)
    frame = pd.DataFrame({"time_s": time_s, "facility": fac}, index=frames["buildings"].index)
    return {"compute_s": round(seconds, 6), **_service_facts(frame)}


def closure_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    import pandas as pd

    frames = _frames(roads_input(inputs))
    graph, keys, ends = _peer_graph(frames)
    b_node, f_node = _peer_nodes(frames, keys, ends)
    fac_uid = frames["facilities"].index
    before, _ = _peer_nearest(graph, b_node, f_node, fac_uid)
    draws = closure_draws(frames["roads"])
    times, answers = [], []
    for closed_uids in draws:
        closed = set(closed_uids)
        started = time.perf_counter()
        cut = graph.copy()
        cut.remove_edges_from([(a, b) for a, b, uid in graph.edges(data="uid") if uid in closed])
        after, _ = _peer_nearest(cut, b_node, f_node, fac_uid)
        detour = after - before
        times.append(time.perf_counter() - started)
        lost = np.isinf(after) & np.isfinite(before)
        kept = np.isfinite(after) & np.isfinite(before)
        answers.append(pd.DataFrame({"lost": lost, "detour_s": np.where(kept, detour, 0.0)}))
        del cut
    seconds = float(np.mean(times))
    _log(
        f"closure of {N_CLOSED} segments with every building's detour, mean of {len(draws)}",
        seconds,
    )
    return {
        "compute_s": round(seconds, 6),
        "per_closure_s": [round(t, 6) for t in times],
        **_closure_facts(answers),
    }
