"""The twin's sensors as SensorThings *Things*: uids, types, thresholds, units, geometry.

Every layer of kind ``sensor`` contributes; a reading may name its sensor by
uid (``sensors.WP000001``) or by the delivery's own id (``WP000001``) when
that id is unique across the sensor layers. Each sensor type observes one
default property (``water_pressure`` → ``pressure``); a reading that does not
say its property is of that one.

Examples
--------
>>> PROPERTIES["water_pressure"]
'pressure'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from twin.model import Twin

__all__ = ["PROPERTIES", "SensorRegistry"]

#: The property each sensor type observes by default.
PROPERTIES = {
    "water_pressure": "pressure",
    "gas_leak": "gas",
    "water_level": "level",
    "smoke": "smoke",
    "camera": "status",
}


@dataclass
class SensorRegistry:
    """The sensors of a twin (one GeoDataFrame indexed by uid, every sensor layer).

    Attributes
    ----------
    frame : geopandas.GeoDataFrame
        ``layer, classification, sensor_type, name, unit, threshold_low,
        threshold_high, property, geometry``, indexed by uid.
    """

    frame: gpd.GeoDataFrame
    _by_short: dict[str, str] = field(default_factory=dict, repr=False)

    _positions: dict[str, int] = field(default_factory=dict, repr=False)
    #: ``uid``, ``property``, ``unit`` of every sensor as numpy object arrays (by position)
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _names: pd.Index = field(default_factory=lambda: pd.Index([]), repr=False)
    _named: np.ndarray = field(default_factory=lambda: np.zeros(0, "int64"), repr=False)
    _rank: np.ndarray = field(default_factory=lambda: np.zeros(0, "int64"), repr=False)
    _by_rank: np.ndarray = field(default_factory=lambda: np.zeros(0, "int64"), repr=False)
    _slots: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        short = pd.Series(self.frame.index, index=self.frame.index).str.split(".", n=1).str[-1]
        unique = ~short.duplicated(keep=False)
        self._by_short = dict(zip(short[unique], short.index[unique], strict=True))
        uids = [str(u) for u in self.frame.index]
        where = {uid: i for i, uid in enumerate(uids)}
        # a delivery id names its sensor unless it is some sensor's uid
        self._positions = {s: where[u] for s, u in self._by_short.items() if s not in where}
        self._positions.update(where)
        self.arrays = {
            "uid": np.asarray(uids, dtype=object),
            **{
                c: self.frame[c].to_numpy(dtype=object)
                if c in self.frame
                else np.full(len(uids), None, dtype=object)
                for c in ("property", "unit")
            },
        }
        self._names = pd.Index(list(self._positions), dtype=object)
        self._named = np.fromiter(self._positions.values(), "int64", len(self._positions))
        self._by_rank = np.argsort(np.asarray(uids, dtype=str), kind="stable")
        self._rank = np.argsort(self._by_rank)  # the place of each uid in sorted order

    @classmethod
    def from_twin(cls, city: Twin) -> SensorRegistry:
        """Read every sensor layer of ``city``."""
        parts = []
        for info in city.layer_infos():
            if info.kind != "sensor":
                continue
            layer = city.layer(info.name)
            part = gpd.GeoDataFrame(
                {
                    "layer": info.name,
                    "classification": str(
                        getattr(info.classification, "value", info.classification)
                    ),
                    "sensor_type": _col(layer, "sensor_type", None),
                    "name": _col(layer, "name", None),
                    "unit": _col(layer, "unit", None),
                    "threshold_low": pd.to_numeric(_col(layer, "threshold_low", np.nan)),
                    "threshold_high": pd.to_numeric(_col(layer, "threshold_high", np.nan)),
                },
                geometry=layer.geometry,
                index=layer.index,
                crs=layer.crs,
            )
            parts.append(part)
        if parts:
            frame = gpd.GeoDataFrame(pd.concat(parts), crs=parts[0].crs)
        else:
            frame = gpd.GeoDataFrame(
                {c: [] for c in ("layer", "classification", "sensor_type", "name", "unit")},
                geometry=[],
                crs=city.crs,
            )
            frame["threshold_low"] = frame["threshold_high"] = pd.Series(dtype=float)
        frame.index.name = "uid"
        frame["property"] = frame["sensor_type"].map(PROPERTIES).fillna("value")
        return cls(frame)

    def __len__(self) -> int:
        return len(self.frame)

    def resolve(self, names: Iterable[str]) -> pd.Series:
        """The uid of each sensor name (uid or delivery id); NaN where unknown."""
        values = np.asarray(
            list(names) if not isinstance(names, pd.Series) else names, dtype=object
        )
        index = pd.Index(self.frame.index.to_numpy(dtype=object))
        pos = index.get_indexer(values)
        out = pd.Series(np.where(pos >= 0, index.to_numpy()[pos], None), dtype=object)
        miss = np.flatnonzero(pos < 0)
        if miss.size:
            text = pd.Series(values[miss], dtype=object).astype(str).str.strip()
            full = index.get_indexer(text.to_numpy(dtype=object))
            short = text.map(self._by_short).to_numpy(dtype=object)
            out.iloc[miss] = np.where(full >= 0, index.to_numpy()[full], short)
        return out.where(out.notna(), np.nan)

    def positions(self, names: Iterable[Any]) -> np.ndarray:
        """The position in :attr:`frame` of each sensor name (uid or delivery id; -1: unknown).

        Examples
        --------
        >>> import shapely
        >>> frame = gpd.GeoDataFrame({"sensor_type": ["smoke"]}, geometry=[shapely.Point(0, 0)],
        ...                          index=pd.Index(["sensors.SM1"], name="uid"))
        >>> SensorRegistry(frame).positions(["SM1", "sensors.SM1", " SM1 ", "x", None]).tolist()
        [0, 0, 0, -1, -1]
        """
        values = names if isinstance(names, np.ndarray) else np.asarray(list(names), object)
        hit: np.ndarray = np.zeros(0, dtype="int64")
        if values.size:
            hit = self._names.get_indexer(pd.Index(values.astype(object, copy=False)))
        out = np.where(hit >= 0, self._named[np.maximum(hit, 0)], -1)
        table = self._positions
        for i in np.flatnonzero(out < 0).tolist():  # a name with spaces, a number, …
            name = values[i]
            if name is not None and not (isinstance(name, float) and name != name):
                out[i] = table.get(str(name).strip(), -1)
        return out.astype("int64")

    def sorted_uids(self, positions: np.ndarray) -> list[str]:
        """The uids of the sensors at ``positions`` (repeats once), in sorted order.

        Examples
        --------
        >>> import shapely
        >>> frame = gpd.GeoDataFrame({"sensor_type": ["smoke", "smoke"]},
        ...     geometry=[shapely.Point(0, 0)] * 2, index=pd.Index(["s.B", "s.A"], name="uid"))
        >>> SensorRegistry(frame).sorted_uids(np.array([0, 1, 0]))
        ['s.A', 's.B']
        """
        seen = np.zeros(self._rank.size, dtype=bool)
        seen[self._rank[np.asarray(positions, dtype="int64")]] = True
        uids: list[str] = self.arrays["uid"][self._by_rank[seen]].tolist()
        return uids

    def stream_slots(self, store_id: str, prop: str) -> np.ndarray:
        """The datastream id of each sensor (by position) for ``prop`` in one live store,
        -1 where not known yet: an array the caller fills as it learns ids (a datastream's
        id never changes in its store).

        Examples
        --------
        >>> import shapely
        >>> frame = gpd.GeoDataFrame({"sensor_type": ["smoke"]}, geometry=[shapely.Point(0, 0)],
        ...                          index=pd.Index(["sensors.SM1"], name="uid"))
        >>> SensorRegistry(frame).stream_slots("store-1", "smoke").tolist()
        [-1]
        """
        key = (store_id, prop)
        if key not in self._slots:
            self._slots[key] = np.full(len(self.frame), -1, dtype="int64")
        return self._slots[key]

    def visible(self, classifications: Iterable[str]) -> gpd.GeoDataFrame:
        """The sensors of layers with one of ``classifications``."""
        return self.frame[self.frame["classification"].isin(list(classifications))]


def _col(layer: pd.DataFrame, name: str, default: object) -> pd.Series:
    if name in layer.columns:
        return layer[name]
    return pd.Series(default, index=layer.index)
