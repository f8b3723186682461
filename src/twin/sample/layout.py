"""Street grid of the synthetic city: grid lines, intersections, road classes, blocks.

The city is a jittered lattice of ``nx`` by ``ny`` blocks. Grid lines are
numbered ``0..nx`` (west to east, "vertical" lines) and ``0..ny`` (south to
north, "horizontal" lines); intersection ``(i, j)`` is where vertical line
``i`` meets horizontal line ``j``. A road segment joins two neighbouring
intersections. One row of blocks is a river corridor: only its arterial
crossings are bridges. A few local streets are missing, so some blocks merge
and some crossings are T-junctions.

Examples
--------
>>> import numpy as np
>>> from twin.sample.layout import layout_for
>>> lay = layout_for(3000, np.random.default_rng(0))
>>> lay.nodes.shape == (lay.nx + 1, lay.ny + 1, 2)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pyproj import Transformer

__all__ = [
    "ARTERIAL",
    "BUILDINGS_PER_BLOCK",
    "COLLECTOR",
    "EXPRESS",
    "HALF_WIDTH_M",
    "LOCAL",
    "ROAD_CLASSES",
    "TWIN_CRS",
    "Layout",
    "Segments",
    "block_quads",
    "layout_for",
    "segments_of",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: The twin CRS of the sample: CGCS2000 / 3-degree Gauss-Kruger CM 105E.
TWIN_CRS = "EPSG:4544"
#: Centre of the city, longitude and latitude (Chengdu).
CENTRE_LONLAT = (104.06, 30.66)
#: Road classes (道路等级), indexed by the class codes below.
ROAD_CLASSES = ("快速路", "主干路", "次干路", "支路")
EXPRESS, ARTERIAL, COLLECTOR, LOCAL = 0, 1, 2, 3
#: Half the road reserve width (centre line to block edge) per class, m.
HALF_WIDTH_M = np.array([20.0, 15.0, 12.0, 7.0])
#: Expected buildings per block (calibrated so parcels end up about 80 % full).
BUILDINGS_PER_BLOCK = 19.0
RING_FIRST = 6  # the first ring road runs this many blocks from the centre
RING_STEP = 12  # and the next ones every this many blocks further out
JITTER_M = 7.0  # intersections move up to this far from the lattice


@dataclass(frozen=True)
class Layout:
    """The street grid: intersections, classes and which segments exist.

    Attributes
    ----------
    nx, ny : int
        Blocks west-east and south-north.
    nodes : ndarray, shape (nx + 1, ny + 1, 2)
        Intersection coordinates in the twin CRS (m).
    ci, cj : int
        Index of the central vertical and horizontal line.
    river_row : int
        Row of blocks that is the river corridor.
    h_class, v_class : ndarray
        Road class code of every horizontal segment ``(i, j)``, shape
        ``(nx, ny + 1)``, and vertical segment, shape ``(nx + 1, ny)``.
    h_ring, v_ring : ndarray
        Ring road number (1, 2, …) of each segment, 0 when not on a ring.
    h_exists, v_exists : ndarray of bool
        Whether each segment exists (missing local streets, river crossings).
    h_oneway, v_oneway : ndarray
        Per line: 0 two-way, 1 one-way along increasing index, -1 against.
    roll : ndarray, shape (nx, ny)
        1 where a block is taller than wide (its long sides are vertical).
    """

    nx: int
    ny: int
    nodes: FloatArray
    ci: int
    cj: int
    river_row: int
    h_class: IntArray
    v_class: IntArray
    h_ring: IntArray
    v_ring: IntArray
    h_exists: BoolArray
    v_exists: BoolArray
    h_oneway: IntArray
    v_oneway: IntArray
    roll: IntArray

    @property
    def n_blocks(self) -> int:
        """Number of blocks (grid cells), river blocks included."""
        return self.nx * self.ny

    def node_id(self, i: npt.ArrayLike, j: npt.ArrayLike) -> IntArray:
        """Return the flat index of intersection ``(i, j)`` into ``nodes.reshape(-1, 2)``."""
        return np.asarray(i, dtype=np.int64) * (self.ny + 1) + np.asarray(j, dtype=np.int64)


def grid_size(n_buildings: int, scale: float = 1.0) -> tuple[int, int]:
    """Return ``(nx, ny)`` blocks for a city of ``n_buildings`` (river row included).

    Examples
    --------
    >>> grid_size(3000)
    (13, 13)
    """
    blocks = max(12.0, scale * n_buildings / BUILDINGS_PER_BLOCK)
    nx = max(4, round(float(np.sqrt(blocks * 1.15))))
    ny = max(4, round(blocks / nx)) + 1
    return nx, ny


def layout_for(n_buildings: int, rng: np.random.Generator, *, scale: float = 1.0) -> Layout:
    """Return the street grid for a city of about ``n_buildings`` buildings.

    Parameters
    ----------
    n_buildings : int
        Target number of buildings; sets the number of blocks.
    rng : numpy.random.Generator
        The random stream of the layout.
    scale : float, default 1.0
        Multiplies the number of blocks (used to retry with more room).

    Returns
    -------
    Layout
    """
    nx, ny = grid_size(n_buildings, scale)
    ci, cj = nx // 2, ny // 2
    river_row = min(ny - 2, cj + 1)
    nodes = _nodes(nx, ny, ci, cj, river_row, rng)
    v_line, h_line = _line_classes(nx, ci, river_row, ny, cj)
    h_class = np.repeat(h_line[None, :], nx, axis=0)
    v_class = np.repeat(v_line[:, None], ny, axis=1)
    h_ring, v_ring = _rings(nx, ny, ci, cj)
    h_class[h_ring > 0] = EXPRESS
    v_class[v_ring > 0] = EXPRESS
    roll = _rolls(nodes, river_row)
    v_exists = _vertical_exists(v_class, roll, river_row, rng)
    h_exists = np.ones((nx, ny + 1), dtype=bool)
    v_oneway = _oneway_lines(v_line, rng)
    h_oneway = _oneway_lines(h_line, rng)
    return Layout(
        nx,
        ny,
        nodes,
        ci,
        cj,
        river_row,
        h_class,
        v_class,
        h_ring,
        v_ring,
        h_exists,
        v_exists,
        h_oneway,
        v_oneway,
        roll,
    )


def _nodes(
    nx: int, ny: int, ci: int, cj: int, river_row: int, rng: np.random.Generator
) -> FloatArray:
    """Intersection coordinates: varied spacing, centred on Chengdu, jittered."""
    widths = rng.uniform(160.0, 250.0, nx)
    heights = rng.uniform(130.0, 190.0, ny)
    heights[river_row] = rng.uniform(150.0, 190.0)
    xs = np.concatenate([[0.0], np.cumsum(widths)])
    ys = np.concatenate([[0.0], np.cumsum(heights)])
    to_twin = Transformer.from_crs("EPSG:4490", TWIN_CRS, always_xy=True)
    x0, y0 = (round(v) for v in to_twin.transform(*CENTRE_LONLAT))
    xs += x0 - xs[ci]
    ys += y0 - ys[cj]
    nodes = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1)
    nodes += rng.uniform(-JITTER_M, JITTER_M, nodes.shape)
    return np.round(nodes, 3)


def _line_classes(nx: int, ci: int, river_row: int, ny: int, cj: int) -> tuple[IntArray, IntArray]:
    """Class of each vertical and horizontal grid line (rings applied later)."""

    def classes(n: int, c: int) -> IntArray:
        """Arterial every 4th line from the centre, collector halfway, lanes between."""
        d = np.abs(np.arange(n + 1) - c) % 4
        cls = np.where(d == 0, ARTERIAL, np.where(d == 2, COLLECTOR, LOCAL))
        cls[[0, n]] = np.minimum(cls[[0, n]], COLLECTOR)  # the edge of town is never a lane
        return cls.astype(np.int64)

    v_line = classes(nx, ci)
    h_line = classes(ny, cj)
    h_line[[river_row, river_row + 1]] = np.minimum(h_line[[river_row, river_row + 1]], COLLECTOR)
    return v_line, h_line


def _rings(nx: int, ny: int, ci: int, cj: int) -> tuple[IntArray, IntArray]:
    """Ring road number of every horizontal and vertical segment (0 = none)."""
    h_ring = np.zeros((nx, ny + 1), dtype=np.int64)
    v_ring = np.zeros((nx + 1, ny), dtype=np.int64)
    hi, hj = np.meshgrid(np.arange(nx), np.arange(ny + 1), indexing="ij")
    vi, vj = np.meshgrid(np.arange(nx + 1), np.arange(ny), indexing="ij")
    for number, r in enumerate(range(RING_FIRST, max(nx, ny) + 1, RING_STEP), start=1):
        on_h = (np.abs(hj - cj) == r) & (hi >= ci - r) & (hi + 1 <= ci + r)
        on_v = (np.abs(vi - ci) == r) & (vj >= cj - r) & (vj + 1 <= cj + r)
        h_ring[on_h] = number
        v_ring[on_v] = number
    return h_ring, v_ring


def _rolls(nodes: FloatArray, river_row: int) -> IntArray:
    """1 for blocks taller than wide (their long sides, the parcel fronts, are vertical)."""
    a, b = nodes[:-1, :-1], nodes[1:, :-1]
    c, d = nodes[1:, 1:], nodes[:-1, 1:]
    width = np.linalg.norm(b - a, axis=-1) + np.linalg.norm(c - d, axis=-1)
    height = np.linalg.norm(c - b, axis=-1) + np.linalg.norm(d - a, axis=-1)
    roll = (height > width).astype(np.int64)
    roll[:, river_row] = 0  # the river runs west-east
    return roll


def _vertical_exists(
    v_class: IntArray, roll: IntArray, river_row: int, rng: np.random.Generator
) -> BoolArray:
    """Which vertical segments exist: no lane bridges; a few lanes missing.

    A lane may only be missing where it is the short side of both blocks it
    separates, so that every parcel front still faces a street; horizontal
    segments always exist, which keeps the network connected.
    """
    nx1, ny = v_class.shape
    exists = np.ones((nx1, ny), dtype=bool)
    inner = np.zeros_like(exists)
    inner[1:-1, :] = True
    both_wide = np.zeros_like(exists)
    both_wide[1:-1, :] = (roll[:-1, :] == 0) & (roll[1:, :] == 0)
    drop = inner & both_wide & (v_class == LOCAL) & (rng.random(exists.shape) < 0.08)
    drop[:, river_row] = inner[:, river_row] & (v_class[:, river_row] == LOCAL)
    exists[drop] = False
    return exists


def _oneway_lines(line_class: IntArray, rng: np.random.Generator) -> IntArray:
    """Per grid line: 1 or -1 for a one-way lane, 0 for two-way (about 12 % of lanes, 1+)."""
    n = line_class.size
    lanes = np.flatnonzero(line_class == LOCAL)
    lanes = lanes[(lanes > 0) & (lanes < n - 1)]
    oneway = np.zeros(n, dtype=np.int64)
    if lanes.size:
        count = max(1, round(0.12 * lanes.size))
        chosen = rng.choice(lanes, size=count, replace=False)
        oneway[chosen] = rng.choice([1, -1], count)
    return oneway


@dataclass(frozen=True)
class Segments:
    """Every existing road segment, horizontal ones first.

    Attributes
    ----------
    a, b : ndarray of int
        Flat node ids of the start (lower index) and end intersection.
    road_class, ring : ndarray of int
        Class code and ring number.
    vertical : ndarray of bool
        True for segments along a vertical grid line.
    i, j : ndarray of int
        Grid index of the start intersection.
    oneway : ndarray of int
        Line direction flag (0, 1 or -1) for local one-way lanes.
    """

    a: IntArray
    b: IntArray
    road_class: IntArray
    ring: IntArray
    vertical: BoolArray
    i: IntArray
    j: IntArray
    oneway: IntArray

    def __len__(self) -> int:
        """Number of segments."""
        return int(self.a.size)


def segments_of(layout: Layout) -> Segments:
    """Return the existing road segments of ``layout``.

    Examples
    --------
    >>> import numpy as np
    >>> lay = layout_for(3000, np.random.default_rng(0))
    >>> seg = segments_of(lay)
    >>> bool((seg.a < seg.b).all())
    True
    """
    hi, hj = np.nonzero(layout.h_exists)
    vi, vj = np.nonzero(layout.v_exists)
    i = np.concatenate([hi, vi]).astype(np.int64)
    j = np.concatenate([hj, vj]).astype(np.int64)
    vertical = np.concatenate([np.zeros(hi.size, bool), np.ones(vi.size, bool)])
    a = layout.node_id(i, j)
    b = np.where(vertical, layout.node_id(i, j + 1), layout.node_id(i + 1, j))
    road_class = np.concatenate([layout.h_class[hi, hj], layout.v_class[vi, vj]])
    ring = np.concatenate([layout.h_ring[hi, hj], layout.v_ring[vi, vj]])
    oneway = np.concatenate([layout.h_oneway[hj], layout.v_oneway[vi]])
    oneway = np.where(road_class == LOCAL, oneway, 0)
    return Segments(a, b, road_class, ring, vertical, i, j, oneway)


def block_quads(layout: Layout) -> tuple[FloatArray, FloatArray]:
    """Return every block's buildable quadrilateral and the half-widths of its sides.

    Corners are counter-clockwise and start so that side 0 (corner 0 to 1)
    is a long side; each side is moved inwards by the half-width of its road
    (0 where the road is missing, so merged blocks touch).

    Returns
    -------
    corners : ndarray, shape (nx * ny, 4, 2)
        Block ``(i, j)`` is row ``i * ny + j``.
    half_widths : ndarray, shape (nx * ny, 4)
        Road half-width of each side, m (0 = no road on that side).
    """
    n = layout.nodes
    corners = np.stack([n[:-1, :-1], n[1:, :-1], n[1:, 1:], n[:-1, 1:]], axis=2)
    hw_h = np.where(layout.h_exists, HALF_WIDTH_M[layout.h_class], 0.0)
    hw_v = np.where(layout.v_exists, HALF_WIDTH_M[layout.v_class], 0.0)
    sides = np.stack([hw_h[:, :-1], hw_v[1:, :], hw_h[:, 1:], hw_v[:-1, :]], axis=2)
    corners = corners.reshape(-1, 4, 2)
    sides = sides.reshape(-1, 4)
    order = (np.arange(4)[None, :] + layout.roll.reshape(-1, 1)) % 4
    corners = np.take_along_axis(corners, order[:, :, None], axis=1)
    sides = np.take_along_axis(sides, order, axis=1)
    return inset_quads(corners, sides), sides


def inset_quads(corners: FloatArray, offsets: FloatArray) -> FloatArray:
    """Move each side of counter-clockwise quadrilaterals inwards by its offset.

    Examples
    --------
    >>> import numpy as np
    >>> sq = np.array([[[0, 0], [10, 0], [10, 10], [0, 10]]], float)
    >>> inset_quads(sq, np.array([[1.0, 2.0, 1.0, 2.0]]))[0].tolist()
    [[2.0, 1.0], [8.0, 1.0], [8.0, 9.0], [2.0, 9.0]]
    """
    direction = np.roll(corners, -1, axis=1) - corners
    direction /= np.linalg.norm(direction, axis=2, keepdims=True)
    normal = np.stack([-direction[..., 1], direction[..., 0]], axis=2)
    base = corners + offsets[..., None] * normal
    prev_base = np.roll(base, 1, axis=1)
    prev_dir = np.roll(direction, 1, axis=1)
    delta = base - prev_base
    t = _cross(delta, direction) / _cross(prev_dir, direction)
    return prev_base + t[..., None] * prev_dir


def _cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """2-D cross product of vectors in the last axis."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
