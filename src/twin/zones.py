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

from twin.build import current_zone_set
from twin.errors import TwinBusyError, UsageError
from twin.indicators import (
    building_indicators,
    building_indicators_from_wkb,
    building_indicators_in_batches,
    network_lengths,
    sensor_indicators,
)
from twin.io import read_source_batches
from twin.store import GpkgStore
from twin.store.zonerows import read_footprints

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
        return _indicators_of(city, info, (layer, own.zones), floor_height_m)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="twin-indicators") as pool:
        done = dict(
            zip([i.name for i in costliest], pool.map(indicators_of, costliest), strict=True)
        )
    parts = [done[i.name] for i in infos]
    table = pd.concat([zones.geometry.area.rename("area_m2"), *parts], axis=1)
    return GeoDataFrame(table, geometry=zones.geometry, crs=zones.crs)


STREAM_ABOVE = 500_000  # buildings: a larger layer is read and overlaid in batches …
WHOLE_WITH_RELATION_UP_TO = 2_000_000  # … unless a current stored zone relation spares
# the overlay: then up to this many are read at once (about 0.6 GiB a million)
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


# Rough CPU seconds per million features of each kind's indicators (sensors: coverage discs;
# buildings from a current stored relation; measured at 1M buildings, December 2026).
_COST_PER_FEATURE = {"building": 1.5, "road": 18.0, "pipe": 8.5, "sensor": 30.0}
# The columns each kind's indicators read (those the layer has).
_COLUMNS = {
    "building": ("floors", "height_m", "population"),
    "sensor": ("sensor_type", "radius_m"),
    "road": (),
    "pipe": ("network",),
}


def _indicators_of(
    city: Twin, info: LayerInfo, by: tuple[str, GeoDataFrame], floor_height_m: float
) -> pd.DataFrame:
    """One layer's indicators by the zones ``by`` (name, frame), prefixed for the table."""
    name = info.name
    zones = by[1]
    fields = set(city.fields(name))
    columns = [c for c in _COLUMNS[info.kind] if c in fields]
    if info.kind == "building":
        table = _building_table(city, info, by, columns, floor_height_m)
        return table.add_prefix(f"{name}_") if name != "buildings" else table
    frame = city.layer(name, columns=columns)
    if info.kind == "sensor":
        return sensor_indicators(zones, frame).add_prefix(f"{name}_")
    if info.kind == "road":
        return network_lengths(zones, frame).rename(columns={"length_km": f"{name}_km"})
    lengths = network_lengths(zones, frame, by="network").rename(columns={"length_km": "km"})
    return lengths.add_prefix(f"{name}_")


def _building_table(
    city: Twin, info: LayerInfo, by: tuple[str, GeoDataFrame], columns: list[str], fh: float
) -> pd.DataFrame:
    """Building indicators: from the stored zone relation when it is current, else overlaid
    (in batches for a large layer in a GeoPackage)."""
    zones = by[1]
    table = _building_indicators_from_relation(city, info, by, columns, fh)
    if table is not None:
        return table
    if info.feature_count > STREAM_ABOVE and isinstance(getattr(city, "store", None), GpkgStore):
        batches = _layer_batches(city, info.name, columns)
        return building_indicators_in_batches(zones, batches, floor_height_m=fh)
    frame = city.layer(info.name, columns=columns)
    return building_indicators(zones, frame, floor_height_m=fh)


def _building_indicators_from_relation(
    city: Twin, info: LayerInfo, by: tuple[str, GeoDataFrame], columns: list[str], fh: float
) -> pd.DataFrame | None:
    """:func:`building_indicators` started from the stored building -> zone relation.

    None when the twin's store is not a GeoPackage, the layer is larger than
    :data:`WHOLE_WITH_RELATION_UP_TO` (its overlay streams in batches), or the
    relation is missing or older than either layer (the caller then overlays every building).

    Raises
    ------
    TwinBusyError
        When an import or build replaced the twin file while it was read.
    """
    # A snapshot's view (twin.query) has no store: it overlays what it holds in memory.
    store = getattr(city, "store", None)
    if not isinstance(store, GpkgStore) or info.feature_count > WHOLE_WITH_RELATION_UP_TO:
        return None
    path = city.path
    version = os.stat(path).st_ino
    zone_layer, zones = by
    stored = current_zone_set(city, info.name, zone_layer)
    if stored is None:
        return None
    rows = store.zone_rows(stored)
    wkb, values = read_footprints(path, info.name, columns)
    if os.stat(path).st_ino != version:
        raise TwinBusyError(
            f"{path.name} was changed by another writer while layer {info.name} was read: "
            "run the indicators again"
        )
    if len(rows) != len(wkb) or not np.array_equal(rows["row"].to_numpy(), np.arange(len(wkb))):
        return None
    zone_of = rows[["zone", "share", "n_zones"]]
    return building_indicators_from_wkb(zones, wkb, values, zone_of, floor_height_m=fh)
