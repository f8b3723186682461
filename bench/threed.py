"""3D and flood benchmarks: heights from a 1 m DSM / DEM, LOD1 + CityJSON, 3D Tiles, flood.

Inputs (made once per city size and kept in the bench cache):

* ``dem`` / ``dsm``: 1 m grids covering the generated city's buildings; the
  DEM a gentle valley, the DSM the DEM raised by each building's height
  (``建筑高度``, else ``层数`` × 3.2 m). They are written window by window as
  tiled, ZSTD-compressed GeoTIFFs (512 × 512 blocks), then copied block by
  block to Cloud-Optimised GeoTIFFs (no overviews), so a city of 1,000,000
  buildings (about 51 km × 35 km, 1.8 × 10⁹ cells, 7 GB per grid as float32)
  never has a whole grid in memory, neither when made nor when measured;
* ``ndsm``: a GDAL VRT computing DSM − DEM cell by cell (a ``diff`` pixel
  function), so the peers read the same two files as ours;
* ``flood_dem``: a 10 km × 10 km DEM at 1 m (100 km², 10⁸ cells) with a
  river valley, for the flood scenario.

At more than ``SUBSET`` buildings the peers of the heights scenario would take
far longer than ours (rasterstats: about an hour at 1M), so the ``heights``
scenario compares both sides on the same deterministic spatial subset (the
``SUBSET`` buildings nearest the city's centre), and ``heights-whole`` times
ours on every building against exactextract on every building.
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
WINDOW = 4096  # cells per side of one generated window (a multiple of the 512 block)
SUBSET = 20_000  # buildings in the peers' subset at larger sizes


def _ground(xx: np.ndarray, yy: np.ndarray, x0: float, y_mid: float) -> np.ndarray:
    """Terrain at cell centres ``xx`` (row vector) and ``yy`` (column vector).

    ``x0`` is the grid's west edge and ``y_mid`` the mean of its row centres, so
    any window of a grid gets the values the whole grid would.
    """
    valley = 8.0 * (1 - np.exp(-np.abs(yy - y_mid) / 800.0))
    relief = 1.5 * np.sin(xx / 900.0) * np.cos(yy / 700.0) + 0.6 * np.sin((xx + yy) / 350.0)
    return 500.0 + 0.0003 * (xx - x0) + valley + relief


def _profile(cols: int, rows: int, transform: Any) -> dict[str, Any]:
    import rasterio.crs

    return {
        "driver": "GTiff",
        "width": cols,
        "height": rows,
        "count": 1,
        "dtype": "float32",
        "crs": rasterio.crs.CRS.from_epsg(4544),
        "transform": transform,
        "nodata": -9999.0,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "ZSTD",
        "predictor": 3,
        "BIGTIFF": "IF_SAFER",
    }


def prepare_terrain(folder: Path, buildings: Path, n_buildings: int, seed: int) -> Inputs:
    """The 1 m DEM and DSM of the generated city, and the 100 km² flood DEM (made once)."""
    terrain = folder / f"terrain-{n_buildings}-{seed}-1m-tiled"
    dem_path, dsm_path = terrain / "dem.tif", terrain / "dsm.tif"
    if not dsm_path.exists():
        write_city_terrain(terrain, buildings)
    ndsm_path = write_ndsm_vrt(terrain / "ndsm.vrt", dsm_path, dem_path)
    flood = folder / "flood-dem-100km2-1m.tif"
    if not flood.exists():
        write_flood_dem(flood)
    return {"dem": dem_path, "dsm": dsm_path, "ndsm": ndsm_path, "flood_dem": flood}


def write_city_terrain(terrain: Path, buildings: Path, *, window: int = WINDOW) -> None:
    """Write ``dem.tif`` and ``dsm.tif`` covering ``buildings`` window by window."""
    import geopandas as gpd
    import pandas as pd
    import rasterio
    import rasterio.features
    import shapely
    from affine import Affine
    from rasterio.windows import Window

    started = time.perf_counter()
    terrain.mkdir(parents=True, exist_ok=True)
    frame = gpd.read_file(buildings, columns=["层数", "建筑高度"])
    minx, miny, maxx, maxy = np.floor(frame.total_bounds) + np.array([-20, -20, 21, 21])
    cols, rows = int(maxx - minx), int(maxy - miny)
    transform = Affine(1.0, 0, minx, 0, -1.0, maxy)
    floors = pd.to_numeric(frame["层数"], errors="coerce")
    heights = (
        pd.to_numeric(frame["建筑高度"], errors="coerce").fillna(floors * 3.2).fillna(9.6)
    ).to_numpy()
    geoms = np.asarray(frame.geometry.array)
    del frame
    tree = shapely.STRtree(geoms)
    y_mid = float(maxy - rows / 2.0)  # the mean of the row centres
    tmp = {name: terrain / f"{name}.tmp.tif" for name in ("dem", "dsm")}
    profile = _profile(cols, rows, transform)
    with (
        rasterio.open(tmp["dem"], "w", **profile) as dem,
        rasterio.open(tmp["dsm"], "w", **profile) as dsm,
    ):
        for row0 in range(0, rows, window):
            for col0 in range(0, cols, window):
                win = Window(col0, row0, min(window, cols - col0), min(window, rows - row0))
                win_t = transform @ Affine.translation(col0, row0)
                x = minx + col0 + np.arange(win.width, dtype=np.float64) + 0.5
                y = maxy - row0 - np.arange(win.height, dtype=np.float64) - 0.5
                ground = _ground(x[None, :], y[:, None], minx, y_mid).astype(np.float32)
                dem.write(ground, 1, window=win)
                box = shapely.box(x[0] - 0.5, y[-1] - 0.5, x[-1] + 0.5, y[0] + 0.5)
                hits = tree.query(box, predicate="intersects")
                if len(hits):
                    ground += rasterio.features.rasterize(
                        zip(geoms[hits], heights[hits], strict=True),
                        out_shape=(int(win.height), int(win.width)),
                        transform=win_t,
                        fill=0.0,
                        dtype="float32",
                    )
                dsm.write(ground, 1, window=win)
    for name, path in tmp.items():
        to_cog(path, terrain / f"{name}.tif")
        path.unlink()
    print(
        f"made the 1 m DEM/DSM ({cols} x {rows}) window by window in "
        f"{time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )


def to_cog(source: Path, target: Path) -> Path:
    """Copy a tiled GeoTIFF to a Cloud-Optimised GeoTIFF (GDAL streams it block by block)."""
    import rasterio
    import rasterio.shutil

    staged = target.with_name(target.name + ".cog.tmp")
    with rasterio.Env(GDAL_CACHEMAX=512):
        rasterio.shutil.copy(
            source,
            staged,
            driver="COG",
            compress="ZSTD",
            predictor="FLOATING_POINT",
            blocksize=512,
            overviews="NONE",
            BIGTIFF="IF_SAFER",
        )
    staged.rename(target)
    return target


def write_ndsm_vrt(path: Path, dsm: Path, dem: Path) -> Path:
    """A VRT whose one band is DSM − DEM, cell by cell (both grids must be the same)."""
    import rasterio

    with rasterio.open(dsm) as src:
        cols, rows, transform, crs = src.width, src.height, src.transform, src.crs
    sources = "".join(
        f'<SimpleSource><SourceFilename relativeToVRT="0">{file}</SourceFilename>'
        f"<SourceBand>1</SourceBand></SimpleSource>"
        for file in (Path(dsm).resolve(), Path(dem).resolve())
    )
    geo = ", ".join(repr(float(v)) for v in transform.to_gdal())
    path.write_text(
        f'<VRTDataset rasterXSize="{cols}" rasterYSize="{rows}">'
        f"<SRS>{crs.to_wkt()}</SRS><GeoTransform>{geo}</GeoTransform>"
        '<VRTRasterBand dataType="Float32" band="1" subClass="VRTDerivedRasterBand">'
        "<NoDataValue>-9999</NoDataValue><PixelFunctionType>diff</PixelFunctionType>"
        f"{sources}</VRTRasterBand></VRTDataset>",
        encoding="utf-8",
    )
    return path


def write_flood_dem(path: Path, side: int = FLOOD_SIDE) -> Path:
    """A ``side`` x ``side`` DEM at 1 m with a valley along its middle row."""
    import pyproj
    from affine import Affine

    from twin.raster import Raster, write_raster

    cells = np.arange(side, dtype=np.float32) + 0.5
    values = _ground(cells[None, :], cells[:, None], 0.5, float(cells.mean())).astype(np.float32)
    transform = Affine(1.0, 0, 400_000, 0, -1.0, 3_400_000)
    write_raster(Raster(values, transform, pyproj.CRS("EPSG:4544")), path, cog=False)
    return path


def _buildings(inputs: Inputs, *, subset: bool) -> Any:
    """The city's footprints (indexed by their code); the peers' subset when ``subset``."""
    import geopandas as gpd
    import shapely

    buildings = gpd.read_file(inputs["buildings"], columns=["建筑编码", "层数"])
    buildings = buildings.set_index("建筑编码")
    if not subset or len(buildings) <= SUBSET:
        return buildings
    minx, miny, maxx, maxy = buildings.total_bounds
    centres = shapely.centroid(np.asarray(buildings.geometry.array))
    distance = np.hypot(
        shapely.get_x(centres) - (minx + maxx) / 2, shapely.get_y(centres) - (miny + maxy) / 2
    )
    nearest = np.sort(np.argsort(distance, kind="stable")[:SUBSET])
    return buildings.iloc[nearest]


def _heights_facts(seconds: float, heights: np.ndarray, count: np.ndarray) -> dict[str, Any]:
    measured = np.where(count >= 3, heights, np.nan)
    return {
        "compute_s": round(seconds, 2),
        "buildings": len(heights),
        "measured": int(np.isfinite(measured).sum()),
        "mean_height_m": round(float(np.nanmean(np.clip(measured, 0, None))), 2),
    }


def _ours(inputs: Inputs, *, subset: bool) -> dict[str, Any]:
    from twin.heights import measured_heights_tiled

    buildings = _buildings(inputs, subset=subset)
    started = time.perf_counter()
    table = measured_heights_tiled(buildings, inputs["dsm"], inputs["dem"])
    seconds = time.perf_counter() - started
    return _heights_facts(
        seconds, table["height_m"].to_numpy(dtype=float), table["samples"].to_numpy()
    )


def heights_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """Ours on the peers' subset, reading the tiled DSM and DEM window by window."""
    return _ours(inputs, subset=True)


def heights_whole_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """Ours on every building of the city."""
    return _ours(inputs, subset=False)


def heights_rasterstats(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """rasterstats on the subset, reading the DSM − DEM VRT feature by feature."""
    from rasterstats import zonal_stats

    buildings = _buildings(inputs, subset=True)
    started = time.perf_counter()
    stats = zonal_stats(
        list(buildings.geometry),
        str(inputs["ndsm"]),
        nodata=-9999,
        stats=["count", "percentile_90"],
    )
    seconds = time.perf_counter() - started
    heights = np.array([s["percentile_90"] for s in stats], dtype=float)
    return _heights_facts(seconds, heights, np.array([s["count"] for s in stats]))


def heights_exactextract(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """exactextract on every building, reading the DSM − DEM VRT."""
    from exactextract import exact_extract

    buildings = _buildings(inputs, subset=False)
    started = time.perf_counter()
    table = exact_extract(
        str(inputs["ndsm"]), buildings.reset_index(), ["count", "quantile(q=0.9)"], output="pandas"
    )
    seconds = time.perf_counter() - started
    count = table["count"].to_numpy(dtype=float)
    return _heights_facts(seconds, table.iloc[:, -1].to_numpy(dtype=float), count)


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
