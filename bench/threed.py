"""3D and flood benchmarks: heights from a 1 m DSM / DEM, LOD1 + CityJSON, 3D Tiles, flood.

Inputs (made once per city size and kept in the bench cache):

* ``dem`` / ``dsm``: 1 m grids covering the generated city's buildings; the
  DEM a gentle valley, the DSM the DEM raised by each building's height
  (``建筑高度``, else ``层数`` × 3.2 m);
* ``flood_dem``: a 10 km × 10 km DEM at 1 m (100 km², 10⁸ cells) with a
  river valley, for the flood scenario.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

Inputs = dict[str, Path]

FLOOD_SIDE = 10_000  # cells of 1 m: 100 km²
FLOOD_LEVEL_M = 504.0


def _ground(xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    valley = 8.0 * (1 - np.exp(-np.abs(yy - yy.mean()) / 800.0))
    relief = 1.5 * np.sin(xx / 900.0) * np.cos(yy / 700.0) + 0.6 * np.sin((xx + yy) / 350.0)
    return 500.0 + 0.0003 * (xx - xx.min()) + valley + relief


def _write(path: Path, values: np.ndarray, transform: Any) -> None:
    import pyproj

    from twin.raster import Raster, write_raster

    write_raster(Raster(values, transform, pyproj.CRS("EPSG:4544")), path, cog=False)


def prepare_terrain(folder: Path, buildings: Path, n_buildings: int, seed: int) -> Inputs:
    """The 1 m DEM and DSM of the generated city, and the 100 km² flood DEM (made once)."""
    import geopandas as gpd
    import pandas as pd
    import rasterio.features
    from affine import Affine

    terrain = folder / f"terrain-{n_buildings}-{seed}-1m"
    dem_path, dsm_path = terrain / "dem.tif", terrain / "dsm.tif"
    if not dsm_path.exists():
        started = time.perf_counter()
        terrain.mkdir(parents=True, exist_ok=True)
        frame = gpd.read_file(buildings)
        minx, miny, maxx, maxy = np.floor(frame.total_bounds) + np.array([-20, -20, 21, 21])
        cols, rows = int(maxx - minx), int(maxy - miny)
        transform = Affine(1.0, 0, minx, 0, -1.0, maxy)
        x = minx + np.arange(cols, dtype=np.float32) + 0.5
        y = maxy - np.arange(rows, dtype=np.float32) - 0.5
        ground = _ground(x[None, :], y[:, None]).astype(np.float32)
        floors = pd.to_numeric(frame["层数"], errors="coerce")
        height = pd.to_numeric(frame["建筑高度"], errors="coerce").fillna(floors * 3.2).fillna(9.6)
        raised = rasterio.features.rasterize(
            zip(frame.geometry, height, strict=True),
            out_shape=(rows, cols),
            transform=transform,
            fill=0.0,
            dtype="float32",
        )
        _write(dem_path, ground, transform)
        _write(dsm_path, ground + raised, transform)
        print(
            f"made the 1 m DEM/DSM ({cols} x {rows}) in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
    flood = folder / "flood-dem-100km2-1m.tif"
    if not flood.exists():
        write_flood_dem(flood)
    return {"dem": dem_path, "dsm": dsm_path, "flood_dem": flood}


def write_flood_dem(path: Path, side: int = FLOOD_SIDE) -> Path:
    """A ``side`` x ``side`` DEM at 1 m with a valley along its middle row."""
    from affine import Affine

    cells = np.arange(side, dtype=np.float32) + 0.5
    values = _ground(cells[None, :], cells[:, None]).astype(np.float32)
    _write(path, values, Affine(1.0, 0, 400_000, 0, -1.0, 3_400_000))
    return path


def _heights_inputs(inputs: Inputs) -> tuple[Any, Any, Any]:
    import geopandas as gpd

    from twin.raster import open_raster

    buildings = gpd.read_file(inputs["buildings"]).set_index("建筑编码")
    return buildings, open_raster(inputs["dsm"]), open_raster(inputs["dem"])


def heights_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    from twin.heights import measured_heights

    buildings, dsm, dem = _heights_inputs(inputs)
    started = time.perf_counter()
    table = measured_heights(buildings, dsm, dem)
    seconds = time.perf_counter() - started
    return {
        "compute_s": round(seconds, 2),
        "buildings": len(table),
        "measured": int(table["height_m"].notna().sum()),
        "mean_height_m": round(float(table["height_m"].mean()), 2),
    }


def heights_rasterstats(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    from rasterstats import zonal_stats

    buildings, dsm, dem = _heights_inputs(inputs)
    started = time.perf_counter()
    ndsm = np.nan_to_num(dsm.values - dem.values, nan=-9999)
    stats = zonal_stats(
        list(buildings.geometry),
        ndsm,
        affine=dsm.transform,
        nodata=-9999,
        stats=["count", "percentile_90"],
    )
    seconds = time.perf_counter() - started
    heights = np.array(
        [s["percentile_90"] if s["count"] >= 3 else np.nan for s in stats], dtype=float
    )
    return {
        "compute_s": round(seconds, 2),
        "buildings": len(stats),
        "measured": int(np.isfinite(heights).sum()),
        "mean_height_m": round(float(np.nanmean(np.clip(heights, 0, None))), 2),
    }


def heights_exactextract(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    import rasterio
    from exactextract import exact_extract

    buildings, dsm, dem = _heights_inputs(inputs)
    ndsm = (dsm.values - dem.values).astype("float32")  # written for it, not timed
    rows, cols = ndsm.shape
    path = scratch / "ndsm.tif"
    profile = {
        "driver": "GTiff",
        "width": cols,
        "height": rows,
        "count": 1,
        "dtype": "float32",
        "transform": dsm.transform,
        "crs": "EPSG:4544",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(ndsm, 1)
    started = time.perf_counter()
    table = exact_extract(
        str(path), buildings.reset_index(), ["count", "quantile(q=0.9)"], output="pandas"
    )
    seconds = time.perf_counter() - started
    return {
        "compute_s": round(seconds, 2),
        "buildings": len(table),
        "measured": int((table["count"] >= 3).sum()),
        "mean_height_m": round(float(table.iloc[:, -1].clip(lower=0).mean()), 2),
    }


def lod1_cityjson_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """LOD1 extrusion + CityJSONSeq of every building of the generated city."""
    import geopandas as gpd
    import pandas as pd

    from twin.cityjson import write_cityjson

    frame = gpd.read_file(inputs["buildings"]).set_index("建筑编码")
    frame = frame.rename(columns={"层数": "floors", "建筑高度": "height_m"})
    frame["floors"] = pd.to_numeric(frame["floors"], errors="coerce")
    started = time.perf_counter()
    path = write_cityjson(frame, scratch / "city.city.jsonl")
    seconds = time.perf_counter() - started
    with path.open("rb") as handle:
        lines = sum(1 for _ in handle)
    return {
        "export_s": round(seconds, 2),
        "objects": lines - 1,
        "mib": round(path.stat().st_size / 2**20),
    }


def tiles_sample_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """3D Tiles (one glb per district) of the 3,000-building sample district."""
    import twin
    from twin.city3d import export_3d

    root = Path(__file__).resolve().parents[1] / "data" / "samples"
    city = twin.Twin.create(scratch / "sample.gpkg", crs="EPSG:4544")
    city.import_mapping(root / "mapping.yaml", layers=["buildings", "districts"])
    started = time.perf_counter()
    tileset = export_3d(city, "buildings", scratch / "tiles" / "tileset.json")
    seconds = time.perf_counter() - started
    return {"tiles_s": round(seconds, 2), "glb": len(list(tileset.parent.glob("*.glb")))}


def flood_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    from twin.flood import inundation
    from twin.raster import open_raster

    dem = open_raster(inputs["flood_dem"])
    seed = dem.transform @ (5, dem.shape[0] // 2)
    started = time.perf_counter()
    depth = inundation(dem, level_m=FLOOD_LEVEL_M, seeds=[seed])
    seconds = time.perf_counter() - started
    return {
        "compute_s": round(seconds, 2),
        "cells": int(np.isfinite(depth.values).sum()),
        "km2": round(dem.values.size / 1e6),
    }


def flood_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    from scipy import ndimage

    from twin.raster import open_raster

    dem = open_raster(inputs["flood_dem"])
    started = time.perf_counter()
    below = dem.values < FLOOD_LEVEL_M
    labels, _ = ndimage.label(below)
    wet = labels == labels[dem.shape[0] // 2, 5]
    depth = np.where(wet, FLOOD_LEVEL_M - dem.values, np.nan)
    seconds = time.perf_counter() - started
    return {
        "compute_s": round(seconds, 2),
        "cells": int(np.isfinite(depth).sum()),
        "km2": round(dem.values.size / 1e6),
    }
