"""The sample twin with a day of readings ingested, shared by the sensing tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import twin
from tests.api.conftest import KEYS, sha256
from twin.sample.readings import day_of_readings
from twin.sensing.loop import OperationsLoop


@pytest.fixture(scope="package")
def built(sample_twin: twin.Twin) -> Path:
    """The session's built sample twin (root ``conftest.py``): do not write to it, copy it."""
    return sample_twin.path


@pytest.fixture(scope="package")
def day(built: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    return day_of_readings(twin.Twin.open(built))


@pytest.fixture
def fresh(built: Path, tmp_path: Path) -> Path:
    """A private copy of the built twin (no live store yet)."""
    return Path(shutil.copy(built, tmp_path / "chengdu.twin.gpkg"))


@dataclass
class OpsDay:
    twin: Path
    loop: OperationsLoop
    incidents: dict[str, Any]


@pytest.fixture(scope="package")
def ops_day(
    built: Path, day: tuple[pd.DataFrame, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> OpsDay:
    """The day ingested hour by hour through the operations loop (as a stream would)."""
    path = Path(shutil.copy(built, tmp_path_factory.mktemp("ops-day") / "chengdu.twin.gpkg"))
    frame, incidents = day
    loop = OperationsLoop.open(path)
    for _, part in frame.groupby(frame["time"].str[:13]):
        loop.ingest(part, source="test")
        loop.check_offline()
    return OpsDay(path, loop, incidents)


def sensing_keys_file(folder: Path) -> Path:
    """Keys for the sensing servers: ``ops`` is a writer (role ops-centre, reads restricted)."""
    path = folder / "sensing-keys.yaml"
    lines = ["roles:", "  ops-centre: restricted", "writers: [ops-centre]", "keys:"]
    for role, name, key_role in (
        ("internal", "planner-1", "internal"),
        ("restricted", "pipe-office", "restricted"),
        ("ops", "ops-desk-1", "ops-centre"),
    ):
        lines += [f"  - name: {name}", f"    role: {key_role}", f"    sha256: {sha256(KEYS[role])}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
