"""Library errors speak Python (``src_crs='EPSG:4490'``); the CLI says the same in its
options (``--src-crs EPSG:4490``), the API in its parameters. Each case raises the error
through the library and through the real ``twin`` command and compares the two."""

from __future__ import annotations

from pathlib import Path

import pytest

import twin
from tests.conftest import run_cli


@pytest.fixture
def empty_twin(tmp_path: Path) -> twin.Twin:
    return twin.Twin.create(tmp_path / "t.gpkg", crs="EPSG:4544")


def _csv(tmp_path: Path) -> Path:
    src = tmp_path / "pois.csv"
    src.write_text("id,lon,lat\np1,104.06,30.66\np2,104.07,30.67\n", encoding="utf-8")
    return src


def test_missing_crs_names_the_keyword_in_python_and_the_option_on_the_cli(
    empty_twin: twin.Twin, tmp_path: Path
) -> None:
    src = _csv(tmp_path)
    with pytest.raises(twin.CRSError) as caught:
        empty_twin.import_layer(src, layer="pois", kind="poi", id="id", x="lon", y="lat")
    library = str(caught.value)
    assert "say which with src_crs= (e.g. src_crs='EPSG:4490' for CGCS2000" in library
    assert "--" not in library
    cli = run_cli(
        "import", str(empty_twin.path), str(src), "--layer", "pois", "--kind", "poi",
        "--id", "id", "--x", "lon", "--y", "lat",
    )  # fmt: skip
    assert cli.returncode == 3, cli.stderr
    assert "say which with --src-crs (e.g. --src-crs EPSG:4490 for CGCS2000" in cli.stderr
    assert "src_crs" not in cli.stderr


def test_values_and_flags_are_translated(empty_twin: twin.Twin, tmp_path: Path) -> None:
    src = _csv(tmp_path)
    with pytest.raises(twin.UsageError, match="classification='secret' is not a level"):
        empty_twin.import_layer(
            src, layer="pois", kind="poi", x="lon", y="lat", src_crs="EPSG:4326",
            classification="secret",
        )  # fmt: skip
    cli = run_cli(
        "import", str(empty_twin.path), str(src), "--layer", "pois", "--kind", "poi",
        "--x", "lon", "--y", "lat", "--src-crs", "EPSG:4326", "--classification", "secret",
    )  # fmt: skip
    assert cli.returncode == 2
    assert "--classification secret is not a level" in cli.stderr
    with pytest.raises(twin.UsageError, match=r"x= and y= go together"):
        empty_twin.import_layer(src, layer="pois", kind="poi", x="lon", src_crs="EPSG:4326")
    cli = run_cli(
        "import", str(empty_twin.path), str(src), "--layer", "pois", "--kind", "poi",
        "--x", "lon", "--src-crs", "EPSG:4326",
    )  # fmt: skip
    assert cli.returncode == 2 and "--x and --y go together" in cli.stderr
