"""A twin that is a well-formed GeoPackage but damaged inside: one clear error, exit 3, no 500.

The damage is generated: bytes overwritten at seeded random offsets inside the
pages of a layer table (found with SQLite's ``dbstat``), as a bad disk or a
cut copy leaves them. Damage that lands in a value SQLite cannot check (an
attribute's text) reads back silently; every damage that makes a read fail
must fail as :class:`twin.TwinFileError`.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

import twin
from tests.conftest import BUILDING_FIELDS, buildings_frame, run_cli

SEED = 12
CASES = 8


def _layer_pages(path: Path, table: str) -> tuple[int, list[int]]:
    with sqlite3.connect(path) as con:
        size = int(con.execute("PRAGMA page_size").fetchone()[0])
        pages = [int(r[0]) for r in con.execute("SELECT pageno FROM dbstat WHERE name=?", (table,))]
    return size, pages


def damaged_copies(source: Path, folder: Path, table: str) -> list[Path]:
    """``CASES`` copies of ``source``, each with 48 bytes overwritten inside a page of ``table``."""
    size, pages = _layer_pages(source, table)
    rng = random.Random(SEED)
    data = source.read_bytes()
    out = []
    for case in range(CASES):
        page = rng.choice(pages)
        offset = (page - 1) * size + rng.choice([0, 8, rng.randrange(16, size - 48)])
        damaged = bytearray(data)
        damaged[offset : offset + 48] = rng.randbytes(48)
        path = folder / f"damaged-{case}-p{page}-o{offset}.gpkg"
        path.write_bytes(bytes(damaged))
        out.append(path)
    return out


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("damage")
    city = twin.Twin.create(folder / "city.gpkg", crs="EPSG:4544")
    src = folder / "b.gpkg"
    buildings_frame(300).to_file(src)
    city.import_layer(
        src, layer="buildings", kind="building", id="建筑编码", fields=BUILDING_FIELDS
    )
    return city.path


@pytest.mark.slow
def test_damaged_layer_pages_give_one_line_and_exit_3(healthy: Path, tmp_path: Path) -> None:
    tally = {0: 0, 3: 0}
    for path in damaged_copies(healthy, tmp_path, "buildings"):
        result = run_cli("export", str(path), "buildings", str(tmp_path / "out.geojson"))
        assert result.returncode in (0, 3), (path.name, result.stderr)
        assert "Traceback" not in result.stderr
        if result.returncode == 3:
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            assert "is damaged" in lines[0] and "buildings" in lines[0]
            assert "restore it from a backup" in lines[0]
        tally[result.returncode] += 1
    # the seed damages structure and geometries often enough for the test to mean something
    assert tally[3] >= 3, tally


def test_the_library_raises_twin_file_error(healthy: Path, tmp_path: Path) -> None:
    failed = 0
    for path in damaged_copies(healthy, tmp_path, "buildings"):
        city = twin.Twin.open(path)
        try:
            frame = city.layer("buildings")
        except twin.TwinFileError as exc:
            assert str(path) in str(exc)
            failed += 1
        else:
            assert len(frame) <= 300
    assert failed >= 3
