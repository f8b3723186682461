"""The twin in 3D: LOD1 exports by file name, CityJSON read back, 3D height-limit checks.

Examples
--------
>>> import tempfile, pathlib, twin
>>> city = twin.Twin.create(pathlib.Path(tempfile.mkdtemp()) / "c.gpkg", crs="EPSG:4544")
>>> _ = city.import_layer("data/samples/buildings.geojson", layer="buildings",
...                       kind="building", id="建筑编码",
...                       fields={"层数": "floors", "建筑高度": "height_m"})
>>> path = export_3d(city, "buildings", city.path.parent / "b.city.json")
>>> path.name
'b.city.json'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from twin.cityjson import read_cityjson, write_cityjson
from twin.compliance import COLUMNS, plan_compliance
from twin.errors import UsageError
from twin.imports import ImportReport
from twin.lod1 import block_heights
from twin.raster import Raster
from twin.relate import largest_share
from twin.tiles3d import write_glb, write_tileset
from twin.zonal import zonal_stats

__all__ = [
    "FORMATS_3D",
    "export_3d",
    "height_compliance_3d",
    "import_cityjson",
    "is_3d_target",
]

FORMATS_3D = (".city.json", ".city.jsonl", ".jsonl", ".glb", "tileset.json", "/ (a folder)")


def is_3d_target(path: str | os.PathLike[str]) -> bool:
    """Whether an export path names a 3D format (CityJSON, glb, a 3D Tiles folder)."""
    target = Path(path)
    name = target.name.lower()
    return (
        name.endswith((".city.json", ".jsonl", ".glb"))
        or name == "tileset.json"
        or str(path).endswith(("/", os.sep))
        or target.is_dir()
        or not target.suffix  # a folder to be: 3D Tiles
    )


def districts_of(city: Any, buildings: gpd.GeoDataFrame) -> pd.Series | None:
    """The name of each building's district (largest share), if the twin has district layers."""
    names = city.layer_names("district")
    if not names:
        return None
    districts = city.layer(names[0])
    home = largest_share(buildings, districts)["zone"]
    label = districts["name"] if "name" in districts.columns else districts.index.to_series()
    return home.map(label).fillna("outside")


def export_3d(
    city: Any, layer: str, path: str | os.PathLike[str], *, storey_m: float = 3.0
) -> Path:
    """Export a building layer's LOD1 blocks; the name picks the format.

    ``.city.json`` CityJSON 2.0, ``.city.jsonl`` CityJSONSeq, ``.glb`` one
    glTF binary, ``tileset.json`` or a folder: 3D Tiles 1.1 with one glb per district.
    """
    if city.info(layer).kind != "building":
        raise UsageError(f"{layer} is not a building layer: 3D export extrudes buildings")
    buildings = city.layer(layer)
    target = Path(path)
    name = target.name.lower()
    if name.endswith((".json", ".jsonl")) and name != "tileset.json":
        return write_cityjson(buildings, target, storey_m=storey_m, title=f"{layer} (LOD1)")
    if name.endswith(".glb"):
        return write_glb(buildings, target, storey_m=storey_m)
    folder = target.parent if name == "tileset.json" else target
    written = write_tileset(
        buildings, folder, districts=districts_of(city, buildings), storey_m=storey_m
    )
    return written / "tileset.json"


def import_cityjson(
    city: Any, path: str | os.PathLike[str], *, layer: str, **options: Any
) -> ImportReport:
    """Import the buildings of a CityJSON / CityJSONSeq file; object ids become uids.

    Object ids written by :func:`export_3d` are ``<layer>.<id>``: imported
    into a layer of the same name they give back the same uids.
    """
    frame = read_cityjson(path)
    ids = frame.index.to_series().astype(str)
    frame.insert(0, "cityjson_id", ids.str.removeprefix(layer + ".").to_numpy())
    frame = frame.reset_index(drop=True)
    return city.import_frame(
        frame, layer=layer, kind="building", id="cityjson_id", source=str(path), **options
    )


def height_compliance_3d(
    parcels: gpd.GeoDataFrame | None,
    buildings: gpd.GeoDataFrame,
    *,
    limit_surface: Raster | None = None,
    storey_m: float = 3.0,
    building_layer: str = "buildings",
    parcel_layer: str = "parcels",
) -> gpd.GeoDataFrame:
    """Buildings over their parcel's height limit and over a limit surface, like ``twin check``.

    ``height``: the block height (measured ``height_m`` when known) above the
    parcel's ``height_limit_m``. ``limit_surface``: the roof elevation
    (``ground_m + height_m``) above the lowest value of the surface (an
    airport or view-corridor clearance surface, 净空) over the footprint.

    Returns
    -------
    GeoDataFrame
        The columns of :func:`twin.compliance.plan_compliance`; ``measured``
        and ``limit`` are heights (check ``height``) or elevations (check
        ``limit_surface``), in metres.
    """
    frames = []
    if parcels is not None:
        table = plan_compliance(
            parcels,
            buildings,
            floor_height_m=storey_m,
            parcel_layer=parcel_layer,
            building_layer=building_layer,
        )
        frames.append(table[table["check"] == "height"])
    if limit_surface is not None:
        frames.append(_over_surface(buildings, limit_surface, storey_m, building_layer))
    frames = [f for f in frames if len(f)]
    if not frames:
        return gpd.GeoDataFrame(columns=COLUMNS, geometry="geometry", crs=buildings.crs)
    table = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(table, geometry="geometry", crs=buildings.crs)


def _over_surface(
    buildings: gpd.GeoDataFrame, surface: Raster, storey_m: float, layer: str
) -> pd.DataFrame:
    heights = block_heights(buildings, storey_m=storey_m)
    roof = heights["ground_m"] + heights["height_m"]
    limit = zonal_stats(buildings, surface, stats=("min",), all_touched=True)["min"]
    excess = roof - limit
    over = (excess > 1e-9).to_numpy(dtype=bool, na_value=False)
    rows = pd.DataFrame(
        {
            "check": "limit_surface",
            "layer": layer,
            "uid": buildings.index[over],
            "parcel_uid": None,
            "measured": roof[over].round(2).to_numpy(),
            "limit": limit[over].round(2).to_numpy(),
            "excess": excess[over].round(2).to_numpy(),
            "unit": "m",
            "geometry": np.asarray(buildings.geometry.array)[over],
        }
    )
    return rows.sort_values("excess", ascending=False)
