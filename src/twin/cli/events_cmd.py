"""``twin events``: list, show and dispose of events (ack, dispatch, start, resolve, close)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from twin.cli._common import JsonOpt, TwinArg, out, print_json
from twin.sensing.store import rows_of

sub = typer.Typer(help="Events raised by the rules, and their disposal.", no_args_is_help=True)

WhoOpt = Annotated[str, typer.Option("--who", help="Who does it (kept in the history).")]
NoteOpt = Annotated[str | None, typer.Option("--note", help="A note for the history.")]
IdArg = Annotated[int, typer.Argument(help="The event id.")]


def _iso(value: Any) -> Any:
    return None if value is None or value != value else value.isoformat().replace("+00:00", "Z")


@sub.command("list")
def list_cmd(
    twin_path: TwinArg,
    status: Annotated[str | None, typer.Option("--status", help="new, dispatched, …")] = None,
    open_only: Annotated[
        bool, typer.Option("--open", help="Only events not yet resolved.")
    ] = False,
    event_type: Annotated[str | None, typer.Option("--type", help="e.g. pressure_drop.")] = None,
    district: Annotated[str | None, typer.Option("--district", help="District uid.")] = None,
    grid: Annotated[str | None, typer.Option("--grid", help="Grid cell uid.")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Events, newest first, filtered.

    Example: [bold]twin events list city.gpkg --open --type pressure_drop[/bold]
    """
    from twin.sensing.events import list_events
    from twin.sensing.store import LiveStore

    with LiveStore.beside(twin_path) as store:
        frame = list_events(
            store,
            status=status,
            open_only=open_only,
            event_type=event_type,
            district=district,
            grid=grid,
        )
    if json_output:
        for column in ("opened", "updated", "last", "cleared"):
            frame[column] = frame[column].map(_iso)
        print_json(frame.to_dict("records"))
        return
    table = Table()
    for name in ("id", "type", "grade", "status", "sensor", "grid", "unit", "opened (UTC)"):
        table.add_column(name)
    for row in rows_of(frame):
        table.add_row(
            str(row.id),
            row.event_type,
            row.grade,
            row.status + (" ⚠" if row.escalated else ""),
            row.sensor_uid,
            str(row.grid),
            str(row.unit),
            str(row.opened),
        )
    out.print(table)


@sub.command("show")
def show_cmd(twin_path: TwinArg, event_id: IdArg, json_output: JsonOpt = False) -> None:
    """One event: where, what it affects, and its history.

    Example: [bold]twin events show city.gpkg 12 --json[/bold]
    """
    from twin.sensing.events import get_event
    from twin.sensing.store import LiveStore

    with LiveStore.beside(twin_path) as store:
        event = get_event(store, event_id)
    data = event.to_dict()
    if json_output:
        print_json(data)
        return
    loc = event.location
    out.print(
        f"[bold]#{event.id} {event.event_type}[/bold] ({event.grade}) {event.status} — "
        f"{event.sensor_uid}, grid {loc.get('grid')}, unit {loc.get('unit')}, "
        f"district {loc.get('district_name') or loc.get('district')}"
    )
    if event.impact:
        summary = event.impact.get("summary", {})
        out.print(f"impact: {event.impact.get('analysis')} {summary}")
    for row in rows_of(event.history):
        out.print(f"  {row.time}  {row.action:<9} {row.status:<12} {row.who}  {row.note or ''}")


def _act(
    action: str,
    twin_path: Any,
    event_id: int,
    who: str,
    note: str | None,
    assignee: str | None,
    json_output: bool,
) -> None:
    from twin.sensing.events import transition
    from twin.sensing.store import LiveStore

    with LiveStore.beside(twin_path) as store:
        event = transition(store, event_id, action, who, assignee=assignee, note=note)
    if json_output:
        print_json(event.to_dict())
    else:
        out.print(f"event {event.id} is now {event.status}")


@sub.command("ack")
def ack_cmd(
    twin_path: TwinArg,
    event_id: IdArg,
    who: WhoOpt,
    note: NoteOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Acknowledge a new event.

    Example: [bold]twin events ack city.gpkg 12 --who ops-desk-1[/bold]
    """
    _act("ack", twin_path, event_id, who, note, None, json_output)


@sub.command("dispatch")
def dispatch_cmd(
    twin_path: TwinArg,
    event_id: IdArg,
    who: WhoOpt,
    to: Annotated[str, typer.Option("--to", help="The unit or worker it goes to.")],
    note: NoteOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Dispatch an event to a unit or a grid worker.

    Example: [bold]twin events dispatch city.gpkg 12 --who ops-desk-1 --to 网格员张三[/bold]
    """
    _act("dispatch", twin_path, event_id, who, note, to, json_output)


@sub.command("start")
def start_cmd(
    twin_path: TwinArg,
    event_id: IdArg,
    who: WhoOpt,
    note: NoteOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """The assignee starts work (dispatched → in progress).

    Example: [bold]twin events start city.gpkg 12 --who 网格员张三[/bold]
    """
    _act("start", twin_path, event_id, who, note, None, json_output)


@sub.command("resolve")
def resolve_cmd(
    twin_path: TwinArg,
    event_id: IdArg,
    who: WhoOpt,
    note: NoteOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Mark an event resolved (it stops being open).

    Example: [bold]twin events resolve city.gpkg 12 --who 网格员张三 --note 已关阀抢修[/bold]
    """
    _act("resolve", twin_path, event_id, who, note, None, json_output)


@sub.command("close")
def close_cmd(
    twin_path: TwinArg,
    event_id: IdArg,
    who: WhoOpt,
    note: NoteOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Close a resolved event (after review).

    Example: [bold]twin events close city.gpkg 12 --who ops-lead[/bold]
    """
    _act("close", twin_path, event_id, who, note, None, json_output)


@sub.command("report")
def report_cmd(
    twin_path: TwinArg,
    reports: Annotated[Path, typer.Argument(help="CSV of citizen reports (12345 hotline).")],
    who: Annotated[str, typer.Option("--who", help="Recorded as the events' opener.")] = "12345",
    json_output: JsonOpt = False,
) -> None:
    """Citizen reports become events (columns ticket, type, time, lon, lat, coords, place,
    address, text).

    A report with only an address is geocoded against the standard address layer;
    one whose address locates nothing (or only a road) opens no event and is kept
    as a dead letter with the reason.

    Example: [bold]twin events report city.gpkg reports.csv[/bold]
    """
    from twin.sensing.loop import OperationsLoop
    from twin.sensing.reports import locate_reports, read_reports

    loop = OperationsLoop.open(twin_path)
    done = locate_reports(loop, read_reports(reports), who=who, source=f"file:{reports.name}")
    if json_output:
        print_json(done.to_dict())
        return
    ids = done.events
    out.print(f"{len(ids)} event(s) opened or changed: {', '.join(map(str, ids))}")
    if done.rejected:
        out.print(f"{len(done.rejected)} report(s) not located, kept as dead letters:")
        for item in done.rejected:
            out.print(f"  {item['reason']}", markup=False)


@sub.command("escalate")
def escalate_cmd(twin_path: TwinArg, json_output: JsonOpt = False) -> None:
    """Escalate every event not acknowledged within its grade's deadline.

    Example: [bold]twin events escalate city.gpkg[/bold]
    """
    from twin.sensing.events import escalate
    from twin.sensing.store import LiveStore

    with LiveStore.beside(twin_path) as store:
        ids = escalate(store)
    if json_output:
        print_json({"escalated": ids})
    else:
        out.print(f"escalated {len(ids)} event(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(sub, name="events")
