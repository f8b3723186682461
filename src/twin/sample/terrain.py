"""Terrain of the sample district: a DEM and a DSM as small GeoTIFFs.

The ground is a river valley: the river parcels (land use ``E1``) hold a
channel about 2 m below its banks, the ground rises away from the river
(8 m over the first few hundred metres) and slopes gently downstream
(west), with a little smooth relief; far from the river lies a closed
hollow, low but not connected to the river, which a flood must not fill.
The DSM is the DEM with every building raised by its true height plus
roof noise; the true height is the declared ``建筑高度`` (or ``层数`` ×
3.2 m), except for a few buildings that gained storeys the register does
not know, so that measured heights and declared floors disagree where they
should.

Examples
--------
>>> from twin.sample import generate_city
>>> from twin.sample.terrain import terrain_for
>>> dem, dsm, truth = terrain_for(generate_city(200, seed=1), cell_size_m=5.0)
>>> dem.shape == dsm.shape, bool((dsm.values >= dem.values - 1).all())
(True, True)
"""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import rasterio.features
from affine import Affine
from scipy import ndimage

from twin.raster import Raster, write_raster
from twin.sample.layout import TWIN_CRS

__all__ = ["STOREY_M", "terrain_for", "write_terrain"]

STOREY_M = 3.2
BASE_M = 500.0
CHANNEL_M = 2.0
VALLEY_RISE_M = 8.0
VALLEY_WIDTH_M = 350.0
DOWNSTREAM_SLOPE = 0.001  # rises towards the east
EXTRA_STOREY_SHARE = 0.03
ROOF_NOISE_M = 0.25
MARGIN_M = 60.0
HOLLOW_M = 9.0  # a closed depression (an underpass, a sunken square) away from the river
HOLLOW_RADIUS_M = 120.0


def terrain_for(
    city: dict[str, gpd.GeoDataFrame], *, cell_size_m: float = 2.0, seed: int = 42
) -> tuple[Raster, Raster, pd.DataFrame]:
    """The DEM, the DSM and the true building heights used to raise them.

    Parameters
    ----------
    city : dict of GeoDataFrame
        From :func:`twin.sample.generate_city` (delivery field names, EPSG:4544).
    cell_size_m : float, default 2.0
        Cell size of both grids.
    seed : int, default 42
        Seed of the noise and of the buildings with unrecorded storeys.

    Returns
    -------
    dem, dsm : Raster
    truth : DataFrame
        Per building (delivery order): ``建筑编码``, ``true_height_m``, ``extra_storeys``.
    """
    rng = np.random.default_rng([seed, 16])
    parcels, buildings = city["parcels"], city["buildings"]
    minx, miny, maxx, maxy = parcels.total_bounds
    minx, miny = np.floor([minx - MARGIN_M, miny - MARGIN_M])
    cols = int(np.ceil((maxx + MARGIN_M - minx) / cell_size_m))
    rows = int(np.ceil((maxy + MARGIN_M - miny) / cell_size_m))
    transform = Affine(cell_size_m, 0, minx, 0, -cell_size_m, miny + rows * cell_size_m)
    dem = _ground(parcels, transform, rows, cols, rng)
    truth = _true_heights(buildings, rng)
    raised = rasterio.features.rasterize(
        zip(buildings.geometry, truth["true_height_m"], strict=True),
        out_shape=(rows, cols),
        transform=transform,
        fill=0.0,
        dtype="float64",
    )
    roofs = raised > 0
    dsm = dem + raised + np.where(roofs, rng.normal(0, ROOF_NOISE_M, dem.shape), 0.0)
    crs = pyproj.CRS.from_user_input(TWIN_CRS)
    return (
        Raster(np.round(dem, 2), transform, crs, "dem"),
        Raster(np.round(dsm, 2), transform, crs, "dsm"),
        truth,
    )


def _ground(
    parcels: gpd.GeoDataFrame,
    transform: Affine,
    rows: int,
    cols: int,
    rng: np.random.Generator,
) -> np.ndarray:
    cell = transform.a
    water = parcels[parcels["用地性质"] == "E1"]
    river = rasterio.features.rasterize(
        water.geometry, out_shape=(rows, cols), transform=transform, fill=0, dtype="uint8"
    ).astype(bool)
    distance = ndimage.distance_transform_edt(~river) * cell
    x = (np.arange(cols) + 0.5) * cell
    y = (np.arange(rows) + 0.5) * cell
    xx, yy = np.meshgrid(x, y)
    phase = rng.uniform(0, 2 * np.pi, 4)
    relief = 0.4 * np.sin(xx / 310 + phase[0]) * np.cos(yy / 270 + phase[1]) + 0.25 * np.sin(
        (xx + yy) / 190 + phase[2]
    )
    far = np.unravel_index(np.argmax(distance), distance.shape)  # a hollow far from the river
    hollow = np.exp(-((xx - xx[far]) ** 2 + (yy - yy[far]) ** 2) / HOLLOW_RADIUS_M**2)
    ground = (
        BASE_M
        + DOWNSTREAM_SLOPE * xx
        + VALLEY_RISE_M * (1 - np.exp(-distance / VALLEY_WIDTH_M))
        + relief * np.minimum(distance / 50.0, 1.0)
        - HOLLOW_M * hollow
    )
    return np.asarray(np.where(river, ground - CHANNEL_M, ground))


def _true_heights(buildings: gpd.GeoDataFrame, rng: np.random.Generator) -> pd.DataFrame:
    floors = pd.to_numeric(buildings["层数"], errors="coerce").to_numpy(dtype=float)
    declared = pd.to_numeric(buildings["建筑高度"], errors="coerce").to_numpy(dtype=float)
    height = np.where(np.isfinite(declared), declared, floors * STOREY_M)
    height = np.where(np.isfinite(height), height, 3 * STOREY_M)
    extra = np.where(rng.random(len(buildings)) < EXTRA_STOREY_SHARE, rng.integers(3, 6), 0)
    return pd.DataFrame(
        {
            "建筑编码": buildings["建筑编码"].to_numpy(),
            "true_height_m": height + extra * STOREY_M,
            "extra_storeys": extra,
        }
    )


def write_terrain(
    city: dict[str, gpd.GeoDataFrame],
    out_dir: str | os.PathLike[str],
    *,
    cell_size_m: float = 2.0,
    seed: int = 42,
) -> dict[str, Path]:
    """Write ``dem.tif`` and ``dsm.tif`` (DEFLATE-compressed float32 GeoTIFFs) into ``out_dir``."""
    dem, dsm, _ = terrain_for(city, cell_size_m=cell_size_m, seed=seed)
    out = Path(out_dir)
    return {
        "dem": write_raster(dem, out / "dem.tif", cog=False),
        "dsm": write_raster(dsm, out / "dsm.tif", cog=False),
    }
