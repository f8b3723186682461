"""``twin vitals``: the city's vital signs (城市体征) per district or grid cell."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from twin.cli._common import JsonOpt, TwinArg, out, print_json


def vitals_cmd(
    twin_path: TwinArg,
    by: Annotated[str, typer.Option("--by", help="district or grid.")] = "district",
    series: Annotated[
        bool, typer.Option("--series", help="Hourly time series over the last day instead.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Sensors online, readings in the last hour, open and overdue events, time to dispose.

    Example: [bold]twin vitals city.gpkg --by grid --json[/bold]
    """
    from twin.analyses import Twin
    from twin.sensing.locate import Locator
    from twin.sensing.store import LiveStore
    from twin.sensing.vitals import vitals, vitals_series

    locator = Locator.from_twin(Twin.open(twin_path))
    with LiveStore.beside(twin_path) as store:
        frame = (vitals_series if series else vitals)(store, locator, by=by)
    frame = frame.reset_index()
    if json_output:
        if "time" in frame.columns:
            frame["time"] = frame["time"].astype(str)
        print_json(frame.to_dict("records"))
        return
    table = Table()
    for name in frame.columns:
        table.add_column(str(name))
    for row in frame.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("vitals")(vitals_cmd)
