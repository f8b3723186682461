"""Live sensing and the operations loop (物联感知, 一网统管): readings → alarms → events.

The twin file holds the city; live data (observations, events and their
history) lives in a store *beside* it, ``<twin>.live.sqlite`` (SQLite in WAL
mode), keyed by twin uids. An import replaces the GeoPackage atomically
(write a copy, rename it over the old one): a rename never touches another
file, so readings streamed during a re-import are neither lost nor blocked,
and they stay attached to the sensors because uids survive re-imports.

The shape follows OGC SensorThings: a sensor feature of the twin is the
*Thing*, a *Datastream* is one sensor × observed property × unit, an
*Observation* has a phenomenon time, a result time, a value and a quality.

Modules
-------
store
    :class:`LiveStore`: the SQLite store, latest values, windows, dead letters.
sensors
    :class:`SensorRegistry`: the twin's sensors (uids, types, thresholds, units).
ingest
    :func:`ingest`: the one validated path for files, HTTP and MQTT.
rules
    :class:`Rule`, :func:`load_rules`, :func:`evaluate`: thresholds and YAML rules.
events
    Events: open/update from alarms, lifecycle, history, escalation.
locate
    :class:`Locator`: building, parcel, grid, district, unit, nearest assets.
impact
    The impact an event carries (pipe break, gas leak, road closure).
vitals
    City vital signs per district and grid.
mqtt
    The MQTT ingester and replay.

Examples
--------
>>> from twin.sensing import LiveStore
>>> live = LiveStore.beside("chengdu.twin.gpkg")  # doctest: +SKIP
>>> live.latest().head()  # doctest: +SKIP
"""

from twin.sensing.events import EVENT_STATUSES, GRADES, Event
from twin.sensing.ingest import IngestReport, ingest, read_readings
from twin.sensing.rules import Rule, evaluate, load_rules, threshold_rules
from twin.sensing.sensors import SensorRegistry
from twin.sensing.store import LiveStore, live_path

__all__ = [
    "EVENT_STATUSES",
    "GRADES",
    "Event",
    "IngestReport",
    "LiveStore",
    "Rule",
    "SensorRegistry",
    "evaluate",
    "ingest",
    "live_path",
    "load_rules",
    "read_readings",
    "threshold_rules",
]
