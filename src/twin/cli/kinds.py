"""``twin kinds``: the layer kinds and the fields each one declares."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from twin.cli._common import JsonOpt, out, print_json
from twin.kinds import KINDS, get_kind


def kinds(
    kind: Annotated[
        str | None, typer.Argument(help="Show one kind's fields.", show_default=False)
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """List layer kinds (with CIM category and default classification), or one kind's fields.

    Example: [bold]twin kinds building[/bold]
    """
    chosen = [get_kind(kind)] if kind else list(KINDS.values())
    if json_output:
        print_json([asdict(k) for k in chosen])
        return
    if kind is None:
        table = Table()
        for column in ("kind", "geometry", "category", "classification", "description"):
            table.add_column(column)
        for k in chosen:
            table.add_row(
                k.name,
                k.geometry,
                f"{k.category.label_zh} {k.category.value}",
                k.classification.value,
                k.description,
            )
        out.print(table)
        return
    one = chosen[0]
    out.print(f"[bold]{one.name}[/bold] ({one.geometry}): {one.description}")
    table = Table()
    for column in ("field", "type", "unit", "required", "allowed", "description"):
        table.add_column(column)
    for spec in one.fields:
        allowed = ", ".join(spec.choices) if spec.choices else _range(spec.minimum, spec.maximum)
        table.add_row(
            spec.name,
            spec.dtype,
            spec.unit or "",
            "yes" if spec.required else "",
            allowed,
            spec.description,
        )
    out.print(table)


def _range(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return ""
    return f"{'' if low is None else f'{low:g}'} … {'' if high is None else f'{high:g}'}"


def register(app: typer.Typer) -> None:
    app.command("kinds")(kinds)
