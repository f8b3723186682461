"""The 3D commands document themselves with an example."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from twin.cli import app


@pytest.mark.parametrize(
    "command", [["heights"], ["check-3d"], ["analyze", "flood"], ["import"], ["export"]]
)
def test_help_has_an_example(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Example" in text
    expected = {
        "heights": "--percentile",
        "check-3d": "--limit-surface",
        "flood": "--depth-raster",
        "import": "dem, dsm or raster",
        "export": "tileset.json",
    }[command[-1]]
    assert expected in text
