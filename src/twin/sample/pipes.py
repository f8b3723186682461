"""Water and gas networks of the synthetic city: pipes, valves and sources.

Mains run under every street, split at the intersections: the water network
is the street grid moved 4 m north and 4 m east, the gas network moved 4 m
south and 4 m west (so water lies on the north or east side of a street, gas
on the other), and each utility forms one connected network whose junctions
are shared end points. Every pipe has a vertex 8 m in from each end.

Valves follow a valve grid, as a utility lays them out: every third street
each way (at a random phase per network) is a valve line, and every main that
leaves an intersection on a valve line across it carries a gate valve on the
vertex 8 m from that intersection. The isolation segments are then blocks of
about 3 x 3 city blocks (roughly 600 m x 480 m), each closed by about twelve
valves, and a third of the mains carry a valve. Of the valves 3 % are
normally closed and 2 % inoperable; an inoperable valve merges the segments
on its two sides. Transmission mains lead out of town to two water sources (a
plant and a reservoir) and a gas gate station, each exactly on the far end
of its main, with a valve at the town end.

Examples
--------
>>> import numpy as np
>>> from twin.sample.layout import layout_for, segments_of
>>> lay = layout_for(3000, np.random.default_rng(0))
>>> net = pipe_networks(lay, segments_of(lay), np.random.default_rng(1))
>>> sorted(net)
['gas_pipes', 'sources', 'valves', 'water_pipes']
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from twin.sample.draws import exact_mask, numbered
from twin.sample.layout import ARTERIAL, COLLECTOR, TWIN_CRS, Layout, Segments

__all__ = ["NETWORKS", "pipe_networks"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

VALVE_EVERY = 3  # a valve line every third street each way: a valve on a third of the mains
CLOSED_SHARE = 0.03  # normally closed boundary valves
INOPERABLE_SHARE = 0.02  # valves that will not turn
END_VERTEX_M = 8.0  # valves stand this far from the intersection


@dataclass(frozen=True)
class _Network:
    name: str  # "water" or "gas"
    prefix: str  # 给水 JS, 燃气 RQ
    offset: tuple[float, float]  # from the road centre line, m
    trunk: tuple[int, ...]  # diameters under arterials and expressways
    collector: tuple[int, ...]
    local: tuple[int, ...]
    sources: tuple[tuple[str, str, str, float, float], ...]  # type, name, side, length, elev.


NETWORKS = (
    _Network(
        "water",
        "JS",
        (4.0, 4.0),
        (600, 800, 1000, 1200),
        (200, 300),
        (100, 150, 200),
        (
            ("plant", "第六水厂", "west", 400.0, 520.0),
            ("reservoir", "北郊水库", "north", 350.0, 545.0),
        ),
    ),
    _Network(
        "gas",
        "RQ",
        (-4.0, -4.0),
        (600, 800),
        (200, 300),
        (100, 150, 200),
        (("prv", "东郊天然气门站", "east", 300.0, 505.0),),
    ),
)


def pipe_networks(
    layout: Layout, seg: Segments, rng: np.random.Generator
) -> dict[str, gpd.GeoDataFrame]:
    """Return ``water_pipes``, ``gas_pipes``, ``valves`` and ``sources`` (twin CRS).

    Pipes carry ``pipe_id``, ``network``, ``diameter_mm``, ``material``,
    ``install_year`` and ``length_m``; valves ``valve_id``, ``network``,
    ``status``, ``diameter_mm`` and ``valve_type``; sources ``source_id``,
    ``source_type``, ``network``, ``name`` and ``elevation_m``.

    Parameters
    ----------
    layout : Layout
        The street grid.
    seg : Segments
        Its road segments (one main per segment and utility).
    rng : numpy.random.Generator
        The random stream.
    """
    out: dict[str, gpd.GeoDataFrame] = {}
    valves: list[gpd.GeoDataFrame] = []
    sources: list[gpd.GeoDataFrame] = []
    for net in NETWORKS:
        coords, trunk_ends, klass = _pipe_coords(layout, seg, net)
        pipes = _pipes_frame(layout, coords, klass, net, rng)
        out[f"{net.name}_pipes"] = pipes
        valves.append(_valves_frame(coords, pipes, seg, net, rng))
        sources.append(_sources_frame(trunk_ends, net))
    out["valves"] = pd.concat(valves, ignore_index=True)
    out["sources"] = pd.concat(sources, ignore_index=True)
    return out


def _pipe_coords(
    layout: Layout, seg: Segments, net: _Network
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Coordinates (n, 4, 2) of every main plus the transmission mains, their far ends, class.

    Transmission mains get class -1.
    """
    nodes = layout.nodes.reshape(-1, 2) + np.asarray(net.offset)
    starts, ends = [nodes[seg.a]], [nodes[seg.b]]
    far_ends = []
    for _type, _name, side, length, _elev in net.sources:
        i, j, step = {
            "west": (0, layout.cj, (-1.0, 0.0)),
            "north": (layout.ci, layout.ny, (0.0, 1.0)),
            "east": (layout.nx, layout.cj, (1.0, 0.0)),
        }[side]
        a = nodes[layout.node_id(i, j)]
        far = a + length * np.asarray(step)
        starts.append(a[None, :])
        ends.append(far[None, :])
        far_ends.append(far)
    a, b = np.concatenate(starts), np.concatenate(ends)
    unit = (b - a) / np.linalg.norm(b - a, axis=1)[:, None]
    coords = np.stack([a, a + END_VERTEX_M * unit, b - END_VERTEX_M * unit, b], axis=1)
    klass = np.concatenate([seg.road_class, np.full(len(net.sources), -1)])
    return coords, np.array(far_ends), klass


def _pipes_frame(
    layout: Layout, coords: FloatArray, klass: IntArray, net: _Network, rng: np.random.Generator
) -> gpd.GeoDataFrame:
    """Attributes of the mains: diameter by road class, year by distance from the centre."""
    n = coords.shape[0]
    diameter = np.where(
        klass <= ARTERIAL,
        rng.choice(net.trunk, n, p=_weights(len(net.trunk))),
        np.where(klass == COLLECTOR, rng.choice(net.collector, n), rng.choice(net.local, n)),
    )
    diameter = np.where(klass < 0, max(net.trunk), diameter)
    centre = layout.nodes[layout.ci, layout.cj]
    r = np.linalg.norm(coords.mean(axis=1) - centre, axis=1)
    r /= max(float(r.max()), 1.0)
    year = np.clip(np.round(1985 + 35 * r + rng.normal(0, 5, n)), 1980, 2023).astype(np.int32)
    geometry = shapely.linestrings(coords)
    return gpd.GeoDataFrame(
        {
            "pipe_id": numbered(net.prefix, n),
            "network": net.name,
            "diameter_mm": diameter.astype(np.int32),
            "material": _materials(net.name, diameter, year, rng),
            "install_year": year,
            "length_m": np.round(shapely.length(geometry), 1),
        },
        geometry=geometry,
        crs=TWIN_CRS,
    )


def _weights(n: int) -> FloatArray:
    """Decreasing weights for n sizes (larger mains are rarer)."""
    w = 1.0 / np.arange(1, n + 1)
    return w / w.sum()


def _materials(
    network: str, diameter: IntArray, year: IntArray, rng: np.random.Generator
) -> npt.NDArray[np.str_]:
    """Pipe material by utility, size and age."""
    n = diameter.size
    if network == "gas":
        return np.where((diameter >= 300) | (year < 2000), "steel", "PE")
    modern = np.where(
        (diameter <= 200) & (year >= 2005) & (rng.random(n) < 0.5), "PE", "ductile_iron"
    )
    large = np.where(rng.random(n) < 0.5, "steel", "ductile_iron")
    return np.where(year < 1995, "grey_cast_iron", np.where(diameter >= 600, large, modern))


def _valves_frame(
    coords: FloatArray,
    pipes: gpd.GeoDataFrame,
    seg: Segments,
    net: _Network,
    rng: np.random.Generator,
) -> gpd.GeoDataFrame:
    """Valves on the mains that cross a valve line, on the vertex next to the line.

    Mains run from the lower-index intersection, so the crossing main starts on
    the valve line and its valve is vertex 1. Transmission mains (the last
    pipes) get a valve at their town end.
    """
    n = coords.shape[0]
    phase = rng.integers(0, VALVE_EVERY, 2)
    start = np.where(seg.vertical, seg.j - phase[1], seg.i - phase[0])
    crossing = np.concatenate([start % VALVE_EVERY == 0, np.ones(n - len(seg), dtype=bool)])
    pipe = np.flatnonzero(crossing)
    m = pipe.size
    closed = exact_mask(rng, m, CLOSED_SHARE)
    broken = exact_mask(rng, m, INOPERABLE_SHARE, among=~closed)
    status = np.where(closed, "closed", np.where(broken, "inoperable", "open"))
    diameter = pipes["diameter_mm"].to_numpy()[pipe]
    kinds = ("butterfly", "gate") if net.name == "water" else ("gate", "ball")
    return gpd.GeoDataFrame(
        {
            "valve_id": numbered(f"{net.prefix}F", m),
            "network": net.name,
            "status": status,
            "diameter_mm": diameter.astype(np.int32),
            "valve_type": np.where(diameter >= 400, kinds[0], kinds[1]),
        },
        geometry=shapely.points(coords[pipe, 1]),
        crs=TWIN_CRS,
    )


def _sources_frame(far_ends: FloatArray, net: _Network) -> gpd.GeoDataFrame:
    """The network's sources, each on the far end of its transmission main."""
    return gpd.GeoDataFrame(
        {
            "source_id": [f"{net.prefix}Y{k + 1:02d}" for k in range(len(net.sources))],
            "source_type": [s[0] for s in net.sources],
            "network": net.name,
            "name": [s[1] for s in net.sources],
            "elevation_m": [s[4] for s in net.sources],
        },
        geometry=shapely.points(far_ends),
        crs=TWIN_CRS,
    )
