"""``twin rules check``: which rules would fire on a window of stored readings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from twin.cli._common import JsonOpt, TwinArg, out, print_json
from twin.errors import UsageError
from twin.sensing.store import rows_of

sub = typer.Typer(
    help="Alarm rules (sensor thresholds and a YAML rule file).", no_args_is_help=True
)


def _time(text: str | None, option: str) -> pd.Timestamp | None:
    if text is None:
        return None
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a time; use ISO 8601") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@sub.command("check")
def check_cmd(
    twin_path: TwinArg,
    rules: Annotated[Path | None, typer.Option("--rules", help="YAML rule file.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="Window start (ISO 8601).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Window end (ISO 8601).")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Alarm episodes the rules give on the stored readings of a window (nothing is written).

    Example: [bold]twin rules check city.gpkg --rules rules.yaml --start 2026-05-18T00:00Z
    --end 2026-05-19T00:00Z[/bold]
    """
    from twin.sensing.loop import OperationsLoop

    loop = OperationsLoop.open(twin_path, rules_file=rules, with_impact=False)
    found = loop.check(_time(start, "--start"), _time(end, "--end"))
    if json_output:
        found = found.astype({"start": str, "end": str})
        print_json(found.to_dict("records"))
        return
    table = Table()
    for name in ("rule", "sensor", "event type", "grade", "start (UTC)", "end (UTC)", "value"):
        table.add_column(name)
    for row in rows_of(found):
        table.add_row(
            row.rule,
            row.sensor_uid,
            row.event_type,
            row.grade,
            str(row.start),
            "" if pd.isna(row.end) else str(row.end),
            f"{row.value:g}",
        )
    out.print(table)
    out.print(f"{len(found)} alarm episode(s) from {len(loop.rules)} rule(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(sub, name="rules")
