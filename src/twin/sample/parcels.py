"""Parcels (地块) of the synthetic city and their planning controls.

Each block is split into two rows of one to three parcels, so every parcel
fronts a street with one long side (and corner parcels with a short side
too). Land use follows GB 50137-2011 codes in realistic shares: business
uses gather in the centre, industry on the edge, blocks mostly share a theme.
River blocks hold a water parcel (E1) between two strips of park (G1).

Examples
--------
>>> LAND_USES[:3], LAND_USE_ZH["R2"]
(('R1', 'R2', 'R3'), '二类居住用地')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from twin.sample.boundaries import DistrictPlan
from twin.sample.layout import Layout, block_quads
from twin.sample.names import two_syllable_names

__all__ = ["LAND_USES", "LAND_USE_ZH", "Parcels", "bilinear", "parcels_for"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: GB 50137-2011 land-use codes used by the sample (用地性质).
LAND_USES = ("R1", "R2", "R3", "B1", "B2", "A1", "A2", "A3", "A5", "M1", "G1", "S4", "U1", "E1")
LAND_USE_ZH = {
    "R1": "一类居住用地",
    "R2": "二类居住用地",
    "R3": "三类居住用地",
    "B1": "商业用地",
    "B2": "商务用地",
    "A1": "行政办公用地",
    "A2": "文化设施用地",
    "A3": "教育科研用地",
    "A5": "医疗卫生用地",
    "M1": "一类工业用地",
    "G1": "公园绿地",
    "S4": "交通场站用地",
    "U1": "供应设施用地",
    "E1": "水域",
}
LU = {code: k for k, code in enumerate(LAND_USES)}
# Share of parcels per land use, and how it changes from the centre (-) to the edge (+).
_SHARE = np.array([3, 32, 5, 12, 5, 3, 2, 5, 2, 8, 11, 4, 2, 0], dtype=float)
_RADIAL = np.array([0.5, 0.0, -0.3, -1.2, -2.0, -0.3, -0.5, 0.0, 0.0, 2.5, 0.0, 0.3, 0.8, 0.0])
# Planning controls: FAR limit, height limit (m) and coverage limit ranges.
_FAR = np.array(
    [
        [0.8, 1.2],
        [2.0, 3.5],
        [1.5, 2.5],
        [3.0, 6.0],
        [4.0, 8.0],
        [1.5, 3.0],
        [1.0, 2.0],
        [0.8, 1.5],
        [1.5, 3.0],
        [1.0, 2.0],
        [0.0, 0.1],
        [0.3, 1.0],
        [0.5, 1.5],
        [0.0, 0.0],
    ]
)
_HEIGHT = np.array(
    [
        [12, 18],
        [60, 100],
        [24, 36],
        [80, 150],
        [100, 200],
        [45, 60],
        [24, 30],
        [24, 24],
        [50, 60],
        [24, 30],
        [8, 10],
        [12, 15],
        [15, 24],
        [0, 0],
    ],
    dtype=float,
)
_COVER = np.array(
    [
        [0.35, 0.35],
        [0.25, 0.30],
        [0.35, 0.40],
        [0.40, 0.55],
        [0.40, 0.50],
        [0.30, 0.40],
        [0.30, 0.40],
        [0.25, 0.35],
        [0.30, 0.40],
        [0.40, 0.60],
        [0.02, 0.05],
        [0.10, 0.20],
        [0.30, 0.40],
        [0.0, 0.0],
    ]
)
_SUFFIX = (
    ("山庄", "别墅"),
    ("苑", "花园", "小区", "家园"),
    ("新村", "院"),
    ("广场", "商城", "中心"),
    ("大厦", "金融中心"),
    ("办公区",),
    ("文化中心", "图书馆", "博物馆"),
    ("小学", "中学", "学院"),
    ("医院", "卫生服务中心"),
    ("工业园", "厂"),
    ("公园", "绿地"),
    ("停车场", "公交站场"),
    ("变电站", "泵站"),
    ("河",),
)
PARCEL_FRONTAGE_M = 85.0  # a long block side is cut into parcels about this wide


@dataclass
class Parcels:
    """Parcel geometry and attributes (arrays aligned by parcel).

    Attributes
    ----------
    corners : ndarray, shape (n, 4, 2)
        Counter-clockwise corners; corners 0 to 1 is the street front.
    block : ndarray of int
        Block number (``i * ny + j``).
    street_hw : ndarray, shape (n, 4)
        Half-width (m) of the road each side (side k: corner k to k + 1) faces;
        0 where the side faces no street.
    land_use : ndarray of int
        Index into :data:`LAND_USES`.
    far_limit, height_limit_m, coverage_limit : ndarray of float
        Planning controls (容积率上限, 限高, 建筑密度上限).
    district : ndarray of int
        District number.
    code, name : ndarray of str
        地块编码 and 地块名称.
    """

    corners: FloatArray
    block: IntArray
    street_hw: FloatArray
    land_use: IntArray
    far_limit: FloatArray
    height_limit_m: FloatArray
    coverage_limit: FloatArray
    district: IntArray
    code: npt.NDArray[np.str_]
    name: npt.NDArray[np.str_]

    def __len__(self) -> int:
        """Number of parcels."""
        return int(self.block.size)

    def polygons(self) -> npt.NDArray[np.object_]:
        """Return the parcel polygons (shapely array)."""
        return shapely.polygons(np.concatenate([self.corners, self.corners[:, :1]], axis=1))


def bilinear(quads: FloatArray, s: FloatArray, t: FloatArray) -> FloatArray:
    """Return the points at parameters ``(s, t)`` of quadrilaterals (bilinear map).

    Examples
    --------
    >>> import numpy as np
    >>> q = np.array([[[0, 0], [4, 0], [4, 2], [0, 2]]], float)
    >>> bilinear(q, np.array([0.5]), np.array([0.5])).tolist()
    [[2.0, 1.0]]
    """
    s = s[:, None]
    t = t[:, None]
    a, b, c, d = quads[:, 0], quads[:, 1], quads[:, 2], quads[:, 3]
    return (1 - s) * (1 - t) * a + s * (1 - t) * b + s * t * c + (1 - s) * t * d


def parcels_for(layout: Layout, plan: DistrictPlan, rng: np.random.Generator) -> Parcels:
    """Subdivide every block into parcels and give them land uses and controls.

    Parameters
    ----------
    layout : Layout
        The street grid.
    plan : DistrictPlan
        The districts (for the parcel codes).
    rng : numpy.random.Generator
        The random stream.

    Returns
    -------
    Parcels
    """
    quads, sides = block_quads(layout)
    river_grid = np.zeros((layout.nx, layout.ny), dtype=bool)
    river_grid[:, layout.river_row] = True
    river = river_grid.ravel()
    corners, block, row, col, ncol = _split_blocks(quads, ~river, rng)
    street_hw = _street_half_widths(sides[block], row, col, ncol)
    land_use = _land_uses(layout, quads, block, ~river, rng)
    r_corners, r_block, r_use = _river_parcels(quads, np.flatnonzero(river))
    corners = np.concatenate([corners, r_corners])
    block = np.concatenate([block, r_block])
    land_use = np.concatenate([land_use, r_use])
    river_hw = np.zeros((r_block.size, 4))
    river_hw[: r_block.size // 3, 0] = sides[r_block[: r_block.size // 3], 0]
    river_hw[-(r_block.size // 3) :, 0] = sides[r_block[-(r_block.size // 3) :], 2]
    street_hw = np.concatenate([street_hw, river_hw])
    far, height, cover = _controls(land_use, rng)
    district = plan.block_district.ravel()[block]
    code = _codes(district, plan.abbreviations)
    name = _names(land_use, rng).astype("U32")
    river_name = str(two_syllable_names(rng, 1)[0])
    on_river = np.arange(land_use.size) >= land_use.size - r_block.size
    is_water = land_use[on_river] == LU["E1"]
    name[on_river] = np.where(is_water, f"{river_name}河", f"{river_name}滨河绿地")
    return Parcels(corners, block, street_hw, land_use, far, height, cover, district, code, name)


def _split_blocks(
    quads: FloatArray, keep: BoolArray, rng: np.random.Generator
) -> tuple[FloatArray, IntArray, IntArray, IntArray, IntArray]:
    """Two rows of ``k`` parcels per block; returns corners, block, row, column, k."""
    blocks = np.flatnonzero(keep)
    long_side = np.linalg.norm(quads[blocks, 1] - quads[blocks, 0], axis=1)
    k = np.clip(np.round(long_side / PARCEL_FRONTAGE_M), 1, 3).astype(np.int64)
    m = np.arange(4)[None, :]
    cuts = m / k[:, None] + rng.uniform(-0.07, 0.07, (blocks.size, 4)) / k[:, None]
    cuts[:, 0] = 0.0
    cuts = np.where(m >= k[:, None], 1.0, cuts)
    split = rng.uniform(0.42, 0.58, blocks.size)
    per_block = 2 * k
    owner = np.repeat(np.arange(blocks.size), per_block)
    local = np.arange(owner.size) - np.repeat(np.cumsum(per_block) - per_block, per_block)
    row = local // k[owner]
    col = local % k[owner]
    s0 = cuts[owner, col]
    s1 = cuts[owner, col + 1]
    ts = split[owner]
    q = quads[blocks[owner]]
    zero, one = np.zeros(owner.size), np.ones(owner.size)
    front_t = np.where(row == 0, zero, one)
    first_s = np.where(row == 0, s0, s1)
    second_s = np.where(row == 0, s1, s0)
    corners = np.stack(
        [
            bilinear(q, first_s, front_t),
            bilinear(q, second_s, front_t),
            bilinear(q, second_s, ts),
            bilinear(q, first_s, ts),
        ],
        axis=1,
    )
    return corners, blocks[owner], row, col, k[owner]


def _street_half_widths(
    block_sides: FloatArray, row: IntArray, col: IntArray, ncol: IntArray
) -> FloatArray:
    """Road half-width faced by each parcel side, from its block's sides.

    Row 0 parcels front block side 0 and row 1 parcels side 2; the first and
    last parcel of a row also face the block's short sides 3 and 1.
    """
    first, last = col == 0, col == ncol - 1
    rows = np.arange(row.size)
    hw = np.zeros((row.size, 4))
    hw[:, 0] = block_sides[rows, np.where(row == 0, 0, 2)]
    e1_side = np.where(row == 0, np.where(last, 1, -1), np.where(first, 3, -1))
    e3_side = np.where(row == 0, np.where(first, 3, -1), np.where(last, 1, -1))
    hw[:, 1] = np.where(e1_side >= 0, block_sides[rows, np.maximum(e1_side, 0)], 0.0)
    hw[:, 3] = np.where(e3_side >= 0, block_sides[rows, np.maximum(e3_side, 0)], 0.0)
    return hw


def _river_parcels(quads: FloatArray, blocks: IntArray) -> tuple[FloatArray, IntArray, IntArray]:
    """South bank park, water, north bank park for every river block."""
    n = blocks.size
    q = quads[blocks]
    zero, one = np.zeros(n), np.ones(n)
    lo, hi = np.full(n, 0.22), np.full(n, 0.78)
    south = [
        bilinear(q, zero, zero),
        bilinear(q, one, zero),
        bilinear(q, one, lo),
        bilinear(q, zero, lo),
    ]
    water = [
        bilinear(q, zero, lo),
        bilinear(q, one, lo),
        bilinear(q, one, hi),
        bilinear(q, zero, hi),
    ]
    north = [
        bilinear(q, one, one),
        bilinear(q, zero, one),
        bilinear(q, zero, hi),
        bilinear(q, one, hi),
    ]
    corners = np.concatenate([np.stack(part, axis=1) for part in (south, water, north)])
    block = np.tile(blocks, 3)
    use = np.repeat(np.array([LU["G1"], LU["E1"], LU["G1"]]), n)
    return corners, block, use


def _land_uses(
    layout: Layout, quads: FloatArray, block: IntArray, keep: BoolArray, rng: np.random.Generator
) -> IntArray:
    """Land use per parcel: a block theme, followed by 60 % of its parcels."""
    centre = layout.nodes[layout.ci, layout.cj]
    middle = quads.mean(axis=1)
    r = np.linalg.norm(middle - centre, axis=1)
    r = r / r[keep].max()
    weights = _SHARE[None, :] * np.exp(_RADIAL[None, :] * (r[:, None] - 0.5) * 1.5)
    theme = _categorical(weights, rng)
    own = _categorical(weights[block], rng)
    return np.where(rng.random(block.size) < 0.6, theme[block], own)


def _categorical(weights: FloatArray, rng: np.random.Generator) -> IntArray:
    """One draw per row of a (rows, categories) weight matrix."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(weights.shape[0]) * cum[:, -1]
    return (cum < u[:, None]).sum(axis=1).astype(np.int64)


def _controls(
    land_use: IntArray, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """FAR limit (0.1 steps), height limit (whole m) and coverage limit (0.05 steps)."""
    n = land_use.size
    far = np.round(rng.uniform(_FAR[land_use, 0], _FAR[land_use, 1]) * 10) / 10
    height = np.round(rng.uniform(_HEIGHT[land_use, 0], _HEIGHT[land_use, 1] + 1e-9))
    cover = np.round(rng.uniform(_COVER[land_use, 0], _COVER[land_use, 1], n) * 20) / 20
    cover = np.where(land_use == LU["G1"], 0.05, cover)
    return far, height, cover


def _codes(district: IntArray, abbreviations: list[str]) -> npt.NDArray[np.str_]:
    """地块编码 ``CD-<district>-<number>``, numbered within each district."""
    order = np.lexsort((np.arange(district.size), district))
    first = np.searchsorted(district[order], np.arange(len(abbreviations)))
    rank = np.empty(district.size, dtype=np.int64)
    rank[order] = np.arange(district.size) - first[district[order]] + 1
    width = max(4, len(str(int(rank.max()))))
    prefix = np.array([f"CD-{a}-" for a in abbreviations])[district]
    return np.char.add(prefix, np.char.zfill(rank.astype(str), width))


def _names(land_use: IntArray, rng: np.random.Generator) -> npt.NDArray[np.str_]:
    """地块名称: a generated name and a suffix fitting the land use (锦华苑, 科源小学…)."""
    table = np.array([[s[k % len(s)] for k in range(4)] for s in _SUFFIX])
    suffix = table[land_use, rng.integers(0, 4, land_use.size)]
    base = two_syllable_names(rng, land_use.size, unique=False)
    return np.char.add(base, suffix)
