"""Progress bars on a terminal, and imports driven by a mapping file."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pytest

import twin
from tests.conftest import GK105, TWIN_CLI, buildings_frame, run_cli


def test_library_reports_progress_stages(city: twin.Twin, tmp_path: Path) -> None:
    src = tmp_path / "b.gpkg"
    buildings_frame(3).to_file(src)
    seen: list[tuple[str, float]] = []
    city.import_layer(src, layer="b", kind="building", progress=lambda s, f: seen.append((s, f)))
    stages = [s for s, _ in seen]
    assert stages == ["reading", "validating", "reprojecting", "writing", "done"]
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def _run_on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(), b"".join(chunks).decode("utf-8", "replace")


def test_cli_shows_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "city.gpkg"
    twin.Twin.create(path, crs=GK105)
    src = tmp_path / "b.gpkg"
    buildings_frame(3).to_file(src)
    args = [TWIN_CLI, "import", str(path), str(src), "-l", "b", "-k", "building"]
    env = {**os.environ, "TWIN_PROGRESS_DELAY_S": "0", "COLUMNS": "120", "TERM": "xterm"}
    code, screen = _run_on_terminal(args, env)
    assert code == 0
    # The bar names each stage as it goes (and is cleared at the end).
    assert "reading" in screen and "writing" in screen
    # Piped output (a script) gets no bar at all.
    piped = subprocess.run(
        [*args[:-4], "-l", "c", "-k", "building"], capture_output=True, text=True, env=env
    )
    assert piped.returncode == 0
    assert "reading" not in piped.stdout + piped.stderr


MAPPING = """\
# two layers from one delivery
layers:
  buildings:
    source: delivery/b.gpkg
    kind: building
    id: 建筑编码
    fields: {层数: floors, 建筑高度: height_m}
  pois:
    source: delivery/p.csv
    kind: poi
    id: id
    src_crs: EPSG:4544
    set: {poi_type: hospital}
"""


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    delivery = tmp_path / "delivery"
    delivery.mkdir()
    buildings_frame(3).to_file(delivery / "b.gpkg")
    (delivery / "p.csv").write_text("id,x,y\nH1,505700,3392300\n", encoding="utf-8")
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING, encoding="utf-8")
    return path


def test_import_mapping_from_python(city: twin.Twin, mapping: Path) -> None:
    reports = city.import_mapping(mapping)
    assert [(r.layer, r.imported) for r in reports] == [("buildings", 3), ("pois", 1)]
    assert city.layer("buildings")["floors"].tolist() == [1, 2, 3]
    assert city.layer("pois")["poi_type"].tolist() == ["hospital"]
    assert city.imports()["field_mapping"].iloc[0] == {"层数": "floors", "建筑高度": "height_m"}


def test_import_mapping_from_cli_one_layer(tmp_path: Path, mapping: Path) -> None:
    path = tmp_path / "c.gpkg"
    run_cli("init", str(path), "--crs", GK105, check=True)
    result = run_cli("import", str(path), "--mapping", str(mapping), "-l", "pois", "--json")
    assert result.returncode == 0, result.stderr
    assert twin.Twin.open(path).layers == ["pois"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("layers: [1, 2]", "top-level 'layers:' dictionary"),
        ("layers:\n  b: {source: x.gpkg}", "needs at least 'source' and 'kind'"),
        ("layers:\n  b: {source: x.gpkg, kind: building, colour: red}", "unknown keys"),
        ("layers:\n  b: {source: x.gpkg, kind: building\n", "not valid YAML at line"),
    ],
)
def test_bad_mapping_files(city: twin.Twin, tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(twin.UsageError, match=message):
        city.import_mapping(path)
