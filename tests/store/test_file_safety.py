"""The twin file keeps its mode, owner and group; read-only twins and full disks (issue 12)."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import pytest

import twin
from tests.conftest import GK105, TWIN_CLI, buildings_frame
from twin import guards


def _seeded(tmp_path: Path) -> twin.Twin:
    city = twin.Twin.create(tmp_path / "city.gpkg", crs=GK105)
    src = tmp_path / "b.gpkg"
    buildings_frame(5).to_file(src)
    city.import_layer(src, layer="b", kind="building", id="建筑编码")
    return city


def _reimport(city: twin.Twin, tmp_path: Path, **options: object) -> twin.ImportReport:
    frame = buildings_frame(5)
    frame.loc[0, "层数"] = 12
    src = tmp_path / "b.gpkg"
    frame.to_file(src)
    return city.import_layer(src, layer="b", kind="building", id="建筑编码", **options)


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o660, 0o644, 0o664, 0o700, 0o620])
def test_every_write_keeps_the_file_mode(tmp_path: Path, mode: int) -> None:
    city = _seeded(tmp_path)
    os.chmod(city.path, mode)
    assert _reimport(city, tmp_path).changed == 1
    assert stat.S_IMODE(city.path.stat().st_mode) == mode
    city.build()
    assert stat.S_IMODE(city.path.stat().st_mode) == mode


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
@pytest.mark.parametrize(("uid", "gid"), [(1000, 1000), (65534, 65534), (0, 65534), (1234, 0)])
def test_every_write_keeps_owner_and_group(tmp_path: Path, uid: int, gid: int) -> None:
    city = _seeded(tmp_path)
    os.chown(city.path, uid, gid)
    _reimport(city, tmp_path)
    status = city.path.stat()
    assert (status.st_uid, status.st_gid) == (uid, gid)


@pytest.mark.parametrize("mode", [0o444, 0o400, 0o440, 0o000])
def test_read_only_twin_needs_force(tmp_path: Path, mode: int) -> None:
    city = _seeded(tmp_path)
    os.chmod(city.path, mode)
    before = city.path.read_bytes() if mode else None
    with pytest.raises(twin.errors.ReadOnlyTwinError, match="force=True"):
        _reimport(city, tmp_path)
    if before is not None:
        assert city.path.read_bytes() == before
    forced = twin.Twin.open(city.path, force=True)
    assert _reimport(forced, tmp_path).changed == 1
    assert stat.S_IMODE(city.path.stat().st_mode) == mode  # still read-only afterwards


def test_read_only_twin_from_the_cli_exits_2_then_force(tmp_path: Path) -> None:
    city = _seeded(tmp_path)
    os.chmod(city.path, 0o444)
    src = tmp_path / "b2.gpkg"
    frame = buildings_frame(5)
    frame.loc[0, "层数"] = 12
    frame.to_file(src)
    args = [TWIN_CLI, "import", str(city.path), str(src), "-l", "b", "-k", "building"]
    args += ["--id", "建筑编码"]
    refused = subprocess.run(args, capture_output=True, text=True)
    assert refused.returncode == 2 and "read-only" in refused.stderr
    forced = subprocess.run([*args, "--force"], capture_output=True, text=True)
    assert forced.returncode == 0, forced.stderr


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_a_copy_that_runs_out_of_room_leaves_nothing_behind(tmp_path: Path, share: float) -> None:
    """RLIMIT_FSIZE makes the working copy fail part-way, as a full disk would."""
    city = _seeded(tmp_path)
    before = city.path.read_bytes()
    src = tmp_path / "b2.gpkg"
    buildings_frame(5).to_file(src)
    args = [TWIN_CLI, "import", str(city.path), str(src), "-l", "b", "-k", "building"]
    result = subprocess.run(
        [*args, "--id", "建筑编码"],
        capture_output=True,
        text=True,
        preexec_fn=lambda: _limit_file_size(int(len(before) * share)),
    )
    assert result.returncode == 3, result.stderr
    assert "nothing was changed" in result.stderr
    assert city.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".city")) == [
        ".city.gpkg.lock"
    ]


def test_free_space_is_checked_before_a_copy(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    guards.check_free_space(tmp_path, 1024)
    with pytest.raises(twin.errors.StorageError, match="not enough free space"):
        guards.check_free_space(tmp_path, free + 1)
