"""Options, output and error handling shared by every ``twin`` command."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from twin.errors import (
    FeatureNotFoundError,
    InputDataError,
    LayerNotFoundError,
    StorageError,
    TwinError,
    TwinExistsError,
    TwinNotFoundError,
    UsageError,
)

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
    Path,
    typer.Argument(
        help="The twin file (a GeoPackage), e.g. chengdu.twin.gpkg.", show_default=False
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON, for scripts.")]


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
