"""The ``twin`` command line: one module per command, shared options in ``_common``."""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape

from twin.cli import (
    analyze,
    build_cmd,
    check3d_cmd,
    check_cmd,
    copy_cmd,
    events_cmd,
    export,
    flood_cmd,
    geocode_cmd,
    grid_cmd,
    heights_cmd,
    history,
    import_cmd,
    indicators_cmd,
    info,
    init,
    keys_cmd,
    kinds,
    network_cmd,
    observe_cmd,
    rollback_cmd,
    rules_cmd,
    sample,
    serve,
    vitals_cmd,
)
from twin.cli._common import State, err, error_wording, exit_code_for

app = typer.Typer(
    name="twin",
    help=(
        "Build and query a city information model (CIM, 城市信息模型): "
        "one GeoPackage with layered city data, provenance and history.\n\n"
        "Example: twin init city.gpkg && twin import city.gpkg parcels.shp "
        "--layer parcels --kind parcel --id 地块编码"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global_options(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More logging (-vv for debug).")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
) -> None:
    State.verbosity = -1 if quiet else verbose
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    logging.basicConfig(
        level=level,
        format="%(levelname)s %(name)s: %(message)s",
        handlers=[_StderrHandler()],
        force=True,
    )


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes, never a stream since closed
    (the entry point also runs in-process: notebooks, test runners)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


for module in (
    init,
    import_cmd,
    info,
    history,
    export,
    kinds,
    sample,
    build_cmd,
    grid_cmd,
    indicators_cmd,
    check_cmd,
    check3d_cmd,
    heights_cmd,
    network_cmd,
    analyze,
    flood_cmd,
    serve,
    geocode_cmd,
    observe_cmd,
    events_cmd,
    rules_cmd,
    vitals_cmd,
    keys_cmd,
    rollback_cmd,
    copy_cmd,
):
    module.register(app)


def main() -> None:
    """Entry point of the ``twin`` console script."""
    try:
        app()
    except Exception as exc:  # one line for the user, the traceback with -vv
        code = exit_code_for(exc)
        if State.verbosity >= 2:
            raise
        prefix = "error" if code != 1 else f"unexpected error ({type(exc).__name__})"
        text = error_wording(exc)
        err.print(f"[red]{prefix}:[/red] {escape(text)}", markup=True, highlight=False)
        sys.exit(code)
