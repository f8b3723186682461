"""Building footprints of the synthetic city.

Buildings stand in rows along the street fronts of their parcels ("strips"),
set back from the parcel edge, so every one is within a few tens of metres
of a road and of the pipes under it. Sizes follow the land use: point
towers on R2, low-rise houses on R1, sheds on M1, long slabs on schools.
Most footprints are rectangles; some are L-shaped, a few have a courtyard
(a hole) or are two parts (a multipolygon). A handful straddle a parcel
boundary and a few stand outside every parcel, beyond the edge of town,
as real deliveries have.

Examples
--------
>>> from twin.sample.buildings import TYPOLOGY
>>> TYPOLOGY.shape[0] == 14
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from twin.sample.layout import HALF_WIDTH_M, Layout
from twin.sample.parcels import LU, Parcels

__all__ = [
    "TYPOLOGY",
    "CapacityError",
    "Footprints",
    "Strips",
    "footprints_for",
    "strips_for",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ObjArray = npt.NDArray[np.object_]
_Columns = dict[str, npt.NDArray[np.float64] | IntArray]

# Per land use (rows in LAND_USES order): width range, depth range (m), gap between
# buildings, setback from the street edge (m), most buildings per strip.
_COLUMNS = ("w_lo", "w_hi", "d_lo", "d_hi", "gap", "setback", "cap")
TYPOLOGY = np.array(
    [
        [8, 12, 10, 14, 3, 5, 99],  # R1 low-rise houses
        [12, 16, 12, 35, 6, 8, 99],  # R2 towers and slabs end-on to the street
        [8, 14, 10, 14, 2, 3, 99],  # R3 old walk-ups
        [12, 30, 12, 30, 4, 8, 99],  # B1 shops, malls, podium towers
        [18, 30, 18, 30, 8, 10, 99],  # B2 office towers
        [15, 30, 12, 28, 6, 8, 99],  # A1 offices
        [20, 40, 20, 35, 8, 10, 99],  # A2 halls
        [14, 22, 25, 45, 10, 8, 99],  # A3 school slabs
        [18, 35, 15, 35, 8, 8, 99],  # A5 hospital wings
        [18, 36, 20, 45, 6, 6, 99],  # M1 sheds
        [0, 0, 0, 0, 0, 0, 0],  # G1 park: no buildings
        [0, 0, 0, 0, 0, 0, 0],  # S4 parking, bus depot yard
        [10, 16, 8, 14, 5, 6, 2],  # U1 substations, pump houses
        [0, 0, 0, 0, 0, 0, 0],  # E1 water
    ],
    dtype=float,
)
_T = {name: TYPOLOGY[:, k] for k, name in enumerate(_COLUMNS)}

RECT, L_SHAPE, COURTYARD, TWO_PART = 0, 1, 2, 3


class CapacityError(RuntimeError):
    """The parcels cannot hold the requested number of buildings (retry with more blocks)."""


@dataclass
class Strips:
    """Rows of buildings along the street fronts of parcels.

    A strip is one row: a parcel side facing a street, with one or two rows
    of buildings behind it (the second only where it still lies within
    :data:`SERVICE_REACH_M` of the road and its pipes).

    Attributes
    ----------
    parcel : ndarray of int
        Parcel of each strip.
    edge : ndarray of int
        Parcel side the strip runs along (0 = the parcel's main front).
    origin, eu, ev : ndarray, shape (n, 2)
        Local frame: origin on the street edge, unit vector along it, unit
        vector into the parcel.
    ua, ub : ndarray of float
        Usable stretch along the front (m from the origin).
    v0, depth : ndarray of float
        Distance of the row from the street edge and deepest footprint (m).
    capacity : ndarray of int
        How many buildings of the parcel's typology fit in the row.
    """

    parcel: IntArray
    edge: IntArray
    origin: FloatArray
    eu: FloatArray
    ev: FloatArray
    ua: FloatArray
    ub: FloatArray
    v0: FloatArray
    depth: FloatArray
    capacity: IntArray


#: Every building comes this close (m) to a road centre line and its pipes.
SERVICE_REACH_M = 50.0
PIPE_ALLOWANCE_M = 8.0  # pipes lie 4-6 m off the centre line; keep 2 m spare


def strips_for(parcels: Parcels) -> Strips:
    """Return the building rows of every parcel: its front, and street-facing sides.

    Parameters
    ----------
    parcels : Parcels
        The parcels.

    Returns
    -------
    Strips
    """
    n = len(parcels)
    front = _fronts(parcels, np.arange(n), np.zeros(n, dtype=np.int64), np.zeros(n))
    band = np.zeros(n)
    band[front["parcel"]] = front["band"]
    skip = band + _T["gap"][parcels.land_use]
    e1 = np.flatnonzero(parcels.street_hw[:, 1] > 0)
    e3 = np.flatnonzero(parcels.street_hw[:, 3] > 0)
    sides = _fronts(
        parcels,
        np.concatenate([e1, e3]),
        np.concatenate([np.ones(e1.size), np.full(e3.size, 3)]).astype(np.int64),
        skip[np.concatenate([e1, e3])],
    )
    parts = [_rows(part, r) for part in (front, sides) for r in (0, 1)]
    fields = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return Strips(**fields)


def _fronts(parcels: Parcels, parcel: IntArray, edge: IntArray, skip: FloatArray) -> _Columns:
    """Frame, usable stretch, rows and row depth of each (parcel, side)."""
    lu = parcels.land_use[parcel]
    q = parcels.corners[parcel]
    rows = np.arange(parcel.size)
    c0, c1 = q[rows, edge], q[rows, (edge + 1) % 4]
    c2, c3 = q[rows, (edge + 2) % 4], q[rows, (edge + 3) % 4]
    length = np.linalg.norm(c1 - c0, axis=1)
    eu = (c1 - c0) / length[:, None]
    ev = np.stack([-eu[:, 1], eu[:, 0]], axis=1)
    a_u, a_v = _local(c3 - c0, eu, ev)
    b_u, b_v = _local(c2 - c0, eu, ev)
    room_v = np.minimum(a_v, b_v) - 3.0
    room_v = np.where(edge == 0, room_v, room_v / 2)  # two sides may share the depth
    setback, gap = _T["setback"][lu], _T["gap"][lu]
    d_lo, d_hi = _T["d_lo"][lu], _T["d_hi"][lu]
    reach = SERVICE_REACH_M - PIPE_ALLOWANCE_M - parcels.street_hw[parcel, edge]
    two_depth = np.minimum.reduce([d_hi, reach - setback - gap, (room_v - setback - gap) / 2])
    two = two_depth >= d_lo
    depth = np.where(two, two_depth, np.minimum(d_hi, room_v - setback))
    n_rows = np.where(two, 2, 1)
    band = setback + n_rows * depth + (n_rows - 1) * gap
    umin = np.maximum(0.0, a_u * band / a_v)
    umax = np.minimum(length, length + (b_u - length) * band / b_v)
    margin = np.maximum(3.0, gap / 2)
    ua, ub = umin + margin, umax - margin
    ua = np.where(edge == 1, np.maximum(ua, skip), ua)
    ub = np.where(edge == 3, np.minimum(ub, length - skip), ub)
    usable = (depth >= 0.8 * d_lo) & (ub > ua) & (_T["cap"][lu] > 0)
    room = np.where(usable, ub - ua, 0.0)
    w_mean = (_T["w_lo"][lu] + _T["w_hi"][lu]) / 2
    capacity = np.floor((room + gap) / np.maximum(w_mean + gap, 1.0))
    capacity = np.clip(capacity, 0, _T["cap"][lu]).astype(np.int64)
    return {
        "parcel": parcel,
        "edge": edge,
        "origin": c0,
        "eu": eu,
        "ev": ev,
        "ua": ua,
        "ub": ub,
        "depth": depth,
        "capacity": capacity,
        "band": band,
        "rows": n_rows,
        "setback": setback,
        "gap": gap,
    }


def _rows(front: _Columns, row: int) -> _Columns:
    """Row ``row`` (0 or 1) of every front that has it."""
    keep = front["rows"] > row
    out = {
        key: front[key][keep]
        for key in ("parcel", "edge", "origin", "eu", "ev", "ua", "ub", "depth", "capacity")
    }
    out["v0"] = (front["setback"] + row * (front["depth"] + front["gap"]))[keep]
    return out


def _local(vec: FloatArray, eu: FloatArray, ev: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Coordinates of vectors in the frame (eu, ev)."""
    return (vec * eu).sum(axis=1), (vec * ev).sum(axis=1)


def allocate(capacity: IntArray, total: int, rng: np.random.Generator) -> IntArray:
    """Spread ``total`` items over slots in proportion to their capacity (largest remainder).

    Raises
    ------
    CapacityError
        When the capacities add up to less than ``total``.

    Examples
    --------
    >>> import numpy as np
    >>> allocate(np.array([4, 4, 2]), 5, np.random.default_rng(0)).sum()
    np.int64(5)
    """
    available = int(capacity.sum())
    if available < total:
        raise CapacityError(f"room for {available} buildings, {total} wanted")
    share = capacity * (total / max(available, 1))
    counts = np.floor(share).astype(np.int64)
    remainder = total - int(counts.sum())
    frac = share - counts + rng.uniform(0, 1e-6, capacity.size)
    frac[counts >= capacity] = -1.0
    counts[np.argsort(-frac, kind="stable")[:remainder]] += 1
    return counts


@dataclass
class Footprints:
    """Building footprints and where they stand.

    Attributes
    ----------
    geometry : ndarray of shapely geometries
        Polygons and multipolygons in the twin CRS.
    parcel : ndarray of int
        Parcel the building was placed on (-1: on no parcel).
    block : ndarray of int
        Block the building belongs to (for orphans: the block across the road).
    land_use : ndarray of int
        Land use of the parcel (R3 for orphans: village houses).
    shape : ndarray of int
        RECT, L_SHAPE, COURTYARD or TWO_PART.
    straddles : ndarray of bool
        True for the buildings placed across a parcel boundary.
    """

    geometry: ObjArray
    parcel: IntArray
    block: IntArray
    land_use: IntArray
    shape: IntArray
    straddles: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        """Number of footprints."""
        return int(self.parcel.size)


def footprints_for(
    layout: Layout, parcels: Parcels, strips: Strips, n_buildings: int, rng: np.random.Generator
) -> Footprints:
    """Place exactly ``n_buildings`` footprints.

    Parameters
    ----------
    layout : Layout
        The street grid (for the buildings beyond the edge of town).
    parcels : Parcels
        The parcels.
    strips : Strips
        Their building strips (see :func:`strips_for`).
    n_buildings : int
        How many buildings.
    rng : numpy.random.Generator
        The random stream.

    Raises
    ------
    CapacityError
        When the parcels have too little room.
    """
    n_orphans = max(3, n_buildings // 2000)
    counts = allocate(strips.capacity, n_buildings - n_orphans, rng)
    s, u0, u1, v0, v1 = _place(parcels, strips, counts, rng)
    lu = parcels.land_use[strips.parcel[s]]
    shape = _shapes(u1 - u0, v1 - v0, lu, rng)
    straddles = np.zeros(s.size, dtype=bool)
    geometry = _geometries(strips, s, u0, u1, v0, v1, shape, rng)
    parcel = strips.parcel[s]
    _make_straddlers(parcels, strips, s, u0, u1, v0, shape, geometry, straddles, rng)
    orphans, orphan_blocks = _orphans(layout, n_orphans, rng)
    return Footprints(
        np.concatenate([geometry, orphans]),
        np.concatenate([parcel, np.full(n_orphans, -1)]),
        np.concatenate([parcels.block[parcel], orphan_blocks]),
        np.concatenate([lu, np.full(n_orphans, LU["R3"])]),
        np.concatenate([shape, np.zeros(n_orphans, dtype=np.int64)]),
        np.concatenate([straddles, np.zeros(n_orphans, dtype=bool)]),
    )


def _place(
    parcels: Parcels, strips: Strips, counts: IntArray, rng: np.random.Generator
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Rows of buildings along each strip: strip index and local box (u0, u1, v0, v1)."""
    total = int(counts.sum())
    s = np.repeat(np.arange(counts.size), counts)
    start = np.cumsum(counts) - counts
    k = np.arange(total) - start[s]
    lu = parcels.land_use[strips.parcel[s]]
    gap = _T["gap"][lu]
    width = rng.uniform(_T["w_lo"][lu], _T["w_hi"][lu])
    d_hi = np.maximum(np.minimum(_T["d_hi"][lu], strips.depth[s]), _T["d_lo"][lu] * 0.8)
    depth = rng.uniform(np.minimum(_T["d_lo"][lu], d_hi), d_hi)
    room = (
        strips.ub
        - strips.ua
        - np.maximum(counts - 1, 0) * _T["gap"][parcels.land_use[strips.parcel]]
    )
    sum_w = np.bincount(s, width, minlength=counts.size)
    scale = np.where(sum_w > room, room / np.maximum(sum_w, 1e-9), 1.0)
    width *= scale[s]
    slack = np.maximum(room - sum_w * scale, 0.0)
    before = np.cumsum(width) - width
    before -= before[start[s]]
    u0 = strips.ua[s] + (k + 1) * slack[s] / (counts[s] + 1) + before + k * gap
    v0 = strips.v0[s]
    return s, u0, u0 + width, v0, v0 + depth


def _shapes(
    width: FloatArray, depth: FloatArray, lu: IntArray, rng: np.random.Generator
) -> IntArray:
    """Choose footprint shapes: ~10 % L, ~0.5 % courtyard (at least 3), ~0.3 % two-part."""
    n = width.size
    shape = np.zeros(n, dtype=np.int64)
    big = np.minimum(width, depth)
    n_court = min(n, max(3, round(0.005 * n)))
    court_ok = np.flatnonzero(big >= 18.0)
    if court_ok.size < n_court:  # tiny towns: take the largest footprints
        court_ok = np.argsort(-big, kind="stable")[:n_court]
    shape[rng.choice(court_ok, size=min(n_court, court_ok.size), replace=False)] = COURTYARD
    free = np.flatnonzero((shape == RECT) & (width >= 20))
    n_two = min(free.size, max(3, round(0.003 * n)))
    shape[rng.choice(free, size=n_two, replace=False)] = TWO_PART
    l_ok = (shape == RECT) & (width >= 14) & (depth >= 12) & (lu != LU["M1"])
    shape[l_ok & (rng.random(n) < 0.12)] = L_SHAPE
    return shape


def _to_world(strips: Strips, s: IntArray, u: FloatArray, v: FloatArray) -> FloatArray:
    """Local (u, v) coordinates, shape (n, m), of strips ``s`` to world (n, m, 2)."""
    return (
        strips.origin[s][:, None, :]
        + u[..., None] * strips.eu[s][:, None, :]
        + v[..., None] * strips.ev[s][:, None, :]
    )


def _geometries(
    strips: Strips,
    s: IntArray,
    u0: FloatArray,
    u1: FloatArray,
    v0: FloatArray,
    v1: FloatArray,
    shape: IntArray,
    rng: np.random.Generator,
) -> ObjArray:
    """Footprint geometries from local boxes and shapes (vectorised per shape)."""
    out = np.empty(s.size, dtype=object)
    k = np.flatnonzero(shape == RECT)
    out[k] = shapely.polygons(_to_world(strips, s[k], *_box(u0[k], u1[k], v0[k], v1[k])))
    k = np.flatnonzero(shape == L_SHAPE)
    out[k] = shapely.polygons(_to_world(strips, s[k], *_l_ring(u0[k], u1[k], v0[k], v1[k], rng)))
    k = np.flatnonzero(shape == COURTYARD)
    inset = np.minimum(u1[k] - u0[k], v1[k] - v0[k]) * rng.uniform(0.25, 0.32, k.size)
    shell = _to_world(strips, s[k], *_box(u0[k], u1[k], v0[k], v1[k]))
    hole_u, hole_v = _box(u0[k] + inset, u1[k] - inset, v0[k] + inset, v1[k] - inset)
    hole = _to_world(strips, s[k], hole_u[:, ::-1], hole_v[:, ::-1])
    out[k] = shapely.polygons(shell, holes=hole[:, None])
    k = np.flatnonzero(shape == TWO_PART)
    cut = u0[k] + (u1[k] - u0[k]) * rng.uniform(0.4, 0.6, k.size)
    left = shapely.polygons(_to_world(strips, s[k], *_box(u0[k], cut - 1.5, v0[k], v1[k])))
    right = shapely.polygons(_to_world(strips, s[k], *_box(cut + 1.5, u1[k], v0[k], v1[k])))
    out[k] = shapely.multipolygons(np.stack([left, right], axis=1))
    return out


def _box(
    u0: FloatArray, u1: FloatArray, v0: FloatArray, v1: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Closed counter-clockwise rectangle rings as (u, v) arrays of shape (n, 5)."""
    u = np.stack([u0, u1, u1, u0, u0], axis=1)
    v = np.stack([v0, v0, v1, v1, v0], axis=1)
    return u, v


def _l_ring(
    u0: FloatArray, u1: FloatArray, v0: FloatArray, v1: FloatArray, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """Closed L-shaped rings (a back corner cut away), shape (n, 7)."""
    n = u0.size
    um = u0 + (u1 - u0) * rng.uniform(0.4, 0.6, n)
    vm = v0 + (v1 - v0) * rng.uniform(0.4, 0.6, n)
    right = rng.random(n) < 0.5
    u_r = np.stack([u0, u1, u1, um, um, u0, u0], axis=1)
    v_r = np.stack([v0, v0, vm, vm, v1, v1, v0], axis=1)
    u_l = np.stack([u0, u1, u1, um, um, u0, u0], axis=1)
    v_l = np.stack([v0, v0, v1, v1, vm, vm, v0], axis=1)
    return np.where(right[:, None], u_r, u_l), np.where(right[:, None], v_r, v_l)


def _make_straddlers(
    parcels: Parcels,
    strips: Strips,
    s: IntArray,
    u0: FloatArray,
    u1: FloatArray,
    v0: FloatArray,
    shape: IntArray,
    geometry: ObjArray,
    straddles: npt.NDArray[np.bool_],
    rng: np.random.Generator,
) -> None:
    """Stretch a handful of front buildings across the back line of their parcel (in place)."""
    want = max(3, s.size // 1500)
    front = np.flatnonzero((strips.edge[s] == 0) & (shape == RECT))
    candidates = rng.permutation(front)[: 40 * want]
    if candidates.size == 0:
        return
    q = parcels.corners[strips.parcel[s[candidates]]]
    back = np.maximum(
        _local(q[:, 2] - q[:, 0], strips.eu[s[candidates]], strips.ev[s[candidates]])[1],
        _local(q[:, 3] - q[:, 0], strips.eu[s[candidates]], strips.ev[s[candidates]])[1],
    )
    v1 = back + rng.uniform(10.0, 14.0, candidates.size)
    stretched = shapely.polygons(
        _to_world(strips, s[candidates], *_box(u0[candidates], u1[candidates], v0[candidates], v1))
    )
    parcel_tree = shapely.STRtree(parcels.polygons())
    building_tree = shapely.STRtree(geometry)
    chosen: list[int] = []
    for k, geom in zip(candidates, stretched, strict=True):
        hits = parcel_tree.query(geom, predicate="intersects")
        others = building_tree.query(geom, predicate="intersects")
        inside = shapely.area(shapely.intersection(geom, parcel_tree.geometries[hits])).sum()
        clash = bool(chosen) and bool(shapely.intersects(geom, geometry[chosen]).any())
        if hits.size == 2 and others.size == 1 and not clash and inside > (1 - 1e-3) * geom.area:
            geometry[k] = geom
            straddles[k] = True
            chosen.append(int(k))
            if len(chosen) == want:
                break


def _orphans(layout: Layout, n: int, rng: np.random.Generator) -> tuple[ObjArray, IntArray]:
    """Village houses just south of the southern edge road, on no parcel."""
    slots = -(-n // layout.nx)  # houses per edge segment, at most
    pick = rng.permutation(layout.nx * slots)[:n]
    i, slot = pick % layout.nx, pick // layout.nx
    a, b = layout.nodes[i, 0], layout.nodes[i + 1, 0]
    eu = (b - a) / np.linalg.norm(b - a, axis=1)[:, None]
    ev = np.stack([eu[:, 1], -eu[:, 0]], axis=1)  # pointing away from town (south)
    half = HALF_WIDTH_M[layout.h_class[i, 0]]
    along = (slot + rng.uniform(0.3, 0.7, n)) / slots
    width, depth = rng.uniform(10.0, 16.0, n), rng.uniform(8.0, 12.0, n)
    gap = rng.uniform(4.0, 10.0, n)
    origin = a + along[:, None] * (b - a) + (half + gap)[:, None] * ev
    u = np.stack([-width / 2, -width / 2, width / 2, width / 2, -width / 2], axis=1)
    v = np.stack([np.zeros(n), depth, depth, np.zeros(n), np.zeros(n)], axis=1)
    coords = origin[:, None, :] + u[..., None] * eu[:, None, :] + v[..., None] * ev[:, None, :]
    blocks = i * layout.ny
    return shapely.polygons(coords), blocks.astype(np.int64)
