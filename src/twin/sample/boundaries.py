"""Sub-districts (街道) and management grid cells (网格) of the synthetic city.

Districts are rectangles of blocks bounded by arterial roads (their borders
follow the road centre lines, as real 街道 borders do); the outer border is
pushed out to a margin around the city so that the districts tile everything
generated. Grid cells of about 500 m subdivide each district along street
lines, so every cell lies in exactly one district.

Examples
--------
>>> import numpy as np
>>> from twin.sample.layout import layout_for
>>> lay = layout_for(3000, np.random.default_rng(0))
>>> plan = plan_districts(lay, np.random.default_rng(1))
>>> 3 <= len(plan.boxes) <= 6
True
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely

from twin.sample.layout import ARTERIAL, TWIN_CRS, Layout
from twin.sample.names import FIRST, SECOND, abbreviation

__all__ = ["DistrictPlan", "districts_frame", "grids_frame", "plan_districts"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Box = tuple[int, int, int, int]  # i0, i1, j0, j1 (grid line indices)

MARGIN_M = 500.0  # the districts reach this far beyond the outer roads
CELL_M = 500.0  # nominal grid cell size
COUNTY_CODE = "510199"  # a county-level code that does not exist: the city is synthetic


@dataclass(frozen=True)
class DistrictPlan:
    """Which blocks form which district.

    Attributes
    ----------
    boxes : list of tuple
        ``(i0, i1, j0, j1)`` grid line indices bounding each district.
    names, codes, abbreviations : list of str
        街道名称 (…街道), 9-digit 街道代码, two-letter pinyin abbreviation.
    block_district : ndarray, shape (nx, ny)
        District number of every block.
    """

    boxes: list[Box]
    names: list[str]
    codes: list[str]
    abbreviations: list[str]
    block_district: IntArray


def plan_districts(layout: Layout, rng: np.random.Generator) -> DistrictPlan:
    """Split the grid into 3 to 6 districts along arterial roads.

    Parameters
    ----------
    layout : Layout
        The street grid.
    rng : numpy.random.Generator
        The random stream.

    Returns
    -------
    DistrictPlan
    """
    n_cols = 2 if layout.nx < 10 else int(rng.choice([2, 3]))
    col_cuts = _cuts(layout.v_class[:, 0], layout.nx, n_cols)
    boxes: list[Box] = []
    for i0, i1 in itertools.pairwise(col_cuts):
        n_rows = int(rng.choice([1, 2])) if n_cols == 3 else int(rng.choice([2, 3]))
        row_cuts = _cuts(layout.h_class[i0], layout.ny, n_rows)
        boxes += [(i0, i1, j0, j1) for j0, j1 in itertools.pairwise(row_cuts)]
    block_district = np.zeros((layout.nx, layout.ny), dtype=np.int64)
    for k, (i0, i1, j0, j1) in enumerate(boxes):
        block_district[i0:i1, j0:j1] = k
    names, abbrs = _district_names(rng, len(boxes))
    codes = [f"{COUNTY_CODE}{k + 1:03d}" for k in range(len(boxes))]
    return DistrictPlan(boxes, names, codes, abbrs, block_district)


def _cuts(line_class: IntArray, n: int, parts: int) -> list[int]:
    """Grid lines splitting ``0..n`` into ``parts``, preferring arterial lines."""
    arterial = np.flatnonzero(line_class[1:n] <= ARTERIAL) + 1
    candidates = arterial if arterial.size >= parts - 1 else np.arange(1, n)
    cuts = [0]
    for m in range(1, parts):
        target = n * m / parts
        free = candidates[candidates > cuts[-1]]
        if free.size == 0:
            break
        cuts.append(int(free[np.argmin(np.abs(free - target))]))
    if cuts[-1] >= n:
        cuts.pop()
    return [*cuts, n]


def _district_names(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    """``n`` generated 街道 names with distinct pinyin abbreviations."""
    names: list[str] = []
    abbrs: list[str] = []
    while len(names) < n:
        name = FIRST[rng.integers(len(FIRST))][0] + SECOND[rng.integers(len(SECOND))][0] + "街道"
        if abbreviation(name) not in abbrs:
            names.append(name)
            abbrs.append(abbreviation(name))
    return names, abbrs


def extended_nodes(layout: Layout) -> FloatArray:
    """Intersections with the outermost ones pushed to a rectangle around the city."""
    ext = layout.nodes.copy()
    lo = layout.nodes.reshape(-1, 2).min(axis=0) - MARGIN_M
    hi = layout.nodes.reshape(-1, 2).max(axis=0) + MARGIN_M
    ext[0, :, 0], ext[-1, :, 0] = lo[0], hi[0]
    ext[:, 0, 1], ext[:, -1, 1] = lo[1], hi[1]
    return ext


def box_polygon(ext: FloatArray, box: Box) -> shapely.Polygon:
    """Polygon of the grid-line box ``(i0, i1, j0, j1)`` following the street centre lines."""
    i0, i1, j0, j1 = box
    ring = np.concatenate(
        [
            ext[i0 : i1 + 1, j0],
            ext[i1, j0 + 1 : j1 + 1],
            ext[i1 - 1 : (i0 - 1 if i0 > 0 else None) : -1, j1],
            ext[i0, j1 - 1 : j0 : -1],
        ]
    )
    return shapely.Polygon(ring)


def districts_frame(
    layout: Layout, plan: DistrictPlan, population: npt.ArrayLike
) -> gpd.GeoDataFrame:
    """Return the districts layer (街道名称, 街道代码, 人口) in the twin CRS.

    Parameters
    ----------
    layout : Layout
        The street grid.
    plan : DistrictPlan
        The district split.
    population : array_like of int
        Residents per district.
    """
    ext = extended_nodes(layout)
    geoms = [box_polygon(ext, box) for box in plan.boxes]
    return gpd.GeoDataFrame(
        {
            "街道名称": plan.names,
            "街道代码": plan.codes,
            "人口": np.asarray(population, dtype=np.int64),
        },
        geometry=geoms,
        crs=TWIN_CRS,
    )


def grids_frame(layout: Layout, plan: DistrictPlan, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Return the grid cells (网格编码, 所属街道, 责任单位), about 500 m, nested in districts."""
    ext = extended_nodes(layout)
    x_lines = ext[:, layout.cj, 0]
    y_lines = ext[layout.ci, :, 1]
    codes: list[str] = []
    owners: list[str] = []
    units: list[str] = []
    geoms: list[shapely.Polygon] = []
    for k, (i0, i1, j0, j1) in enumerate(plan.boxes):
        cells = [
            (a, b, c, d) for a, b in _spans(x_lines, i0, i1) for c, d in _spans(y_lines, j0, j1)
        ]
        width = max(3, len(str(len(cells))))
        communities = rng.choice(len(FIRST) * len(SECOND), size=len(cells) // 4 + 1)
        for seq, cell in enumerate(cells, start=1):
            code = communities[(seq - 1) // 4]
            community = FIRST[code // len(SECOND)][0] + SECOND[code % len(SECOND)][0]
            codes.append(f"{plan.codes[k]}{seq:0{width}d}")
            owners.append(plan.codes[k])
            units.append(f"{plan.names[k]}{community}社区居委会")
            geoms.append(box_polygon(ext, cell))
    return gpd.GeoDataFrame(
        {"网格编码": codes, "所属街道": owners, "责任单位": units}, geometry=geoms, crs=TWIN_CRS
    )


def _spans(lines: FloatArray, lo: int, hi: int) -> list[tuple[int, int]]:
    """Split grid lines ``lo..hi`` into runs about :data:`CELL_M` long."""
    cuts = [lo]
    for i in range(lo + 1, hi):
        if lines[i] - lines[cuts[-1]] >= 0.9 * CELL_M:
            cuts.append(i)
    if len(cuts) > 1 and lines[hi] - lines[cuts[-1]] < 0.5 * CELL_M:
        cuts.pop()
    cuts.append(hi)
    return list(itertools.pairwise(cuts))
