"""Building heights measured from a DSM and a DEM (normalised DSM, nDSM).

``height_m`` is a high percentile (default the 90th) of DSM − DEM over the
cells whose centre lies in the footprint: robust to the roof edge cells that
see the ground and to antennas; ``ground_m`` is the lowest DEM value in the
footprint (the block stands on the ground everywhere); ``samples`` counts the
cells used. A building whose measured height its declared floors cannot
explain (storeys outside 2.6–5 m, with 3 m of slack) is flagged.

Examples
--------
>>> import numpy as np, geopandas as gpd, shapely
>>> from affine import Affine
>>> from twin.raster import Raster
>>> t = Affine(1, 0, 0, 0, -1, 10)
>>> dem = Raster(np.full((10, 10), 500.0), t, None)
>>> dsm = Raster(dem.values + np.pad(np.full((4, 4), 12.0), 3), t, None)
>>> footprints = gpd.GeoDataFrame({"floors": [4]}, geometry=[shapely.box(3, 3, 7, 7)],
...                               index=["buildings.B1"])
>>> measured_heights(footprints, dsm, dem)[["height_m", "ground_m", "samples", "storey_m"]]
              height_m  ground_m  samples  storey_m
buildings.B1      12.0     500.0       16       3.0
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import rasterio
import rasterio.crs
from affine import Affine
from rasterio.enums import Resampling
from rasterio.warp import reproject
from rasterio.windows import Window, from_bounds

from twin.errors import CRSError, SchemaError, UsageError
from twin.raster import Raster, raster_path
from twin.zonal import label_grid, zonal_stats

__all__ = ["HeightsReport", "apply_heights", "measured_heights", "measured_heights_tiled", "ndsm"]

MIN_SAMPLES = 3
_LOCAL_CRS = 'LOCAL_CS["metres",UNIT["metre",1]]'
STOREYS_M = (2.6, 5.0)  # plausible storey heights, m
SLACK_M = 3.0


def ndsm(dsm: Raster, dem: Raster) -> Raster:
    """DSM − DEM on the DSM's grid (the DEM resampled bilinearly if its grid differs)."""
    if dem.shape == dsm.shape and dem.transform.almost_equals(dsm.transform):
        ground = dem.values
    else:
        ground = np.full(dsm.shape, np.nan)
        # Same CRS on both sides: only the grid changes (any CRS will do when none is set).
        crs = rasterio.crs.CRS.from_wkt(dsm.crs.to_wkt() if dsm.crs else _LOCAL_CRS)
        reproject(
            dem.values,
            ground,
            src_transform=dem.transform,
            src_crs=crs,
            dst_transform=dsm.transform,
            dst_crs=crs,
            src_nodata=np.nan,
            dst_nodata=np.nan,
            resampling=Resampling.bilinear,
        )
    return Raster(dsm.values - ground, dsm.transform, dsm.crs, "ndsm")


def measured_heights(
    buildings: gpd.GeoDataFrame,
    dsm: Raster,
    dem: Raster,
    *,
    percentile: float = 90.0,
    storeys_m: tuple[float, float] = STOREYS_M,
    slack_m: float = SLACK_M,
    min_samples: int = MIN_SAMPLES,
) -> pd.DataFrame:
    """Measured height, ground and disagreement flags per building (aligned to its index).

    Parameters
    ----------
    buildings : GeoDataFrame
        Footprints in the rasters' CRS, with ``floors`` where known.
    dsm, dem : Raster
        Surface and terrain models (the DEM is resampled if its grid differs).
    percentile : float, default 90
        The statistic of DSM − DEM taken as the height.
    storeys_m : (float, float), default (2.6, 5.0)
        The plausible storey heights: floors × the lower bound − ``slack_m``
        to floors × the upper bound + ``slack_m`` agrees with the floors.
    min_samples : int, default 3
        Fewer cells in a footprint: not measurable.

    Returns
    -------
    DataFrame
        ``height_m`` (NaN when not measurable), ``ground_m`` (lowest DEM
        cell), ``samples``, ``storey_m`` (height / floors), ``difference_m``
        (metres outside the plausible range, + taller, − lower) and
        ``floors_flag``: ``"taller"`` / ``"lower"`` than the floors allow,
        ``"too_small"`` (not measurable), or "".
    """
    if not 0 < percentile <= 100:
        raise UsageError("the height percentile must be in (0, 100]")
    low_m, high_m = storeys_m
    if not 0 < low_m <= high_m:
        raise UsageError("the storey height range must be two increasing positive numbers")
    normalised = ndsm(dsm, dem)
    burnt = label_grid(np.asarray(buildings.geometry.array), dsm)  # once for both grids
    heights = zonal_stats(
        buildings, normalised, stats=("count",), percentiles=(percentile,), labels=burnt
    )
    ground = zonal_stats(buildings, _on_grid(dem, dsm), stats=("min",), labels=burnt)
    samples = heights["count"].astype("int64")
    height = heights.iloc[:, 1].where(samples >= min_samples).clip(lower=0.0)
    floors = (
        pd.to_numeric(buildings["floors"], errors="coerce").astype("float64")
        if "floors" in buildings.columns
        else pd.Series(np.nan, index=buildings.index)
    )
    above = height - (floors * high_m + slack_m)
    below = height - (floors * low_m - slack_m)
    difference = above.where(above > 0, below.where(below < 0, 0.0))
    flag = np.select(
        [
            (samples < min_samples).to_numpy(),
            (above > 0).to_numpy(dtype=bool, na_value=False),
            (below < 0).to_numpy(dtype=bool, na_value=False),
        ],
        ["too_small", "taller", "lower"],
        default="",
    )
    return pd.DataFrame(
        {
            "height_m": height.round(2),
            "ground_m": ground["min"].round(2),
            "samples": samples,
            "storey_m": (height / floors.where(floors > 0)).round(2),
            "difference_m": difference.round(2),
            "floors_flag": flag,
        },
        index=buildings.index,
    )


def measured_heights_tiled(
    buildings: gpd.GeoDataFrame,
    dsm_path: str | os.PathLike[str],
    dem_path: str | os.PathLike[str],
    *,
    tile_m: float = 2000.0,
    **options: Any,
) -> pd.DataFrame:
    """:func:`measured_heights` reading the rasters window by window, for grids too big for memory.

    Buildings are grouped by the ``tile_m`` square holding their bounding-box
    centre; each group reads the window of both files covering its footprints
    (whole, so no building is cut), and the answers are those of the in-memory path.
    """
    if tile_m <= 0:
        raise UsageError("tile_m must be positive")
    bounds = buildings.geometry.bounds
    cx = ((bounds["minx"] + bounds["maxx"]) / 2 // tile_m).astype("int64")
    cy = ((bounds["miny"] + bounds["maxy"]) / 2 // tile_m).astype("int64")
    parts = []
    with rasterio.open(dsm_path) as dsm_src, rasterio.open(dem_path) as dem_src:
        for _, positions in pd.Series(range(len(buildings))).groupby(
            [cx.to_numpy(), cy.to_numpy()]
        ):
            group = buildings.iloc[positions.to_numpy()]
            box = tuple(group.total_bounds)
            parts.append(
                measured_heights(group, _window(dsm_src, box), _window(dem_src, box), **options)
            )
    return pd.concat(parts).reindex(buildings.index)


def _window(src: Any, box: tuple[float, ...]) -> Raster:
    """The cells of ``src`` covering ``box`` with one cell of margin, as a Raster."""
    full = Window(0, 0, src.width, src.height)
    window = from_bounds(*box, transform=src.transform)
    window = Window(
        int(np.floor(window.col_off)) - 1,
        int(np.floor(window.row_off)) - 1,
        int(np.ceil(window.width)) + 3,
        int(np.ceil(window.height)) + 3,
    ).intersection(full)
    values = src.read(1, window=window, masked=True).astype("float64").filled(np.nan)
    if src.crs is None:
        raise CRSError(f"{src.name} declares no CRS")
    crs = pyproj.CRS.from_user_input(src.crs.to_wkt())
    return Raster(values, src.transform @ Affine.translation(window.col_off, window.row_off), crs)


def _on_grid(dem: Raster, dsm: Raster) -> Raster:
    if dem.shape == dsm.shape and dem.transform.almost_equals(dsm.transform):
        return dem
    flat = Raster(np.zeros(dsm.shape), dsm.transform, dsm.crs)
    return Raster(-ndsm(flat, dem).values, dsm.transform, dsm.crs)


@dataclass
class HeightsReport:
    """What ``twin heights`` measured and wrote."""

    layer: str
    buildings: int
    measured: int
    not_measurable: int
    taller: int
    lower: int
    changed: int
    import_id: int | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def apply_heights(
    city: Any,
    *,
    layer: str,
    dsm: str,
    dem: str,
    percentile: float = 90.0,
    storeys_m: tuple[float, float] = STOREYS_M,
    slack_m: float = SLACK_M,
) -> tuple[HeightsReport, pd.DataFrame]:
    """Measure every building of ``layer`` and store ``height_m``, ``ground_m``, ``height_source``.

    The update is an import of the layer (same uids): the replaced versions go
    to the history and the provenance names the DSM and DEM. Buildings that
    cannot be measured keep their height (``height_source`` ``"declared"``).
    """
    buildings = city.layer(layer)
    if city.info(layer).kind != "building":
        raise SchemaError(f"{layer} is not a building layer")
    measured = measured_heights_tiled(
        buildings,
        raster_path(city, dsm),
        raster_path(city, dem),
        percentile=percentile,
        storeys_m=storeys_m,
        slack_m=slack_m,
    )
    id_field = _id_field(city, layer, buildings)
    updated = _updated_frame(buildings, measured, layer, id_field)
    report = city.import_frame(
        updated,
        layer=layer,
        kind="building",
        id=id_field,
        source=f"twin heights: p{percentile:g} of {dsm} - {dem}",
    )
    flags = measured["floors_flag"]
    return (
        HeightsReport(
            layer=layer,
            buildings=len(buildings),
            measured=int(measured["height_m"].notna().sum()),
            not_measurable=int((flags == "too_small").sum()),
            taller=int((flags == "taller").sum()),
            lower=int((flags == "lower").sum()),
            changed=int(report.changed),
            import_id=report.import_id,
        ),
        measured,
    )


def _id_field(city: Any, layer: str, buildings: gpd.GeoDataFrame) -> str:
    """The field the layer's uids come from (its last import's id), else ``source_uid``."""
    imports = city.imports(layer)
    field = imports["options"].iloc[-1].get("id") if len(imports) else None
    if field in buildings.columns:
        ids = layer + "." + buildings[field].astype(str).str.strip()
        if (ids.to_numpy() == buildings.index.to_numpy()).all():
            return str(field)
    return "source_uid"


def _updated_frame(
    buildings: gpd.GeoDataFrame, measured: pd.DataFrame, layer: str, id_field: str
) -> gpd.GeoDataFrame:
    frame = buildings.drop(columns=["valid_from"], errors="ignore").copy()
    has = measured["height_m"].notna()
    old_height = frame["height_m"] if "height_m" in frame.columns else np.nan
    frame["height_m"] = measured["height_m"].where(has, old_height)
    frame["ground_m"] = measured["ground_m"]
    frame["height_source"] = np.where(has, "dsm", "declared")
    frame["height_samples"] = measured["samples"]
    if id_field == "source_uid":
        uid = frame.index.to_series().astype(str)
        frame.insert(0, "source_uid", uid.str.removeprefix(layer + ".").to_numpy())
    return frame.reset_index(drop=True)
