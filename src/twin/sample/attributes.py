"""Building attributes (层数, 建筑高度, 建筑名称, 用途) and planning compliance.

Floors are drawn per land use, then held to each parcel's height limit and
floor-area-ratio limit, so almost every parcel complies. A few buildings are
then raised above their parcel's height limit and a few parcels get a FAR
limit below what stands on them (plans tightened after the fact), so that
compliance checks have something to find. Heights are floors times a storey
height (about 3 m for homes, 4 m for shops and offices, 5–6 m for sheds).
Floors are missing for 10 % of the buildings and heights for 40 %, never
both.

Examples
--------
>>> from twin.sample.attributes import USE_ZH
>>> USE_ZH[1]
'住宅'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from twin.sample.buildings import Footprints
from twin.sample.draws import exact_mask
from twin.sample.parcels import LU, Parcels

__all__ = ["USE_ZH", "BuildingAttributes", "attributes_for"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Per land use: floors range, storey height range (m).
_FLOORS = np.array(
    [
        [1, 3],
        [6, 33],
        [2, 7],
        [2, 30],
        [8, 45],
        [3, 12],
        [1, 4],
        [3, 5],
        [4, 15],
        [1, 2],
        [1, 1],
        [1, 1],
        [1, 2],
        [1, 1],
    ],
    dtype=float,
)
_STOREY = np.array(
    [
        [3.0, 3.3],
        [2.9, 3.1],
        [2.8, 3.1],
        [3.8, 4.5],
        [3.6, 4.2],
        [3.6, 4.0],
        [4.5, 6.0],
        [3.6, 3.9],
        [3.9, 4.2],
        [4.5, 6.0],
        [3.0, 3.0],
        [3.0, 3.0],
        [4.0, 5.0],
        [3.0, 3.0],
    ]
)
#: Building use (用途) per land use, in LAND_USES order.
USE_ZH = (
    "住宅",
    "住宅",
    "住宅",
    "商业",
    "商务办公",
    "行政办公",
    "文化",
    "教育",
    "医疗",
    "工业",
    "公园管理",
    "交通",
    "公用设施",
    "水务",
)
_NAME_SUFFIX = (
    "栋",
    "栋",
    "栋",
    "号楼",
    "座",
    "号楼",
    "馆",
    "号教学楼",
    "号住院楼",
    "号厂房",
    "号楼",
    "号楼",
    "号机房",
    "号楼",
)
HEIGHT_KNOWN_SHARE = 0.6
FLOORS_MISSING_SHARE = 0.1
NAMED_SHARE = 0.3
PERSONS_PER_M2 = 1 / 35  # residents per m² of residential floor area


@dataclass
class BuildingAttributes:
    """Attributes of every building, aligned with the footprints.

    Attributes
    ----------
    floors : ndarray of float
        Floors (NaN where the delivery lacks them).
    height_m : ndarray of float
        Height in m (NaN where the delivery lacks it).
    name : ndarray of object
        Name or None.
    use : ndarray of str
        用途.
    residents : ndarray of float
        Estimated residents (for district populations).
    over_height : ndarray of bool
        Buildings raised above their parcel's height limit on purpose.
    over_far_parcels : ndarray of int
        Parcels whose FAR limit was set below what stands on them.
    """

    floors: FloatArray
    height_m: FloatArray
    name: npt.NDArray[np.object_]
    use: npt.NDArray[np.str_]
    residents: FloatArray
    over_height: BoolArray
    over_far_parcels: IntArray


def attributes_for(
    fp: Footprints, parcels: Parcels, rng: np.random.Generator
) -> BuildingAttributes:
    """Return the attributes of every building and adjust parcel limits (in place).

    Parameters
    ----------
    fp : Footprints
        The footprints.
    parcels : Parcels
        The parcels; ``far_limit`` and ``coverage_limit`` are updated so that
        only the chosen parcels break them.
    rng : numpy.random.Generator
        The random stream.
    """
    n = len(fp)
    lu = fp.land_use
    on_parcel = fp.parcel >= 0
    area = shapely.area(fp.geometry)
    parcel_area = shapely.area(parcels.polygons())
    storey = rng.uniform(_STOREY[lu, 0], _STOREY[lu, 1])
    floors = np.round(_FLOORS[lu, 0] + (_FLOORS[lu, 1] - _FLOORS[lu, 0]) * rng.random(n) ** 1.3)
    limit = np.where(on_parcel, parcels.height_limit_m[np.maximum(fp.parcel, 0)], np.inf)
    floors = np.maximum(1.0, np.minimum(floors, np.floor(limit / storey)))
    floors = _hold_to_far(floors, area, fp.parcel, parcel_area, parcels.far_limit)
    n_over = max(3, round(0.002 * n))
    over_height = exact_mask(rng, n, n_over / n, among=on_parcel & ~fp.straddles)
    raise_to = limit[over_height] + rng.uniform(4.0, 20.0, over_height.sum())
    floors[over_height] = np.ceil(raise_to / storey[over_height])
    height = np.floor(floors * storey * 10) / 10
    far = _far(floors, area, fp.parcel, parcel_area)
    over_far = _over_far_parcels(far, fp, len(parcels), over_height, rng)
    forced = over_height | np.isin(fp.parcel, over_far)
    height_known = exact_mask(rng, n, HEIGHT_KNOWN_SHARE, force=forced)
    floors_missing = exact_mask(rng, n, FLOORS_MISSING_SHARE, among=height_known & ~forced)
    # an analyst without floors takes height / 3 m: hold that estimate to the limit too
    estimated = np.where(floors_missing, np.round(height / 3.0), floors)
    far = np.maximum(far, _far(estimated, area, fp.parcel, parcel_area))
    parcels.far_limit = np.maximum(parcels.far_limit, np.ceil(far * 10 - 1e-9) / 10)
    tighter = np.floor(far[over_far] * rng.uniform(0.6, 0.85, over_far.size) * 10) / 10
    parcels.far_limit[over_far] = np.maximum(0.1, tighter)
    cover = np.bincount(fp.parcel[on_parcel], area[on_parcel], minlength=len(parcels)) / parcel_area
    parcels.coverage_limit = np.maximum(parcels.coverage_limit, np.ceil(cover * 20 - 1e-9) / 20)
    return BuildingAttributes(
        floors=np.where(floors_missing, np.nan, floors),
        height_m=np.where(height_known, height, np.nan),
        name=_names(fp, parcels, rng),
        use=np.array(USE_ZH)[lu],
        residents=np.where(lu <= LU["R3"], area * floors * PERSONS_PER_M2, 0.0),
        over_height=over_height,
        over_far_parcels=over_far,
    )


def _far(
    floors: FloatArray, area: FloatArray, parcel: IntArray, parcel_area: FloatArray
) -> FloatArray:
    """Floor area ratio of every parcel."""
    on = parcel >= 0
    gfa = np.bincount(parcel[on], (area * floors)[on], minlength=parcel_area.size)
    return gfa / parcel_area


def _hold_to_far(
    floors: FloatArray,
    area: FloatArray,
    parcel: IntArray,
    parcel_area: FloatArray,
    far_limit: FloatArray,
) -> FloatArray:
    """Lower floors so each parcel stays at 95 % of its FAR limit (one floor at least)."""
    far = _far(floors, area, parcel, parcel_area)
    factor = np.minimum(1.0, 0.95 * far_limit / np.maximum(far, 1e-9))
    factor = np.where(parcel >= 0, factor[np.maximum(parcel, 0)], 1.0)
    return np.maximum(1.0, np.floor(floors * factor))


def _over_far_parcels(
    far: FloatArray,
    fp: Footprints,
    n_parcels: int,
    over_height: BoolArray,
    rng: np.random.Generator,
) -> IntArray:
    """Choose ~1 % of the built parcels (2 at least) to get a FAR limit below their FAR."""
    built = np.zeros(n_parcels, dtype=bool)
    built[fp.parcel[fp.parcel >= 0]] = True
    tainted = np.zeros(n_parcels, dtype=bool)
    tainted[fp.parcel[(fp.parcel >= 0) & (over_height | fp.straddles)]] = True
    pool = np.flatnonzero(built & ~tainted & (far >= 1.0))
    if pool.size < 2:
        pool = np.flatnonzero(built & ~tainted & (far >= 0.3))
    count = min(pool.size, max(2, round(0.01 * built.sum())))
    return np.sort(rng.choice(pool, size=count, replace=False))


def _names(fp: Footprints, parcels: Parcels, rng: np.random.Generator) -> npt.NDArray[np.object_]:
    """建筑名称 for ~30 % of the buildings: the parcel's name and a number (锦华苑3栋)."""
    n = len(fp)
    named = exact_mask(rng, n, NAMED_SHARE, among=fp.parcel >= 0)
    order = np.argsort(fp.parcel, kind="stable")
    start = np.searchsorted(fp.parcel[order], fp.parcel[order])
    number = np.empty(n, dtype=np.int64)
    number[order] = np.arange(n) - start + 1
    idx = np.flatnonzero(named)
    base = parcels.name[fp.parcel[idx]]
    suffix = np.array(_NAME_SUFFIX)[fp.land_use[idx]]
    names = np.char.add(np.char.add(base, number[idx].astype(str)), suffix)
    out = np.full(n, None, dtype=object)
    out[idx] = names.astype(object)
    return out
