"""Options, output and error handling shared by every ``twin`` command.

The options several commands take (the pipe network's layers, the snapping
tolerance, the service distance, ``--out``) are defined here once, like
rasterio's ``rio/options.py``; defaults come from :mod:`twin.settings`. Command
modules import from here and never from each other.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from twin import settings
from twin.errors import (
    BuildNeeded,
    BuildNeededError,
    FeatureNotFoundError,
    InputDataError,
    LayerNotFoundError,
    StorageError,
    TwinError,
    TwinExistsError,
    TwinNotFoundError,
    UsageError,
)

if TYPE_CHECKING:
    import pandas as pd

# One table: which error gives which exit code (first match wins).
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (UsageError, 2),
    (TwinNotFoundError, 2),
    (TwinExistsError, 2),
    (LayerNotFoundError, 2),
    (FeatureNotFoundError, 2),
    (InputDataError, 3),
    (StorageError, 3),
    (TwinError, 1),
)

# Piped output is read by people in logs too: give tables room instead of 80 columns.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 160)


class State:
    """Global options given before the command (``twin -v import …``)."""

    verbosity = 0


TwinArg = Annotated[
    str,
    typer.Argument(
        help="The twin: a GeoPackage file (chengdu.twin.gpkg) or a PostGIS URL "
        "(postgresql://user@host:5432/db?schema=chengdu).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON, for scripts.")]

# -- utility networks ----------------------------------------------------------
NetworkOpt = Annotated[
    str | None,
    typer.Option(
        "--network",
        "-n",
        help="water, gas, drainage, heat or power (default: the --pipe uid's, else water).",
        show_default=False,
    ),
]
PipesOpt = Annotated[
    str | None,
    typer.Option(
        "--pipes",
        help="The pipe layer (default: the --pipe uid's layer, else 'pipes').",
        show_default=False,
    ),
]
ValvesOpt = Annotated[str, typer.Option("--valves", help="The valve layer (skipped if absent).")]
SourcesOpt = Annotated[str, typer.Option("--sources", help="The source layer (skipped if absent).")]
ToleranceOpt = Annotated[
    float, typer.Option("--tolerance", help="Snapping tolerance in metres.", min=0)
]
BuildingsOpt = Annotated[
    str,
    typer.Option("--buildings", help="Building layer served by the network ('' for none)."),
]
ServiceOpt = Annotated[
    float,
    typer.Option("--max-service", help="Buildings join the nearest pipe within this many metres."),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Write the result: .gpkg (layers) or .json (summary)."),
]

# -- plan compliance (twin check, twin check-3d) -------------------------------
OnlyBuildingsOpt = Annotated[
    str | None, typer.Option("--buildings", help="Building layer (default: the only one).")
]
TableOutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Write the table as a layer: .gpkg .geojson .parquet .csv …"),
]
#: Defaults of the options above (one source: :mod:`twin.settings`).
TOLERANCE_M = settings.TOLERANCE_M
SERVICE_DISTANCE_M = settings.SERVICE_DISTANCE_M


def exit_code_for(exc: BaseException) -> int:
    """The exit code of a domain error (1 for anything unexpected)."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on standard output (UTF-8, not ASCII-escaped)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def progress_callback(
    enabled: bool, delay_s: float | None = None
) -> tuple[Callable[[str, float], None], Callable[[], None]]:
    """A ``progress(stage, fraction)`` callback that shows a bar once work outlasts ``delay_s``.

    Returns the callback and a function that closes the bar.
    """
    if delay_s is None:
        delay_s = float(os.environ.get("TWIN_PROGRESS_DELAY_S", "2"))
    started = time.monotonic()
    bar: dict[str, Any] = {}

    def update(stage: str, fraction: float) -> None:
        if not enabled:
            return
        if "progress" not in bar and time.monotonic() - started >= delay_s:
            progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
            progress.start()
            bar["progress"] = progress
            bar["task"] = progress.add_task(stage, total=1.0)
        if "progress" in bar:
            bar["progress"].update(bar["task"], description=stage, completed=fraction)
            bar["progress"].refresh()  # stages are few: draw each one at once

    def close() -> None:
        if "progress" in bar:
            bar["progress"].stop()

    return update, close


def only_layer_of_kind(city: Any, kind: str, option: str) -> str:
    """The twin's one layer of ``kind``; several or none is a usage error naming ``option``."""
    names = city.layer_names(kind)
    if len(names) != 1:
        found = ", ".join(names) if names else "none"
        raise UsageError(f"say which {kind} layer with {option} ({kind} layers: {found})")
    return str(names[0])


def show_progress(json_output: bool) -> bool:
    """Progress bars go to a terminal only, never with ``--json`` or ``-q``."""
    return err.is_terminal and not json_output and State.verbosity >= 0


def network_layers(
    city: Any, pipe: str | None, pipes: str | None, network: str | None, default_network: str
) -> tuple[str, str]:
    """The pipe layer and network: given, else the ``--pipe`` uid's, else the defaults.

    ``--pipe gas_pipes.RQ000010`` alone gives layer ``gas_pipes`` and network ``gas``.
    """
    if pipe is not None and (pipes is None or network is None):
        layer, of_pipe = city.pipe_layer_of(pipe)
        return pipes or layer, network or of_pipe
    return pipes or "pipes", network or default_network


def load_network(
    twin_path: str | Path,
    network: str | None,
    pipes: str | None,
    valves: str,
    sources: str,
    tolerance: float,
    *,
    pipe: str | None = None,
    default_network: str = "water",
) -> tuple[Any, Any]:
    """Open the twin and build the network the options (or the ``--pipe`` uid) describe."""
    from twin.analyses import Twin
    from twin.network import pipe_network

    city = Twin.open(twin_path)
    layer, name = network_layers(city, pipe, pipes, network, default_network)
    net = pipe_network(
        city, name, pipes=layer, valves=valves, sources=sources, snap_tolerance_m=tolerance
    )
    return city, net


def service_links(city: Any, net: Any, layer: str, max_m: float) -> Any:
    """The buildings' service connections (the twin's stored relation when current)."""
    from twin.network import building_connections

    if not layer or (layer == "buildings" and layer not in city.layer_names()):
        return None
    return building_connections(city, net, buildings=layer, max_service_m=max_m)


def write_check_report(report: Any, output: Path | None, *, json_output: bool) -> bool:
    """Write a topology report's issues to ``output`` and, with ``--json``, print it.

    Returns True when the report was printed as JSON (nothing else to print).
    """
    if output is not None:
        report.issues.to_file(output)
    if not json_output:
        return False
    issues = report.issues.drop(columns="geometry")
    print_json(
        {
            **report.summary,
            "warnings": report.warnings,
            "details": issues.astype(object).where(issues.notna(), None).to_dict("records"),
        }
    )
    return True


#: The library's keyword -> the CLI's option, for the messages the library writes in
#: Python (``src_crs='EPSG:4490'``): every keyword a library message names.
OPTION_WORDS: dict[str, str] = {
    name: "--" + name.replace("_", "-")
    for name in (
        "allow_removals",
        "by",
        "cell_m",
        "classification",
        "coords",
        "crs",
        "encoding",
        "engine",
        "force",
        "kind",
        "max_access_m",
        "max_service_m",
        "overwrite",
        "point_crs",
        "replace",
        "source_layer",
        "speed",
        "src_crs",
        "where",
        "wkt",
        "x",
        "y",
    )
}
_KEYWORD = re.compile(
    r"(?<![\w.'\"-])(" + "|".join(OPTION_WORDS) + r")=(True\b|'([^']*)'|([\w.:-]+))?"
)
#: The library's advice to call a method -> the CLI's command.
_CALLS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Twin\.create\('([^']*)'\)"), r"`twin init \1`"),
    (re.compile(r"Twin\.create\(\)"), "`twin init`"),
    (re.compile(r"Twin\.imports\('([^']*)'\)"), r"`twin history --layer \1`"),
    (re.compile(r"Twin\.imports\(\)"), "`twin history`"),
    (re.compile(r"Twin\.import_layer\(\)"), "`twin import`"),
    (re.compile(r"Twin\.rollback\(\)"), "`twin rollback`"),
)
_MAPPING = re.compile(r"\b(fields|set|mapping)=\{'([^']*)': '?([^'}]*)'?\}")
#: The library's mapping keyword -> the CLI's repeated option.
_MAPPING_FLAGS = {"fields": "--map", "set": "--set", "mapping": "--column"}


def cli_wording(text: str) -> str:
    """A library message (which names Python keywords) in the CLI's words.

    ``src_crs='EPSG:4490'`` becomes ``--src-crs EPSG:4490``, ``replace=True``
    ``--replace``, a bare ``x=`` ``--x``; ``fields={'A': 'b'}`` becomes
    ``--map A=b`` and ``set={'b': VALUE}`` ``--set b=VALUE``; advice to call a
    method (``Twin.create('x.gpkg')``) becomes its command (``twin init x.gpkg``).
    Other ``name=value`` text (a filter such as ``poi_type=消防站``) is left alone.

    Examples
    --------
    >>> cli_wording("say which with src_crs= (e.g. src_crs='EPSG:4490')")
    'say which with --src-crs (e.g. --src-crs EPSG:4490)'
    >>> cli_wording("pass replace=True; x=/y= for a CSV; where 'poi_type=消防站' is fine")
    "pass --replace; --x/--y for a CSV; where 'poi_type=消防站' is fine"
    >>> cli_wording("map it with fields={'SOURCE_FIELD': 'floors'} or set={'floors': VALUE}")
    'map it with --map SOURCE_FIELD=floors or --set floors=VALUE'
    >>> cli_wording("raise max_service_m=80 or max_access_m=")
    'raise --max-service-m 80 or --max-access-m'
    >>> cli_wording("map them with mapping={'sensor': '设备编号'}; create it with crs='EPSG:…'")
    'map them with --column sensor=设备编号; create it with --crs EPSG:…'
    >>> cli_wording("no twin at c.gpkg: create one with Twin.create('c.gpkg')")
    'no twin at c.gpkg: create one with `twin init c.gpkg`'
    """

    def option(match: re.Match[str]) -> str:
        value = match.group(3) if match.group(3) is not None else match.group(4)
        flag = OPTION_WORDS[match.group(1)]
        return f"{flag} {value}" if value else flag

    for call, command in _CALLS:
        text = call.sub(command, text)
    text = _MAPPING.sub(lambda m: f"{_MAPPING_FLAGS[m.group(1)]} {m.group(2)}={m.group(3)}", text)
    return _KEYWORD.sub(option, text)


def as_option_error(exc: UsageError, **options: str) -> UsageError:
    """The library's error in the CLI's words: ``by='x'`` becomes ``--by x``.

    ``options`` map more keywords to options than :data:`OPTION_WORDS` has.

    Examples
    --------
    >>> str(as_option_error(UsageError("by='x' is wrong"), by="--by"))
    '--by x is wrong'
    """
    text = cli_wording(str(exc))
    for keyword, option in options.items():
        text = text.replace(f"{keyword}=", f"{option} ")
    return UsageError(text)


def build_wording(reason: BuildNeeded) -> str:
    """Why the stored relations cannot answer, with the ``twin build`` command that fixes it.

    Examples
    --------
    >>> build_wording(BuildNeeded("beyond_reach", "c.gpkg", parameter="max_service_m",
    ...                           value=80.0, built=50.0))
    'the last build connected buildings within 50 m of a pipe: run `twin build c.gpkg --max-service-m 80` to reach farther'
    >>> build_wording(BuildNeeded("stale", "c.gpkg", layers=("mains",)))
    'the relations are stale: mains changed since the last build; run `twin build c.gpkg`'
    """  # noqa: E501
    if not reason.advice:
        return reason.fact
    command = f"twin build {reason.twin}"
    if reason.code == "beyond_reach" and reason.parameter and reason.value is not None:
        flag = OPTION_WORDS.get(reason.parameter, reason.parameter)
        return f"{reason.fact}: run `{command} {flag} {reason.value:g}` to reach farther"
    return f"{reason.fact}{'; ' if reason.code == 'stale' else ': '}run `{command}`"


def error_wording(exc: BaseException) -> str:
    """The one-line message of ``exc`` in the CLI's words (options, commands).

    Examples
    --------
    >>> error_wording(BuildNeededError(BuildNeeded("no_build", "c.gpkg", what="relations")))
    'c.gpkg has no relations yet: run `twin build c.gpkg`'
    >>> error_wording(UsageError("a scheduler address needs engine='dask'"))
    'a scheduler address needs --engine dask'
    """
    if isinstance(exc, BuildNeededError):
        return build_wording(exc.reason)
    return cli_wording(str(exc)) if isinstance(exc, TwinError) else str(exc)


def connections_note(links: Any) -> str:
    """The service connections' note of a :func:`twin.network.building_connections` table,
    in the CLI's words (``computed for this analysis: … run `twin build …```)."""
    reason = links.attrs.get("service_connections_reason")
    if reason is None:
        return str(links.attrs["service_connections"])
    return f"computed for this analysis: {build_wording(reason)}"


# -- plan compliance tables ----------------------------------------------------
_COMPLIANCE_SHOWN = 20


def report_check(
    table: pd.DataFrame, output: Path | None, json_output: bool, *, layer: str
) -> None:
    """Write a compliance table to ``output`` (as ``layer``), then print it or its JSON."""
    from twin.io.export import write_layer

    if output is not None:
        write_layer(table, output, layer=layer)
    counts = {str(check): int(n) for check, n in table["check"].value_counts().items()}
    if json_output:
        rows = table.drop(columns="geometry").replace({float("nan"): None})
        print_json(
            {
                "counts": counts,
                "violations": rows.to_dict(orient="records"),
                "out": str(output) if output else None,
            }
        )
        return
    _print_compliance(table, counts, output)


def _print_compliance(table: pd.DataFrame, counts: dict[str, int], output: Path | None) -> None:
    import pandas as pd

    if table.empty:
        out.print("no violations: every parcel and building complies")
        return
    out.print(", ".join(f"{n} {check}" for check, n in counts.items()))
    grid = Table()
    for column in ("check", "uid", "parcel", "measured", "limit", "excess"):
        grid.add_column(
            column, justify="right" if column in ("measured", "limit", "excess") else "left"
        )
    for _, row in table.head(_COMPLIANCE_SHOWN).iterrows():
        grid.add_row(
            row["check"],
            row["uid"],
            str(row["parcel_uid"] or ""),
            *(("" if pd.isna(row[c]) else f"{row[c]:g}") for c in ("measured", "limit", "excess")),
        )
    out.print(grid)
    if len(table) > _COMPLIANCE_SHOWN:
        out.print(f"… and {len(table) - _COMPLIANCE_SHOWN} more (all of them with --json or --out)")
    if output is not None:
        out.print(f"wrote {len(table)} rows to {output}")
