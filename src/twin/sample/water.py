"""Water bodies (水系) of the sample district: the river as one polygon.

The river is the row of parcels whose land use is ``E1`` (水域); streets
break that row into parcels, but the water runs on under the bridges, so the
parcels are merged and the gaps between them (street widths, under
:data:`BRIDGE_GAP_M`) are closed; past the end parcels it runs on under the
ring roads to :data:`EDGE_M` beyond the city. The terrain's channel
(:mod:`twin.sample.terrain`) lies in the same parcels, so the water polygon
sits in the valley floor that issue 16's flood model fills first.

Examples
--------
>>> from twin.sample import generate_city
>>> water = generate_city(300, seed=7)["water"]
>>> list(water.columns), water.geom_type.tolist(), water["水体类型"].tolist()
(['水体编码', '水体名称', '水体类型', 'geometry'], ['Polygon'], ['河流'])
"""

from __future__ import annotations

import geopandas as gpd
import shapely

from twin.sample.layout import TWIN_CRS

__all__ = ["BRIDGE_GAP_M", "EDGE_M", "water_frame"]

#: Half the widest street gap closed between river parcels (metres).
BRIDGE_GAP_M = 25.0
#: How far the river runs on past the city's outermost parcels (the terrain's margin).
EDGE_M = 60.0


def water_frame(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The river polygon(s) in delivery fields (``水体编码``, ``水体名称``, ``水体类型``).

    Parameters
    ----------
    parcels : GeoDataFrame
        The sample's parcels in delivery fields (``用地性质``, ``地块名称``).

    Returns
    -------
    GeoDataFrame
        One row per separate stretch of water, in EPSG:4544, largest first.
    """
    river = parcels[parcels["用地性质"] == "E1"]
    columns = ["水体编码", "水体名称", "水体类型"]
    if river.empty:
        return gpd.GeoDataFrame(columns=columns, geometry=[], crs=TWIN_CRS)
    merged = shapely.union_all([*river.geometry.to_numpy(), *_outflows(parcels, river)])
    closed = merged.buffer(BRIDGE_GAP_M, join_style="mitre").buffer(
        -BRIDGE_GAP_M, join_style="mitre"
    )
    parts = sorted(shapely.get_parts(shapely.normalize(closed)), key=lambda g: -g.area)
    name = str(river["地块名称"].iloc[0])
    return gpd.GeoDataFrame(
        {
            "水体编码": [f"SX{i + 1:04d}" for i in range(len(parts))],
            "水体名称": [name] * len(parts),
            "水体类型": ["河流"] * len(parts),
        },
        geometry=[shapely.set_precision(p, 0.01) for p in parts],
        crs=TWIN_CRS,
    )


def _outflows(parcels: gpd.GeoDataFrame, river: gpd.GeoDataFrame) -> list[shapely.Polygon]:
    """Where the river enters and leaves: from its end parcels out past the ring roads."""
    minx, _, maxx, _ = parcels.total_bounds
    bounds = river.geometry.bounds
    west, east = bounds.loc[bounds["minx"].idxmin()], bounds.loc[bounds["maxx"].idxmax()]
    return [
        shapely.box(minx - EDGE_M, west["miny"], west["minx"] + 1.0, west["maxy"]),
        shapely.box(east["maxx"] - 1.0, east["miny"], maxx + EDGE_M, east["maxy"]),
    ]
