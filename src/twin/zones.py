"""Indicators of every layer, by zone: the table behind ``twin indicators``.

Combines the pure functions of :mod:`twin.indicators` over the layers of a
twin: buildings (count, footprint, GFA, FAR, coverage, heights), sensors (count,
density and coverage by type), roads and pipes (km, pipes by network).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from geopandas import GeoDataFrame

from twin.errors import UsageError
from twin.indicators import building_indicators, network_lengths, sensor_indicators

if TYPE_CHECKING:
    from twin.model import Twin

ZONE_KINDS = ("parcel", "grid", "district")


def zone_layer(city: Twin, by: str) -> str:
    """The layer to group by: a layer name, or a kind with exactly one layer."""
    infos = city.layer_infos()
    if by in {i.name for i in infos if i.kind in ZONE_KINDS}:
        return by
    names = city.layer_names(by)
    if by in ZONE_KINDS and len(names) > 1:
        raise UsageError(
            f"the twin has several {by} layers ({', '.join(names)}): name one with --by NAME"
        )
    if by not in ZONE_KINDS or len(names) != 1:
        choices = ", ".join(sorted({i.name for i in infos if i.kind in ZONE_KINDS})) or "none"
        raise UsageError(f"--by {by!r}: give parcel, grid, district or a zone layer ({choices})")
    return names[0]


def indicators_by_zone(
    city: Twin, by: str = "grid", *, floor_height_m: float = 3.0
) -> GeoDataFrame:
    """Every indicator the twin's layers allow, one row per zone of ``by``.

    Columns are prefixed by the layer they come from when a kind has several
    layers (``sensors_smoke_count``, ``cameras_camera_count``); pipes give
    ``<layer>_km`` and one ``<layer>_<network>_km`` per network.
    """
    layer = zone_layer(city, by)
    zones = city.layer(layer, columns=[])
    parts: list[pd.DataFrame] = []
    infos = [i for i in city.layer_infos() if i.name != layer]
    for info in infos:
        frame = _indicators_of(city, info.name, info.kind, zones, floor_height_m)
        if frame is not None:
            parts.append(frame)
    table = pd.concat([zones.geometry.area.rename("area_m2"), *parts], axis=1)
    return GeoDataFrame(table, geometry=zones.geometry, crs=zones.crs)


def _indicators_of(
    city: Twin, name: str, kind: str, zones: GeoDataFrame, floor_height_m: float
) -> pd.DataFrame | None:
    if kind == "building":
        frame = building_indicators(zones, city.layer(name), floor_height_m=floor_height_m)
        return frame.add_prefix(f"{name}_") if name != "buildings" else frame
    if kind == "sensor":
        return sensor_indicators(zones, city.layer(name)).add_prefix(f"{name}_")
    if kind == "road":
        return network_lengths(zones, city.layer(name)).rename(columns={"length_km": f"{name}_km"})
    if kind == "pipe":
        lengths = network_lengths(zones, city.layer(name), by="network")
        lengths = lengths.rename(columns={"length_km": "km"})
        return lengths.add_prefix(f"{name}_")
    return None
