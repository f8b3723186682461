"""A read-only OGC SensorThings API v1.1 view of the twin's sensors and the live store.

Entity sets and their ids:

=================== ======================================================
Things              a sensor feature of the twin (id: its uid)
Locations           where a Thing is, GeoJSON in WGS 84 (id: the Thing's uid)
FeaturesOfInterest  what its readings are of: the Thing's spot (id: the uid)
Sensors             a sensor type, the procedure (id: ``water_pressure`` …)
ObservedProperties  a property (id: ``pressure`` …)
Datastreams         one sensor × property × unit (integer id)
Observations        one reading (id: ``<datastream>-<phenomenon ms>``)
=================== ======================================================

Navigation: ``Things(id)/Datastreams|Locations``, ``Locations(id)/Things``,
``Datastreams(id)/Thing|Sensor|ObservedProperty|Observations``,
``Sensors(id)/Datastreams``, ``ObservedProperties(id)/Datastreams``,
``Observations(id)/Datastream|FeatureOfInterest``,
``FeaturesOfInterest(id)/Observations``. Query options: ``$filter`` (see
:mod:`twin.sensing.odata`), ``$orderby``, ``$top``, ``$skip``, ``$count``,
``$select`` (top-level properties) and ``$expand`` (one level of the same
navigation names, no nested options; Observations are not expanded: follow
the ``Observations@iot.navigationLink``).

Examples
--------
>>> parse_resource("Things('sensors.WP1')/Datastreams")
('Things', 'sensors.WP1', 'Datastreams')
>>> parse_resource("Datastreams(7)")
('Datastreams', 7, None)
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from twin.errors import FeatureNotFoundError, UsageError
from twin.sensing.odata import mask, parse_filter, parse_list, parse_orderby, to_sql
from twin.sensing.sensors import SensorRegistry
from twin.sensing.store import LiveStoreProtocol, from_ms, records, to_ms

__all__ = ["NAVIGATION", "SETS", "SensorThings", "parse_resource"]

SETS = (
    "Things",
    "Locations",
    "FeaturesOfInterest",
    "Sensors",
    "ObservedProperties",
    "Datastreams",
    "Observations",
)
#: (set, navigation) -> (target set, one entity?, target column, source column)
NAVIGATION: dict[tuple[str, str], tuple[str, bool, str, str]] = {
    ("Things", "Datastreams"): ("Datastreams", False, "Thing/id", "id"),
    ("Things", "Locations"): ("Locations", False, "id", "id"),
    ("Locations", "Things"): ("Things", False, "id", "id"),
    ("Datastreams", "Thing"): ("Things", True, "id", "Thing/id"),
    ("Datastreams", "Sensor"): ("Sensors", True, "id", "Sensor/id"),
    ("Datastreams", "ObservedProperty"): ("ObservedProperties", True, "id", "ObservedProperty/id"),
    ("Datastreams", "Observations"): ("Observations", False, "Datastream/id", "id"),
    ("Sensors", "Datastreams"): ("Datastreams", False, "Sensor/id", "id"),
    ("ObservedProperties", "Datastreams"): ("Datastreams", False, "ObservedProperty/id", "id"),
    ("Observations", "Datastream"): ("Datastreams", True, "id", "Datastream/id"),
    ("Observations", "FeatureOfInterest"): (
        "FeaturesOfInterest",
        True,
        "id",
        "FeatureOfInterest/id",
    ),
    ("FeaturesOfInterest", "Observations"): ("Observations", False, "FeatureOfInterest/id", "id"),
}
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
#: Entity tables by registry (a re-import makes a new registry), then by request shape.
_CACHE: dict[int, tuple[weakref.ref[SensorRegistry], dict[tuple[Any, ...], pd.DataFrame]]] = {}
_RESOURCE = re.compile(
    r"^(?P<set>[A-Za-z]+)(?:\((?P<id>'(?:[^']|'')*'|-?\d+)\))?(?:/(?P<nav>[A-Za-z]+))?/?$"
)


def parse_resource(path: str) -> tuple[str, Any, str | None]:
    """``Set``, ``Set(id)`` or ``Set(id)/Navigation`` -> ``(set, id or None, navigation)``."""
    match = _RESOURCE.match(path.strip("/"))
    if match is None or match.group("set") not in SETS:
        raise FeatureNotFoundError(
            f"there is no SensorThings resource {path!r}: use one of {', '.join(SETS)}, "
            "Set(id) or Set(id)/Navigation"
        )
    raw, nav = match.group("id"), match.group("nav")
    ident: Any = None
    if raw is not None:
        ident = raw[1:-1].replace("''", "'") if raw.startswith("'") else int(raw)
    if nav is not None:
        if ident is None:
            raise FeatureNotFoundError(
                f"{path!r}: navigation starts from one entity, e.g. Things('id')/Datastreams"
            )
        if (match.group("set"), nav) not in NAVIGATION:
            navs = sorted(n for s, n in NAVIGATION if s == match.group("set"))
            raise FeatureNotFoundError(
                f"{match.group('set')} has no navigation {nav!r}: use {', '.join(navs)}"
            )
    return match.group("set"), ident, nav


def _ms(value: Any) -> int:
    if isinstance(value, pd.Timestamp):
        return int(to_ms(value))
    stamp = pd.to_datetime(value, utc=True, errors="coerce") if isinstance(value, str) else pd.NaT
    if pd.isna(stamp):
        raise UsageError(f"$filter: {value!r} is not a time; write e.g. 2026-05-18T08:00:00Z")
    return int(to_ms(pd.Timestamp(stamp)))


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"$filter: {value!r} is not a number")
    return float(value)


def _text(value: Any) -> str:
    return str(value)


def _stream_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"$filter: a Datastream id is an integer, not {value!r}")
    return int(value)


#: Observation property path -> (SQL expression, literal converter).
OBSERVATION_COLUMNS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "result": ("o.value", _number),
    "phenomenonTime": ("o.phenomenon_ms", _ms),
    "resultTime": ("o.result_ms", _ms),
    "resultQuality": ("o.quality", _text),
    "Datastream/id": ("o.datastream", _stream_id),
    "Datastream/Thing/id": ("d.sensor_uid", _text),
    "Datastream/ObservedProperty/id": ("d.property", _text),
    "Datastream/ObservedProperty/name": ("d.property", _text),
    "FeatureOfInterest/id": ("d.sensor_uid", _text),
}
_OBSERVATION_ORDER = {
    "id": "o.datastream {0}, o.phenomenon_ms {0}",
    "phenomenonTime": "o.phenomenon_ms {0}",
    "resultTime": "o.result_ms {0}",
    "result": "o.value {0}",
    "Datastream/id": "o.datastream {0}",
}
_PROPERTY_DEFINITION = "https://citytwin.example/def/property/{}"


@dataclass
class Query:
    """The query options of one request (already read from the URL)."""

    filter: str | None = None
    orderby: str | None = None
    top: int = 100
    skip: int = 0
    count: bool = False
    select: str | None = None
    expand: str | None = None


@dataclass
class SensorThings:
    """The SensorThings entities of the sensors of ``layers``, over ``store``.

    Parameters
    ----------
    store : LiveStore
    registry : SensorRegistry
    layers : sequence of str
        The sensor layers the caller may read: no other sensor exists.
    base : str
        The service root URL (``…/sta/v1.1``) links are built on.
    """

    store: LiveStoreProtocol
    registry: SensorRegistry
    layers: Sequence[str]
    base: str
    total: int | None = None  # rows in the last collection asked for (paging links)
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    # -- tables of the small entity sets ---------------------------------
    def table(self, name: str) -> pd.DataFrame:
        """The rows of entity set ``name`` (not Observations), columns named by property path.

        Kept between requests for the same registry and the same visible layers
        (Datastreams: until the store has a new one).
        """
        if name not in self._tables:
            streams = self.store.max_datastream_id()  # datastreams are append-only
            key = (name, tuple(sorted(self.layers)), streams)
            cached = _tables_of(self.registry)
            if key not in cached:
                if len(cached) >= 32:
                    cached.clear()
                cached[key] = getattr(self, "_" + name.lower())()
            self._tables[name] = cached[key]
        return self._tables[name]

    @property
    def visible(self) -> list[str]:
        """Uids of the sensors of the visible layers."""
        return self._sensors_frame().index.tolist()

    def _sensors_frame(self) -> pd.DataFrame:
        frame = self.registry.frame
        return frame[frame["layer"].isin(list(self.layers))]

    def _things(self) -> pd.DataFrame:
        frame = self._sensors_frame()
        names = frame["name"].where(frame["name"].map(lambda v: isinstance(v, str)), None)
        return pd.DataFrame(
            {
                "id": frame.index.astype(str),
                "name": names.fillna(pd.Series(frame.index, index=frame.index)).astype(str),
                "description": frame["sensor_type"].astype(str)
                + " sensor of layer "
                + frame["layer"].astype(str),
                "properties/sensor_type": frame["sensor_type"].astype(str),
                "properties/layer": frame["layer"].astype(str),
            }
        ).reset_index(drop=True)

    def _locations(self) -> pd.DataFrame:
        frame = self._sensors_frame()
        points = frame.geometry.to_crs(4326) if len(frame) else frame.geometry
        table = self._things()[["id", "name"]].copy()
        table["description"] = "where " + table["id"] + " is"
        table["encodingType"] = "application/geo+json"
        table["lon"] = points.x.to_numpy() if len(frame) else []
        table["lat"] = points.y.to_numpy() if len(frame) else []
        return table

    def _featuresofinterest(self) -> pd.DataFrame:
        table = self._locations().copy()
        table["description"] = "the spot " + table["id"] + " observes"
        return table

    def _datastreams(self) -> pd.DataFrame:
        streams = self.store.datastreams(list(self.visible)).reset_index()
        types = self.registry.frame["sensor_type"]
        unit = streams["unit"].where(streams["unit"].map(lambda v: isinstance(v, str)), "")
        return pd.DataFrame(
            {
                "id": streams["id"].astype("int64"),
                "name": streams["sensor_uid"] + " " + streams["property"],
                "description": streams["property"] + " of " + streams["sensor_uid"],
                "unitOfMeasurement/symbol": unit.astype(str),
                "Thing/id": streams["sensor_uid"].astype(str),
                "Sensor/id": streams["sensor_uid"].map(types).astype(str),
                "ObservedProperty/id": streams["property"].astype(str),
                "properties/property": streams["property"].astype(str),
            }
        )

    def _sensors(self) -> pd.DataFrame:
        kinds = sorted(set(self._sensors_frame()["sensor_type"].astype(str)))
        return pd.DataFrame(
            {
                "id": kinds,
                "name": kinds,
                "description": [f"{k} sensors of the twin" for k in kinds],
                "encodingType": "text/plain",
            }
        )

    def _observedproperties(self) -> pd.DataFrame:
        props = sorted(set(self.table("Datastreams")["ObservedProperty/id"]))
        return pd.DataFrame(
            {
                "id": props,
                "name": props,
                "definition": [_PROPERTY_DEFINITION.format(p) for p in props],
                "description": [f"{p} as the sensors report it" for p in props],
            }
        )

    # -- resolving a request ---------------------------------------------
    def entity(self, name: str, ident: Any) -> dict[str, Any]:
        """The row of one entity (as a dict of property paths); 404 when it does not exist."""
        if name == "Observations":
            rows = self._observation_rows(_observation_key(ident), None, Query(top=1))[0]
        else:
            table = self.table(name)
            if name == "Datastreams" and not str(ident).lstrip("-").isdigit():
                raise FeatureNotFoundError(f"there is no Datastream {ident!r}: ids are integers")
            key = int(ident) if name == "Datastreams" else str(ident)
            rows = records(table[table["id"] == key])
        if not rows:
            raise FeatureNotFoundError(f"there is no {name[:-1]} {ident!r}")
        return rows[0]

    def get(self, path: str, query: Query) -> dict[str, Any]:
        """The answer to ``GET <base>/<path>?<query>``: one entity or a page of a collection.

        After a collection, :attr:`total` is how many entities it holds (all pages).
        """
        self.total = None
        name, ident, nav = parse_resource(path)
        if ident is not None:
            row = self.entity(name, ident)
            if nav is None:
                return self._render(name, [row], query)[0]
            target, single, column, source = NAVIGATION[(name, nav)]
            value = row[source]
            if single:
                return self._render(target, [self.entity(target, value)], query)[0]
            body, self.total = self.collection(target, query, where=(column, value))
            return body
        body, self.total = self.collection(name, query)
        return body

    def collection(
        self, name: str, query: Query, *, where: tuple[str, Any] | None = None
    ) -> tuple[dict[str, Any], int]:
        """A page of entity set ``name`` (only ``column == value`` when given), and its total."""
        if name == "Observations":
            rows, total = self._observation_rows(where, query.filter, query)
        else:
            rows, total = self._table_rows(name, where, query)
        body: dict[str, Any] = {}
        if query.count:
            body["@iot.count"] = total
        body["value"] = self._render(name, rows, query)
        return body, total

    def _table_rows(
        self, name: str, where: tuple[str, Any] | None, query: Query
    ) -> tuple[list[dict[str, Any]], int]:
        table = self.table(name)
        if where is not None:
            table = table[table[where[0]] == where[1]]
        if query.filter:
            table = table[mask(query.filter, parse_filter(query.filter), table)]
        if query.orderby:
            order = parse_orderby(query.orderby)
            unknown = [p for p, _ in order if p not in table.columns]
            if unknown:
                raise UsageError(
                    f"$orderby {query.orderby!r}: cannot order {name} by {', '.join(unknown)}; "
                    f"use {', '.join(c for c in table.columns if c not in ('lon', 'lat'))}"
                )
            table = table.sort_values(
                [p for p, _ in order], ascending=[a for _, a in order], kind="stable"
            )
        return records(table.iloc[query.skip : query.skip + query.top]), len(table)

    def _observation_rows(
        self, where: tuple[str, Any] | None, text: str | None, query: Query
    ) -> tuple[list[dict[str, Any]], int]:
        conditions: list[tuple[str, list[Any]]] = []
        hidden = set(self.registry.frame["layer"].unique()) - set(self.layers)
        sensors = self.table("Things")["id"].tolist() if hidden else None  # only the visible
        if where is not None and where[0] == "id":  # one observation: (datastream, ms)
            conditions.append(("o.datastream = ? AND o.phenomenon_ms = ?", list(where[1])))
        elif where is not None:
            sql, convert = OBSERVATION_COLUMNS[where[0]]
            conditions.append((f"{sql} = ?", [convert(where[1])]))
        if text:
            conditions.append(to_sql(text, parse_filter(text), OBSERVATION_COLUMNS))
        frame, total = self.store.observation_page(
            sensors,
            conditions,
            order=self._observation_order(query.orderby),
            top=query.top,
            skip=query.skip,
        )
        rows = [
            {
                "id": f"{int(r['datastream'])}-{int(r['phenomenon_ms'])}",
                "phenomenonTime": _iso(r["phenomenon_ms"]),
                "resultTime": _iso(r["result_ms"]),
                "result": float(r["value"]),
                "resultQuality": r["quality"],
                "Datastream/id": int(r["datastream"]),
                "FeatureOfInterest/id": str(r["sensor_uid"]),
            }
            for r in records(frame)
        ]
        return rows, total

    def _observation_order(self, text: str | None) -> str:
        if not text:
            return "o.phenomenon_ms DESC, o.datastream"
        parts = []
        for path, ascending in parse_orderby(text):
            if path not in _OBSERVATION_ORDER:
                raise UsageError(
                    f"$orderby {text!r}: Observations order by "
                    f"{', '.join(_OBSERVATION_ORDER)} (asc|desc)"
                )
            parts.append(_OBSERVATION_ORDER[path].format("ASC" if ascending else "DESC"))
        return ", ".join(parts)

    # -- JSON ------------------------------------------------------------
    def _render(self, name: str, rows: list[dict[str, Any]], query: Query) -> list[dict[str, Any]]:
        render = getattr(self, "_json_" + name.lower())
        out = [render(row) for row in rows]
        wanted: list[str] = []
        if query.expand:
            navs = {n for s, n in NAVIGATION if s == name}
            wanted = parse_list(query.expand, "$expand", navs - {"Observations"})
            for body, row in zip(out, rows, strict=True):
                for nav in wanted:
                    body[nav] = self._expanded(name, nav, row)
        if query.select:
            keep = parse_list(query.select, "$select", _SELECTABLE[name])
            keys = {"@iot.id" if k == "id" else k for k in keep} | set(wanted)
            out = [{k: v for k, v in body.items() if k in keys} for body in out]
        return out

    def _expanded(self, name: str, nav: str, row: dict[str, Any]) -> Any:
        target, single, column, source = NAVIGATION[(name, nav)]
        if single:
            return self._render(target, [self.entity(target, row[source])], Query())[0]
        page, _ = self.collection(target, Query(top=10_000), where=(column, row[source]))
        return page["value"]

    def _link(self, name: str, ident: Any) -> str:
        key = str(ident) if isinstance(ident, int) else "'" + str(ident).replace("'", "''") + "'"
        return f"{self.base}/{name}({key})"

    def _common(self, name: str, row: dict[str, Any]) -> dict[str, Any]:
        link = self._link(name, row["id"])
        body = {"@iot.id": row["id"], "@iot.selfLink": link}
        for (source, nav), _ in NAVIGATION.items():
            if source == name:
                body[f"{nav}@iot.navigationLink"] = f"{link}/{nav}"
        return body

    def _json_things(self, row: dict[str, Any]) -> dict[str, Any]:
        props = {"sensor_type": row["properties/sensor_type"], "layer": row["properties/layer"]}
        return {
            **self._common("Things", row),
            "name": row["name"],
            "description": row["description"],
            "properties": props,
        }

    def _json_locations(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._common("Locations", row),
            "name": row["name"],
            "description": row["description"],
            "encodingType": "application/geo+json",
            "location": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
        }

    def _json_featuresofinterest(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._common("FeaturesOfInterest", row),
            "name": row["name"],
            "description": row["description"],
            "encodingType": "application/geo+json",
            "feature": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
        }

    def _json_sensors(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._common("Sensors", row),
            "name": row["name"],
            "description": row["description"],
            "encodingType": "text/plain",
            "metadata": f"sensor type {row['id']} of the twin's sensor layers",
        }

    def _json_observedproperties(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._common("ObservedProperties", row),
            "name": row["name"],
            "definition": row["definition"],
            "description": row["description"],
        }

    def _json_datastreams(self, row: dict[str, Any]) -> dict[str, Any]:
        unit = row["unitOfMeasurement/symbol"]
        return {
            **self._common("Datastreams", row),
            "name": row["name"],
            "description": row["description"],
            "observationType": MEASUREMENT,
            "unitOfMeasurement": {"name": unit, "symbol": unit, "definition": ""},
            "properties": {"sensor": row["Thing/id"], "property": row["properties/property"]},
        }

    def _json_observations(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._common("Observations", row),
            "phenomenonTime": row["phenomenonTime"],
            "resultTime": row["resultTime"],
            "result": row["result"],
            "resultQuality": row["resultQuality"],
        }


_SELECTABLE: dict[str, set[str]] = {
    "Things": {"id", "name", "description", "properties"},
    "Locations": {"id", "name", "description", "encodingType", "location"},
    "FeaturesOfInterest": {"id", "name", "description", "encodingType", "feature"},
    "Sensors": {"id", "name", "description", "encodingType", "metadata"},
    "ObservedProperties": {"id", "name", "definition", "description"},
    "Datastreams": {"id", "name", "description", "observationType", "unitOfMeasurement"},
    "Observations": {"id", "phenomenonTime", "resultTime", "result", "resultQuality"},
}


def _tables_of(registry: SensorRegistry) -> dict[tuple[Any, ...], pd.DataFrame]:
    """The cached tables of ``registry`` (entries of registries gone are dropped)."""
    for key in [k for k, (ref, _) in _CACHE.items() if ref() is None]:
        del _CACHE[key]
    ref, tables = _CACHE.get(id(registry), (None, None))
    if ref is None or ref() is not registry or tables is None:
        tables = {}
        _CACHE[id(registry)] = (weakref.ref(registry), tables)
    return tables


def _observation_key(ident: Any) -> tuple[str, tuple[int, int]]:
    text = str(ident)
    ds, sep, ms = text.partition("-")
    if not sep or not ds.isdigit() or not ms.lstrip("-").isdigit():
        raise FeatureNotFoundError(
            f"there is no Observation {ident!r}: ids are '<datastream>-<milliseconds>'"
        )
    return "id", (int(ds), int(ms))


def _iso(ms: Any) -> str:
    return str(from_ms(int(ms)).isoformat().replace("+00:00", "Z"))
