"""Road centre lines (道路中心线) of the synthetic city.

One line per segment between two intersections, so the network is
connected through shared end points. Names follow the usual Chinese
pattern: a two-syllable base per grid line, a direction for the half of the
city the segment is in, and numbered sections on arterials (科华北路二段);
ring expressways are 一环路东一段 and so on; lanes are 锦华街. A few lanes are
one-way (单行 = 1: only in the digitised direction, which is the direction
of travel); bridges cross the river on the arterial lines, at 层级 (level) 1
above the river; they join the bank roads at their ends.

Examples
--------
>>> import numpy as np
>>> from twin.sample.layout import layout_for, segments_of
>>> lay = layout_for(3000, np.random.default_rng(0))
>>> roads, names = roads_frame(lay, segments_of(lay), np.random.default_rng(1))
>>> sorted(roads["道路等级"].unique().tolist())
['主干路', '快速路', '支路', '次干路']
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely

from twin.sample.draws import numbered
from twin.sample.layout import (
    ARTERIAL,
    COLLECTOR,
    EXPRESS,
    RING_FIRST,
    RING_STEP,
    ROAD_CLASSES,
    TWIN_CRS,
    Layout,
    Segments,
)
from twin.sample.names import two_syllable_names, zh_numbers

__all__ = ["LineNames", "road_names", "roads_frame"]

StrArray = npt.NDArray[np.str_]
IntArray = npt.NDArray[np.int64]

LANES = np.array([8, 6, 4, 2], dtype=np.int32)
SPEED_KMH = np.array([80, 60, 40, 30], dtype=np.int32)
SECTION_BLOCKS = 6  # an arterial section (段) spans this many blocks


@dataclass(frozen=True)
class LineNames:
    """Base names of the grid lines (for road, camera and sensor names)."""

    vertical: StrArray
    horizontal: StrArray


def roads_frame(
    layout: Layout, seg: Segments, rng: np.random.Generator
) -> tuple[gpd.GeoDataFrame, LineNames]:
    """Return the road layer in delivery field names, and the grid line names.

    Fields: 道路编码 (id), 道路名称, 道路等级, 单行 (1 = one-way in the digitised
    direction), 桥梁 (1 = bridge), 层级 (vertical level: 1 on bridges), 车道数
    (lanes), 设计时速 (km/h).

    Parameters
    ----------
    layout : Layout
        The street grid.
    seg : Segments
        Its segments.
    rng : numpy.random.Generator
        The random stream.
    """
    lines = _line_names(layout, rng)
    nodes = layout.nodes.reshape(-1, 2)
    start = np.where(seg.oneway[:, None] < 0, nodes[seg.b], nodes[seg.a])
    end = np.where(seg.oneway[:, None] < 0, nodes[seg.a], nodes[seg.b])
    geometry = shapely.linestrings(np.stack([start, end], axis=1))
    bridge = seg.vertical & (seg.j == layout.river_row)
    ids = numbered("DL", len(seg))
    frame = gpd.GeoDataFrame(
        {
            "道路编码": ids,
            "道路名称": road_names(layout, seg, lines),
            "道路等级": np.array(ROAD_CLASSES)[seg.road_class],
            "单行": (seg.oneway != 0).astype(np.int32),
            "桥梁": bridge.astype(np.int32),
            "层级": bridge.astype(np.int32),
            "车道数": np.where(seg.oneway != 0, 1, LANES[seg.road_class]).astype(np.int32),
            "设计时速": SPEED_KMH[seg.road_class],
        },
        geometry=geometry,
        crs=TWIN_CRS,
    )
    return frame, lines


def _line_names(layout: Layout, rng: np.random.Generator) -> LineNames:
    """Distinct base names for every grid line; the river banks are 滨河."""
    names = two_syllable_names(rng, layout.nx + layout.ny + 2).astype("U8")
    vertical, horizontal = names[: layout.nx + 1], names[layout.nx + 1 :]
    horizontal[[layout.river_row, layout.river_row + 1]] = "滨河"
    return LineNames(vertical, horizontal)


def road_names(layout: Layout, seg: Segments, lines: LineNames) -> StrArray:
    """道路名称 of every segment (see the module docstring for the pattern).

    Examples
    --------
    >>> import numpy as np
    >>> from twin.sample.layout import layout_for, segments_of
    >>> lay = layout_for(3000, np.random.default_rng(0))
    >>> seg = segments_of(lay)
    >>> names = road_names(lay, seg, _line_names(lay, np.random.default_rng(1)))
    >>> bool(np.char.endswith(names[seg.road_class == 3], "街").all())
    True
    """
    v = seg.vertical
    # position along the line relative to the centre, in blocks
    pos = np.where(v, seg.j - layout.cj, seg.i - layout.ci)
    ahead = pos >= 0
    section = np.where(ahead, pos, -pos - 1) // SECTION_BLOCKS + 1
    base = np.where(v, lines.vertical[seg.i], lines.horizontal[seg.j])
    direction = np.where(v, np.where(ahead, "北", "南"), np.where(ahead, "东", "西"))
    bank = ~v & ((seg.j == layout.river_row) | (seg.j == layout.river_row + 1))
    direction = np.where(bank, np.where(seg.j == layout.river_row, "南", "北"), direction)
    road = np.char.add(np.char.add(base, direction), "路")
    sections = np.char.add(np.char.add(road, zh_numbers(section)), "段")
    names = np.where(
        seg.road_class == ARTERIAL,
        sections,
        np.where(seg.road_class == COLLECTOR, road, np.char.add(base, "街")),
    ).astype("U16")
    ring = seg.road_class == EXPRESS
    names[ring] = _ring_names(layout, seg, ring)
    return names


def _ring_names(layout: Layout, seg: Segments, ring: npt.NDArray[np.bool_]) -> StrArray:
    """一环路东一段…: ring number, side of the ring, section along the side."""
    number = seg.ring[ring]
    radius = RING_FIRST + (number - 1) * RING_STEP
    v = seg.vertical[ring]
    i, j = seg.i[ring], seg.j[ring]
    side = np.where(v, np.where(i > layout.ci, "东", "西"), np.where(j > layout.cj, "北", "南"))
    along = np.where(v, j - (layout.cj - radius), i - (layout.ci - radius))
    part = along // SECTION_BLOCKS + 1
    head = np.char.add(zh_numbers(number), "环路")
    return np.char.add(np.char.add(np.char.add(head, side), zh_numbers(part)), "段")
