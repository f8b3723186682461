"""Assemble the synthetic city: every layer, in delivery field names, in the twin CRS.

Examples
--------
>>> city = generate_city(500, seed=1)
>>> len(city["buildings"]), city["roads"].crs.to_epsg()
(500, 4544)
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd

from twin.errors import UsageError
from twin.sample.attributes import BuildingAttributes, attributes_for
from twin.sample.boundaries import DistrictPlan, districts_frame, grids_frame, plan_districts
from twin.sample.buildings import CapacityError, Footprints, footprints_for, strips_for
from twin.sample.draws import numbered, stream
from twin.sample.facilities import facilities_frame
from twin.sample.layout import TWIN_CRS, Layout, block_quads, layout_for, segments_of
from twin.sample.parcels import LAND_USES, LU, Parcels, parcels_for
from twin.sample.pipes import pipe_networks
from twin.sample.roads import roads_frame
from twin.sample.sensors import cameras_frame, sensors_frame
from twin.sample.water import water_frame

__all__ = ["LAYERS", "MIN_BUILDINGS", "generate_city"]

log = logging.getLogger(__name__)

#: The layers of the city, in the order they are returned and delivered.
LAYERS = (
    "parcels",
    "buildings",
    "roads",
    "water_pipes",
    "gas_pipes",
    "valves",
    "sources",
    "sensors",
    "cameras",
    "districts",
    "grids",
    "facilities",
    "water",
)
MIN_BUILDINGS = 100
_ATTEMPTS = 6


def generate_city(n_buildings: int = 3000, *, seed: int = 42) -> dict[str, gpd.GeoDataFrame]:
    """Generate a synthetic Chengdu-like city with ``n_buildings`` buildings.

    The same seed gives the same city, bit for bit. Counts scale with
    ``n_buildings``: about one parcel per 4–5 buildings, one road segment and
    one water main per 9–10, one sensor per 10.

    Parameters
    ----------
    n_buildings : int, default 3000
        Exact number of buildings (at least 100).
    seed : int, default 42
        Random seed (non-negative).

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        The layers named in :data:`LAYERS`, in EPSG:4544 with the field names
        of the delivery files (Chinese for the municipal layers, English for
        the utility networks).

    Raises
    ------
    UsageError
        When ``n_buildings`` or ``seed`` is out of range.

    Examples
    --------
    >>> city = generate_city(300, seed=7)
    >>> sorted(city) == sorted(LAYERS)
    True
    """
    if int(n_buildings) < MIN_BUILDINGS:
        raise UsageError(f"n_buildings must be at least {MIN_BUILDINGS}, not {n_buildings}")
    if int(seed) < 0:
        raise UsageError(f"seed must be a non-negative integer, not {seed}")
    n, seed = int(n_buildings), int(seed)
    layout, plan, parcels, fp = _place_everything(n, seed)
    attrs = attributes_for(fp, parcels, stream(seed, "attributes"))
    seg = segments_of(layout)
    roads, lines = roads_frame(layout, seg, stream(seed, "roads"))
    networks = pipe_networks(layout, seg, stream(seed, "pipes"))
    buildings = _buildings_frame(fp, attrs)
    pipe_names = {
        key: np.concatenate([roads["道路名称"].to_numpy(dtype=str), ["输水干管"] * 3])
        for key in ("water_pipes", "gas_pipes")
    }
    river = _river_quads(layout)
    river_name = str(parcels.name[parcels.land_use == LU["E1"]][0]).removesuffix("河")
    sensors = sensors_frame(
        layout, river, buildings, networks, pipe_names, river_name, lines, stream(seed, "sensors")
    )
    cameras = cameras_frame(layout, seg, lines, stream(seed, "cameras"))
    residents = np.bincount(
        plan.block_district.ravel()[fp.block], attrs.residents, minlength=len(plan.boxes)
    )
    parcels_frame = _parcels_frame(parcels)
    city = {
        "parcels": parcels_frame,
        "buildings": buildings,
        "roads": roads,
        **networks,
        "sensors": sensors,
        "cameras": cameras,
        "districts": districts_frame(layout, plan, np.round(residents)),
        "grids": grids_frame(layout, plan, stream(seed, "grids")),
        "facilities": facilities_frame(buildings, stream(seed, "facilities")),
        "water": water_frame(parcels_frame),
    }
    return {name: city[name] for name in LAYERS}


def _place_everything(n: int, seed: int) -> tuple[Layout, DistrictPlan, Parcels, Footprints]:
    """Lay out streets, districts, parcels and footprints, with more blocks if needed."""
    scale = 1.0
    for _attempt in range(_ATTEMPTS):
        layout = layout_for(n, stream(seed, "layout"), scale=scale)
        plan = plan_districts(layout, stream(seed, "districts"))
        parcels = parcels_for(layout, plan, stream(seed, "parcels"))
        strips = strips_for(parcels)
        try:
            fp = footprints_for(layout, parcels, strips, n, stream(seed, "buildings"))
        except CapacityError as exc:
            log.debug("%s; retrying with more blocks", exc)
            scale *= 1.15 * n / max(int(strips.capacity.sum()), 1)
            continue
        return layout, plan, parcels, fp
    raise RuntimeError(f"could not place {n} buildings")  # pragma: no cover


def _river_quads(layout: Layout) -> np.ndarray:
    """Corners of the river blocks (row ``river_row``)."""
    quads, _ = block_quads(layout)
    blocks = np.arange(layout.nx) * layout.ny + layout.river_row
    return quads[blocks]


def _parcels_frame(parcels: Parcels) -> gpd.GeoDataFrame:
    """Parcels in delivery fields (names fit a Shapefile's 10 bytes in GBK)."""
    return gpd.GeoDataFrame(
        {
            "地块编码": parcels.code,
            "地块名称": parcels.name,
            "用地性质": np.array(LAND_USES)[parcels.land_use],
            "容积率上限": np.round(parcels.far_limit, 2),
            "限高": parcels.height_limit_m,
            "密度上限": np.round(parcels.coverage_limit, 2),
        },
        geometry=parcels.polygons(),
        crs=TWIN_CRS,
    )


def _buildings_frame(fp: Footprints, attrs: BuildingAttributes) -> gpd.GeoDataFrame:
    """Buildings in delivery fields; 层数 is a nullable integer."""
    n = len(fp)
    ids = numbered("JZ", n, width=7)
    return gpd.GeoDataFrame(
        {
            "建筑编码": ids,
            "层数": pd.Series(attrs.floors).astype("Int64").to_numpy(),
            "建筑高度": attrs.height_m,
            "建筑名称": attrs.name,
            "用途": attrs.use,
        },
        geometry=fp.geometry,
        crs=TWIN_CRS,
    )
