"""Statistics (统计): indicators by district, grid cell or parcel, over the visible layers.

The table is :func:`twin.zones.indicators_by_zone`, computed on the snapshot's
frames through a read-only view that shows only the layers the caller may
read: a public caller's grid statistics have buildings and roads, not pipe
kilometres or camera counts. Computed once per snapshot, zone layer and set of
visible layers.

Examples
--------
>>> from twin.query.statistics import statistics
>>> table = statistics(index, by="district", layers=["districts", "buildings"]).table
>>> len(table) == len(city.layer("districts"))
True
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import geopandas as gpd
import numpy as np

from twin.errors import LayerNotFoundError
from twin.indicators import sensing_radii
from twin.model import LayerInfo
from twin.query.common import GeometryOut, derived, json_value, visible_layers
from twin.query.index import CityIndex, IndexedLayer
from twin.zones import ZONE_KINDS, indicators_by_zone, zone_layer

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = ["Statistics", "VisibleTwin", "statistics", "zone_indicators"]


class VisibleTwin:
    """A read-only stand-in for :class:`~twin.Twin` over a snapshot's visible layers.

    Gives what :func:`twin.zones.indicators_by_zone` and
    :func:`twin.network.pipe_network` read (``layer_infos``, ``layer_names``,
    ``layer``) from memory. With ``rows``, a layer shows only those row
    positions (the neighbourhood of one zone).
    """

    def __init__(
        self,
        index: CityIndex,
        layers: Collection[str] | None,
        rows: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.index = index
        self.visible = {item.name: item for item in visible_layers(index, layers)}
        self.rows = rows or {}

    def layer_infos(self) -> list[LayerInfo]:
        return [item.info for item in self.visible.values()]

    def layer_names(self, kind: str | None = None) -> list[str]:
        return [n for n, item in self.visible.items() if kind is None or item.kind == kind]

    def fields(self, name: str) -> list[str]:
        frame = self._item(name).frame
        return [str(c) for c in frame.columns if c not in ("uid", frame.geometry.name)]

    def _item(self, name: str) -> IndexedLayer:
        if name not in self.visible:
            listing = ", ".join(self.visible) or "none"
            raise LayerNotFoundError(f"the twin has no layer {name!r}; its layers: {listing}")
        return self.visible[name]

    def layer(self, name: str, *, columns: list[str] | None = None, **_: Any) -> gpd.GeoDataFrame:
        """The layer's frame (only ``columns`` and the geometry when given)."""
        frame = self._item(name).frame
        if name in self.rows:
            frame = frame.iloc[self.rows[name]]
        if columns is not None:
            frame = frame[[*columns, frame.geometry.name]]
        return frame


@dataclass
class Statistics:
    """Indicators by zone: the table (a GeoDataFrame indexed by zone uid) and its layers."""

    by: str
    layers: list[str]
    table: gpd.GeoDataFrame

    def records(self, out: GeometryOut | None) -> list[dict[str, Any]]:
        """The rows as GeoJSON Features (geometry omitted when ``out`` is None)."""
        values = self.table.drop(columns=self.table.geometry.name)
        geometries = (
            out.many(np.asarray(self.table.geometry.array, dtype=object))
            if out is not None
            else [None] * len(values)
        )
        columns = [(str(c), values[c].to_numpy(dtype=object)) for c in values.columns]
        return [
            {
                "type": "Feature",
                "id": str(uid),
                "geometry": geometry,
                "properties": {name: json_value(cells[i]) for name, cells in columns},
            }
            for i, (uid, geometry) in enumerate(zip(values.index, geometries, strict=True))
        ]


def statistics(
    index: CityIndex,
    *,
    by: str = "grid",
    layers: Collection[str] | None = None,
    floor_height_m: float = 3.0,
) -> Statistics:
    """Indicators of every visible layer by zone of ``by`` (cached per snapshot).

    Parameters
    ----------
    index : CityIndex
        The twin snapshot.
    by : str, default "grid"
        ``grid``, ``district``, ``parcel`` (the one layer of that kind) or a zone layer name.
    layers : collection of str, optional
        The layers the caller may read (None: all); ``by`` must be one of them.
    floor_height_m : float, default 3
        Storey height where only floors or only height is known.

    Returns
    -------
    Statistics
    """
    view = VisibleTwin(index, layers)
    name = zone_layer(cast("Twin", view), by)  # its errors name by=, the API's parameter too
    key = ("statistics", name, tuple(view.visible), float(floor_height_m))

    def build() -> Statistics:
        table = indicators_by_zone(cast("Twin", view), name, floor_height_m=floor_height_m)
        return Statistics(by=name, layers=list(view.visible), table=table)

    return derived(index, key, build)


def _reach(index: CityIndex, layer: IndexedLayer) -> float:
    """How far from a zone a feature of ``layer`` can change the zone's indicators."""
    if layer.kind != "sensor":
        return 0.0

    def build() -> float:
        radii = sensing_radii(layer.frame)
        return float(np.nanmax(radii.to_numpy())) if radii.notna().any() else 0.0

    return derived(index, ("reach", layer.name), build)


def zone_indicators(
    index: CityIndex,
    zone: IndexedLayer,
    uid: str,
    *,
    layers: Collection[str] | None = None,
    floor_height_m: float = 3.0,
) -> tuple[dict[str, Any], np.ndarray, dict[str, np.ndarray]]:
    """Indicators of one zone, computed from its neighbourhood only.

    The rows used: for every visible layer, the features within reach of the
    zone (sensors: within their largest sensing radius); for the zone layer,
    the zone and every zone touching one of those features, so a feature
    split between zones is assigned exactly as over the whole layer. The
    values are those :func:`statistics` gives the zone.

    Returns
    -------
    indicators : dict
        Column -> value for the zone.
    zone_rows : ndarray
        Positions in the zone layer used (the zone and its competitors).
    rows : dict
        Layer name -> positions used.
    """
    row = zone.position(uid)
    geometry = zone.geometries[row]
    rows: dict[str, np.ndarray] = {}
    competitors = {row}
    for layer in visible_layers(index, layers):
        if layer.name == zone.name or layer.kind in ZONE_KINDS:
            continue
        rows[layer.name] = layer.within_distance(geometry, _reach(index, layer))
        for g in layer.geometries[rows[layer.name]]:
            competitors.update(int(p) for p in zone.query(g, predicate="intersects"))
    zone_rows = np.array(sorted(competitors), dtype=np.intp)
    rows[zone.name] = zone_rows
    shown = [n for n in rows if layers is None or n in layers]
    view = VisibleTwin(index, shown, rows)
    table = indicators_by_zone(cast("Twin", view), zone.name, floor_height_m=floor_height_m)
    values = table.drop(columns=table.geometry.name)
    position = values.index.get_loc(uid)
    found = {str(c): json_value(values[c].to_numpy(dtype=object)[position]) for c in values.columns}
    return found, zone_rows, rows
