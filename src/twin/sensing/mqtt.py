"""MQTT: the ingester (subscribe, store, then acknowledge) and the replay of a readings file.

Topics are ``<prefix>/<sensor>/<property>``; a payload is JSON
``{"time": "2026-05-18T01:00:00Z", "value": 0.31}`` (``quality`` optional) or
a bare number (timed on arrival).

The ingester subscribes with QoS 1 on a persistent session (a fixed client
id, ``clean_session=False``) and acknowledges a message only after the batch
holding it is committed to the live store. Killed at any point, it loses
nothing the broker was told it had: the broker resends every unacknowledged
message to the restarted ingester, and a resent reading already stored is a
``duplicate`` dead letter, never a second row.

The broker must not drop queued messages: Mosquitto's defaults cap a
session's queue at 1000 messages and its in-flight window at 20; run it with
``max_queued_messages 0`` and ``max_inflight_messages 0`` (no limits; see
:func:`mosquitto_config`).

Examples
--------
>>> parse_broker("127.0.0.1:1883")
('127.0.0.1', 1883)
>>> topic_parts("city/WP000001/pressure")
('WP000001', 'pressure')
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from twin.errors import UsageError
from twin.sensing.ingest import IngestReport
from twin.sensing.loop import OperationsLoop

__all__ = [
    "MqttIngester",
    "mosquitto_config",
    "parse_broker",
    "payload_row",
    "readings_of",
    "replay",
    "topic_parts",
]

log = logging.getLogger(__name__)


def parse_broker(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> ``(host, port)``; :class:`UsageError` when malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"broker {text!r} must be HOST:PORT, e.g. 127.0.0.1:1883")
    return host, int(port)


def topic_parts(topic: str) -> tuple[str, str | None]:
    """The sensor and property of a topic ``<prefix>/<sensor>/<property>``."""
    parts = topic.split("/")
    if len(parts) >= 3:
        return parts[-2], parts[-1]
    return parts[-1], None


def payload_row(topic: str, payload: bytes, received: pd.Timestamp) -> dict[str, Any]:
    """One reading row (as :func:`twin.sensing.ingest.normalise` takes it) from a message."""
    sensor, prop = topic_parts(topic)
    text = payload.decode("utf-8", errors="replace").strip()
    row: dict[str, Any] = {
        "sensor": sensor,
        "property": prop,
        "time": received.isoformat(),
        "value": text,
        "quality": None,
        "unit": None,
    }
    try:
        data = json.loads(text)
    except ValueError:
        return row
    if isinstance(data, dict):
        row["value"] = data.get("value", data.get("result"))
        row["time"] = data.get("time", data.get("phenomenonTime"))
        row["quality"] = data.get("quality")
    else:
        row["value"] = data
    return row


def mosquitto_config(port: int, persistence_dir: str | None = None) -> str:
    """A Mosquitto 2 configuration for the ingester: loopback, no queue or in-flight caps."""
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "max_queued_messages 0",
        "max_inflight_messages 0",
    ]
    if persistence_dir:
        lines += ["persistence true", f"persistence_location {persistence_dir.rstrip('/')}/"]
    return "\n".join(lines) + "\n"


Message = tuple[int, int, str, bytes, float]  # mid, qos, topic, payload, received (epoch s)


@dataclass
class MqttIngester:
    """Subscribes to ``topic`` and feeds the operations loop; acks after commit.

    Threads that never wait on each other's slow work: paho's network loop
    only queues each message; the writer (the thread calling :meth:`run`)
    takes what is queued, at most ``max_batch`` messages or what arrived
    within ``flush_s`` of the first, stores it in one transaction and then
    acknowledges it; the rules thread advances the rules over each stored
    batch and raises events (impact analyses included); a fourth runs the
    offline check and escalation every ``housekeeping_s``.
    """

    loop: OperationsLoop
    host: str
    port: int
    topic: str = "city/+/+"
    client_id: str = "twin-ingester"
    max_batch: int = 2000
    flush_s: float = 0.2
    housekeeping_s: float = 10.0
    on_batch: Callable[[IngestReport, list[int]], None] | None = None
    _queue: queue.SimpleQueue[Message] = field(default_factory=queue.SimpleQueue, repr=False)
    _stored: queue.SimpleQueue[IngestReport | None] = field(
        default_factory=queue.SimpleQueue, repr=False
    )
    #: Called with the loop and each batch before it is stored; returns the loop to use
    #: (e.g. :class:`twin.sensing.reload.SensorWatch`, reopening it after a re-import).
    before_batch: Callable[[OperationsLoop, pd.DataFrame], OperationsLoop] | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    #: Set once the broker has confirmed the subscription (messages published after it arrive).
    subscribed: threading.Event = field(default_factory=threading.Event, repr=False)

    def _client(self) -> Any:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            manual_ack=True,
        )
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        put = self._queue.put

        def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            c.subscribe(self.topic, qos=1)

        def on_message(c: Any, userdata: Any, msg: Any) -> None:
            put((msg.mid, msg.qos, msg.topic, msg.payload, time.time()))

        client.on_connect = on_connect
        client.on_message = on_message
        client.on_subscribe = lambda *args: self.subscribed.set()
        return client

    def stop(self) -> None:
        """Ask :meth:`run` to return after its current batch."""
        self._stop.set()

    def run(self, *, idle_stop_s: float | None = None) -> IngestReport:
        """Ingest until :meth:`stop` (or ``idle_stop_s`` without a message)."""
        # paho's network thread reads every message in Python: let it take the GIL from the
        # writer and the rules thread often (the default, 5 ms, starves it at thousands/s).
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, 0.0005))
        rules = threading.Thread(target=self._rules, name="twin-rules", daemon=True)
        rules.start()
        done = threading.Event()
        house = threading.Thread(
            target=self._housekeeping, args=(done,), name="twin-housekeeping", daemon=True
        )
        house.start()
        client = self._client()
        client.connect(self.host, self.port, keepalive=30)
        client.loop_start()
        total = IngestReport()
        last_message = time.monotonic()
        try:
            while not self._stop.is_set():
                batch = self._collect()
                now = time.monotonic()
                if batch:
                    last_message = now
                    report = self._commit(client, batch)
                    total.add(report)
                    self._stored.put(report)
                elif idle_stop_s is not None and now - last_message >= idle_stop_s:
                    break
        finally:
            client.loop_stop()
            client.disconnect()
            self._stored.put(None)
            done.set()
            rules.join()
            house.join()
            sys.setswitchinterval(switch)
        return total

    def _collect(self) -> list[Message]:
        """The next batch: what is queued, up to ``max_batch`` messages or ``flush_s`` after
        the first (waits up to ``flush_s`` for a first message)."""
        try:
            first = self._queue.get(timeout=self.flush_s)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.flush_s
        get = self._queue.get_nowait
        while len(batch) < self.max_batch:
            try:
                batch.append(get())
            except queue.Empty:
                if time.monotonic() >= deadline:
                    break
                time.sleep(min(0.005, self.flush_s / 4))
        return batch

    def _commit(self, client: Any, batch: list[Message]) -> IngestReport:
        frame = readings_of(batch)
        if self.before_batch is not None:
            self.loop = self.before_batch(self.loop, frame)
        report = self.loop.store_batch(frame, source="mqtt")
        for mid, qos, *_ in batch:  # stored (or dead-lettered): now the broker may forget it
            if qos > 0:
                client.ack(mid, qos)
        return report

    def _rules(self) -> None:
        """The rules thread: events from each stored batch, in order."""
        try:
            self.loop.warm()  # built while the first readings are stored, not at the alarm
        except Exception:
            log.exception("cannot locate sensors")
        while True:
            report = self._stored.get()
            if report is None:
                return
            try:
                changed = self.loop.raise_for(report)
                if self.on_batch is not None:
                    self.on_batch(report, changed)
            except Exception:  # a failed rule run must not stop the ingest; it is logged
                log.exception("rules on an MQTT batch failed")

    def _housekeeping(self, done: threading.Event) -> None:
        """Every ``housekeeping_s``: the offline check and escalation (their own thread, so
        a sweep over every sensor never delays the events of the batches arriving)."""
        while not done.wait(self.housekeeping_s):
            try:
                self.loop.check_offline()
                self.loop.escalate()
            except Exception:
                log.exception("offline check or escalation failed")


def readings_of(batch: list[Message]) -> pd.DataFrame:
    """The readings (columns as :func:`twin.sensing.ingest.normalise` takes them) of a batch
    of messages ``(mid, qos, topic, payload, received epoch s)``.

    Examples
    --------
    >>> message = (1, 1, "city/G1/gas", b'{"time": "2026-05-18T01:00:00Z", "value": 3}', 0.0)
    >>> row = readings_of([message]).iloc[0]
    >>> row["sensor"], row["property"], row["time"], int(row["value"])
    ('G1', 'gas', '2026-05-18T01:00:00Z', 3)
    """
    import orjson

    sensors, props, times, values, qualities = [], [], [], [], []
    loads = orjson.loads
    for _, _, topic, payload, received in batch:
        sensor, prop = topic_parts(topic)
        sensors.append(sensor)
        props.append(prop)
        stamp: Any = None
        quality = None
        try:
            data = loads(payload)
        except orjson.JSONDecodeError:
            data = payload.decode("utf-8", errors="replace").strip()
        if isinstance(data, dict):
            value = data.get("value", data.get("result"))
            stamp = data.get("time", data.get("phenomenonTime"))
            quality = data.get("quality")
        else:
            value = data
        if stamp is None:  # a bare value is timed on arrival
            stamp = pd.Timestamp(received, unit="s", tz="UTC").isoformat()
        times.append(stamp)
        values.append(value)
        qualities.append(quality)
    return pd.DataFrame(
        {
            "sensor": sensors,
            "property": props,
            "time": times,
            "value": values,
            "quality": qualities,
            "unit": [None] * len(batch),
        },
        dtype=object,  # plain objects: no round trip through Arrow strings
    )


#: Most messages :func:`replay` leaves unacknowledged (MQTT message ids wrap at 65,535).
REPLAY_WINDOW = 30_000


def replay(
    readings: pd.DataFrame,
    host: str,
    port: int,
    *,
    speed: float = 60.0,
    prefix: str = "city",
    client_id: str = "twin-replay",
) -> int:
    """Publish readings to MQTT in time order with QoS 1, ``speed`` times faster than real time.

    Returns the number of messages the broker acknowledged.
    """
    import paho.mqtt.client as mqtt

    if speed < 0:
        raise UsageError(f"speed={speed} must be >= 0 (0: as fast as possible)")
    times = pd.to_datetime(readings["time"], utc=True, errors="coerce", format="ISO8601")
    frame = readings.assign(_t=times).sort_values("_t", kind="stable")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, port, keepalive=30)
    client.loop_start()
    infos: list[Any] = []
    start_wall, start_data = time.monotonic(), frame["_t"].min()
    try:
        for stamp, group in frame.groupby("_t", sort=True):
            if speed > 0:
                due = (stamp - start_data).total_seconds() / speed
                wait = due - (time.monotonic() - start_wall)
                if wait > 0:
                    time.sleep(wait)
            for row in group.itertuples(index=False):
                payload = json.dumps({"time": str(row.time), "value": row.value}, default=str)
                prop = row.property if isinstance(row.property, str) and row.property else "value"
                if len(infos) >= REPLAY_WINDOW:  # message ids are 16 bits: never 65,536 pending
                    infos[-REPLAY_WINDOW].wait_for_publish(timeout=60)
                infos.append(client.publish(f"{prefix}/{row.sensor}/{prop}", payload, qos=1))
        for info in infos:
            info.wait_for_publish(timeout=60)
    finally:
        client.loop_stop()
        client.disconnect()
    return sum(1 for info in infos if info.is_published())
