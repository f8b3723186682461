"""Indicators of every layer, by zone: the table behind ``twin indicators``.

Combines the pure functions of :mod:`twin.indicators` over the layers of a
twin: buildings (count, footprint, GFA, FAR, coverage, heights), sensors (count,
density and coverage by type), roads and pipes (km, pipes by network).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely
from geopandas import GeoDataFrame

from twin.errors import TwinBusyError, UsageError
from twin.indicators import (
    building_indicators,
    building_indicators_in_batches,
    network_lengths,
    sensor_indicators,
)
from twin.io import read_source_batches
from twin.store import GpkgStore

if TYPE_CHECKING:
    from twin.model import LayerInfo, Twin

ZONE_KINDS = ("parcel", "grid", "district")


def zone_layer(city: Twin, by: str) -> str:
    """The layer to group by: a layer name, or a kind with exactly one layer.

    Errors speak Python (``by='street'``); the CLI and the API translate them.

    Examples
    --------
    >>> zone_layer(city, "district")
    'districts'
    >>> try:
    ...     zone_layer(city, "street")
    ... except UsageError as exc:
    ...     print(str(exc)[:40])
    by='street' is not a zone layer: use 'pa
    """
    infos = city.layer_infos()
    if by in {i.name for i in infos if i.kind in ZONE_KINDS}:
        return by
    names = city.layer_names(by)
    if by in ZONE_KINDS and len(names) > 1:
        raise UsageError(
            f"the twin has several {by} layers ({', '.join(names)}): name one with by='NAME'"
        )
    if by not in ZONE_KINDS or len(names) != 1:
        choices = ", ".join(sorted({i.name for i in infos if i.kind in ZONE_KINDS})) or "none"
        raise UsageError(
            f"by={by!r} is not a zone layer: use 'parcel', 'grid', 'district' or a zone "
            f"layer's name ({choices})"
        )
    return names[0]


def indicators_by_zone(
    city: Twin, by: str = "grid", *, floor_height_m: float = 3.0
) -> GeoDataFrame:
    """Every indicator the twin's layers allow, one row per zone of ``by``.

    Columns are prefixed by the layer they come from when a kind has several
    layers (``sensors_smoke_count``, ``cameras_camera_count``); pipes give
    ``<layer>_km`` and one ``<layer>_<network>_km`` per network. Layers are
    read with only the columns their indicators use, two at a time.
    """
    layer = zone_layer(city, by)
    zones = city.layer(layer, columns=[])
    infos = [i for i in city.layer_infos() if i.name != layer and i.kind in _COLUMNS]
    # Costliest first, so that the two threads finish together (the table keeps layer order).
    costliest = sorted(infos, key=lambda i: -i.feature_count * _COST_PER_FEATURE[i.kind])
    own = threading.local()

    def indicators_of(info: LayerInfo) -> pd.DataFrame:
        # Each thread clips with its own zone geometries: GEOS prepares them in place.
        if not hasattr(own, "zones"):
            own.zones = zones.set_geometry(
                shapely.from_wkb(shapely.to_wkb(np.asarray(zones.geometry.array))), crs=zones.crs
            )
        return _indicators_of(city, info, own.zones, floor_height_m)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="twin-indicators") as pool:
        done = dict(
            zip([i.name for i in costliest], pool.map(indicators_of, costliest), strict=True)
        )
    parts = [done[i.name] for i in infos]
    table = pd.concat([zones.geometry.area.rename("area_m2"), *parts], axis=1)
    return GeoDataFrame(table, geometry=zones.geometry, crs=zones.crs)


STREAM_ABOVE = 500_000  # buildings: a larger layer is read and overlaid in batches
BATCH_SIZE = 200_000  # buildings a batch


def _layer_batches(city: Twin, name: str, columns: list[str]) -> Iterator[GeoDataFrame]:
    """The layer's features in fid order, a batch at a time, all from one version of the twin.

    Raises
    ------
    TwinBusyError
        When an import or build replaced the twin file between two batches.
    """
    path = city.path
    version = os.stat(path).st_ino
    batches = read_source_batches(path, batch_size=BATCH_SIZE, source_layer=name, columns=columns)
    for data in batches:
        if os.stat(path).st_ino != version:
            raise TwinBusyError(
                f"{path.name} was changed by another writer while layer {name} was read: "
                "run the indicators again"
            )
        yield data.frame


# Rough seconds per million features of each kind's indicators (sensors: coverage discs).
_COST_PER_FEATURE = {"building": 3.0, "road": 15.0, "pipe": 7.0, "sensor": 35.0}
# The columns each kind's indicators read (those the layer has).
_COLUMNS = {
    "building": ("floors", "height_m", "population"),
    "sensor": ("sensor_type", "radius_m"),
    "road": (),
    "pipe": ("network",),
}


def _indicators_of(
    city: Twin, info: LayerInfo, zones: GeoDataFrame, floor_height_m: float
) -> pd.DataFrame:
    name = info.name
    fields = set(city.fields(name))
    columns = [c for c in _COLUMNS[info.kind] if c in fields]
    if info.kind == "building":
        # Not started from the build's stored building -> zone relation (stored_zone_shares):
        # at 1M buildings reading it costs more than the overlay it spares (measured
        # December 2026 on the grid: 1.0-1.15 s CPU to read it, 0.7 s for the whole
        # overlay without it, 0.4 s with it).
        if info.feature_count > STREAM_ABOVE and isinstance(city.store, GpkgStore):
            batches = _layer_batches(city, name, columns)
            table = building_indicators_in_batches(zones, batches, floor_height_m=floor_height_m)
        else:
            frame = city.layer(name, columns=columns)
            table = building_indicators(zones, frame, floor_height_m=floor_height_m)
        return table.add_prefix(f"{name}_") if name != "buildings" else table
    frame = city.layer(name, columns=columns)
    if info.kind == "sensor":
        return sensor_indicators(zones, frame).add_prefix(f"{name}_")
    if info.kind == "road":
        return network_lengths(zones, frame).rename(columns={"length_km": f"{name}_km"})
    lengths = network_lengths(zones, frame, by="network").rename(columns={"length_km": "km"})
    return lengths.add_prefix(f"{name}_")
