"""``twin observe``: readings in (files, MQTT), latest values out, a day replayed to MQTT."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from twin.cli._common import JsonOpt, TwinArg, out, print_json
from twin.errors import UsageError
from twin.sensing.store import rows_of

sub = typer.Typer(
    help="Sensor readings (物联感知): ingest, latest values, replay.", no_args_is_help=True
)

ColumnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--column",
        help="Map a column: sensor=设备编号, time=采集时间, value=读数, property=, unit=, quality= "
        "(repeatable).",
    ),
]
RulesOpt = Annotated[
    Path | None, typer.Option("--rules", help="YAML rule file, besides the sensor thresholds.")
]


def parse_columns(items: list[str] | None) -> dict[str, str]:
    """``["sensor=设备编号"]`` -> ``{"sensor": "设备编号"}``."""
    mapping = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"--column {item!r} must be ours=theirs, e.g. sensor=设备编号")
        mapping[key.strip()] = value.strip()
    return mapping


@sub.command("import")
def import_cmd(
    twin_path: TwinArg,
    readings: Annotated[Path, typer.Argument(help="Readings file (.csv or .parquet).")],
    column: ColumnOpt = None,
    rules: RulesOpt = None,
    batch: Annotated[int, typer.Option("--batch", help="Rows per transaction.", min=1)] = 200_000,
    no_events: Annotated[
        bool, typer.Option("--no-events", help="Store only; do not run the rules.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Ingest a file of readings; bad rows go to the dead-letter table with their reason.

    Example: [bold]twin observe import city.gpkg day.csv --column sensor=设备编号
    --column time=采集时间 --column value=读数[/bold]
    """
    from twin.sensing.ingest import IngestReport, read_readings
    from twin.sensing.loop import OperationsLoop

    frame = read_readings(readings, parse_columns(column))
    loop = OperationsLoop.open(twin_path, rules_file=rules)
    total, changed = IngestReport(), []
    order = frame.sort_values("time", kind="stable") if not no_events else frame
    for begin in range(0, len(order), batch):
        part = order.iloc[begin : begin + batch]
        if no_events:
            from twin.sensing.ingest import ingest

            report = ingest(loop.store, loop.registry, part, source=f"file:{readings.name}")
        else:
            report, ids = loop.ingest(part, source=f"file:{readings.name}")
            changed += ids
        total.add(report)
    if not no_events:
        changed += loop.check_offline()
    summary = {**total.to_dict(), "events_changed": len(set(changed))}
    if json_output:
        print_json(summary)
        return
    rejected = ", ".join(f"{n} {why}" for why, n in total.rejected.items()) or "none"
    out.print(
        f"stored {total.stored:,} of {total.received:,} reading(s); rejected: {rejected}; "
        f"events opened or changed: {len(set(changed))}"
    )


@sub.command("latest")
def latest_cmd(
    twin_path: TwinArg,
    sensor: Annotated[
        list[str] | None, typer.Option("--sensor", help="Only this sensor uid (repeatable).")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """The latest value of every datastream.

    Example: [bold]twin observe latest city.gpkg --sensor sensors.WP000001[/bold]
    """
    from twin.sensing.store import LiveStore

    with LiveStore.beside(twin_path) as store:
        frame = store.latest(sensor)
    if json_output:
        frame["time"] = frame["time"].map(lambda t: t.isoformat().replace("+00:00", "Z"))
        print_json(frame.to_dict("records"))
        return
    table = Table()
    for name in ("sensor", "property", "value", "unit", "time (UTC)"):
        table.add_column(name)
    for row in rows_of(frame):
        table.add_row(row.sensor_uid, row.property, f"{row.value:g}", row.unit or "", str(row.time))
    out.print(table)


@sub.command("mqtt")
def mqtt_cmd(
    twin_path: TwinArg,
    broker: Annotated[str, typer.Option("--broker", help="HOST:PORT of the MQTT broker.")],
    topic: Annotated[
        str, typer.Option("--topic", help="Subscription, topics city/<sensor>/<property>.")
    ] = "city/+/+",
    client_id: Annotated[
        str, typer.Option("--client-id", help="Persistent session id (unacked messages resent).")
    ] = "twin-ingester",
    rules: RulesOpt = None,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Messages per commit.")] = 2000,
    flush_s: Annotated[float, typer.Option("--flush", help="Commit at least this often, s.")] = 0.2,
    stop_after: Annotated[
        float | None, typer.Option("--stop-after", help="Stop after this many idle seconds.")
    ] = None,
    watch_every: Annotated[
        float,
        typer.Option(
            "--watch-every",
            help="Seconds between checks for a re-import of the twin (its sensor layers are "
            "reloaded; also checked when an unknown sensor reports; 0: only then).",
            min=0,
        ),
    ] = 5.0,
) -> None:
    """Subscribe to a broker (QoS 1) and ingest; a message is acknowledged only once stored.

    A re-import of the sensor layers is picked up without a restart: new sensors
    are accepted, readings of removed ones become dead letters.

    Example: [bold]twin observe mqtt city.gpkg --broker 127.0.0.1:1883 --topic 'city/+/+'[/bold]
    """
    from twin.sensing.loop import OperationsLoop
    from twin.sensing.mqtt import MqttIngester, parse_broker
    from twin.sensing.reload import SensorWatch

    host, port = parse_broker(broker)
    loop = OperationsLoop.open(twin_path, rules_file=rules)
    ingester = MqttIngester(
        loop, host, port, topic, client_id=client_id, max_batch=max_batch, flush_s=flush_s
    )
    ingester.before_batch = SensorWatch(twin_path, rules_file=rules, every_s=watch_every)
    import signal

    # SIGTERM stops after the batch in hand: stored, acknowledged, its events raised.
    signal.signal(signal.SIGTERM, lambda *_: ingester.stop())
    total = ingester.run(idle_stop_s=stop_after)
    out.print(
        f"stored {total.stored:,} of {total.received:,} reading(s); rejected {total.rejected}"
    )


@sub.command("replay")
def replay_cmd(
    readings: Annotated[Path, typer.Argument(help="Readings file (.csv or .parquet).")],
    broker: Annotated[str, typer.Option("--broker", help="HOST:PORT of the MQTT broker.")],
    speed: Annotated[
        float, typer.Option("--speed", help="Replay speed (60: an hour a minute; 0: at once).")
    ] = 60.0,
    prefix: Annotated[str, typer.Option("--prefix", help="Topic prefix.")] = "city",
    column: ColumnOpt = None,
) -> None:
    """Publish a file of readings to MQTT in time order (QoS 1), at ``--speed`` times real time.

    Example: [bold]twin observe replay day.csv --broker 127.0.0.1:1883 --speed 60[/bold]
    """
    from twin.sensing.ingest import read_readings
    from twin.sensing.mqtt import parse_broker, replay

    host, port = parse_broker(broker)
    frame = read_readings(readings, parse_columns(column))
    sent = replay(frame, host, port, speed=speed, prefix=prefix)
    out.print(f"published {sent:,} reading(s)")


@sub.command("sample")
def sample_cmd(
    twin_path: TwinArg,
    output: Annotated[Path, typer.Argument(help="Where to write the day (.csv or .parquet).")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 7,
    json_output: JsonOpt = False,
) -> None:
    """Write a day of readings for the twin's sensors with planted incidents.

    Example: [bold]twin observe sample city.gpkg day.csv[/bold]
    """
    from twin.analyses import Twin
    from twin.sample.readings import day_of_readings

    frame, incidents = day_of_readings(Twin.open(twin_path), seed=seed)
    if output.suffix.lower() == ".parquet":
        frame.to_parquet(output, index=False)
    elif output.suffix.lower() == ".csv":
        frame.to_csv(output, index=False)
    else:
        raise UsageError(f"{output.name}: write .csv or .parquet")
    if json_output:
        print_json({"readings": len(frame), "incidents": incidents})
    else:
        out.print(f"wrote {len(frame):,} reading(s) to {output}; incidents: {', '.join(incidents)}")


def register(app: typer.Typer) -> None:
    app.add_typer(sub, name="observe")
