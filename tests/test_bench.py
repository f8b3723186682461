"""The benchmark runner works end to end on a small city (figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Every scenario but the HTTP ones, which need wrk and a pygeoapi virtualenv of their
# own (bench/api.py installs both); tests/api serves and reads the twin over HTTP.
LOCAL = [
    "import",
    "reimport",
    "load",
    "segments",
    "segments-full",
    "pipe-break",
    "criticality",
    "relations",
    "build",
    "build-tiled",
    "road-service",
    "road-closure",
    "observe-ingest",
]


@pytest.mark.slow
def test_bench_runner_small_city() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--buildings",
            "2000",
            "--json",
            "--only",
            ",".join(LOCAL),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    by_name = {r["scenario"]: r for r in rows}
    assert list(by_name) == LOCAL
    for name in ("import", "reimport", "load"):
        row = by_name[name]
        assert row["same_answer"], row  # ours and the peer imported / loaded the same features
        assert row["ours"]["facts"]["features"] == 2000
        assert row["ours"]["seconds"] > 0 and row["peer_result"]["peak_mib"] > 0
    segments = by_name["segments"]
    assert segments["same_answer"]  # the same number of segments as WNTR on the same network
    assert segments["ours"]["facts"]["segments"] == segments["peer_result"]["facts"]["segments"]
    assert by_name["pipe-break"]["ours"]["facts"]["breaks"] == 100
    assert by_name["relations"]["same_answer"]  # same straddlers and sensor matches as the peer
    assert by_name["build"]["ours"]["facts"]["relations"] > 20
    assert by_name["build-tiled"]["same_answer"]  # tiled rows = whole-layer rows (checksum)
    for name in ("road-service", "road-closure"):
        assert by_name[name]["same_answer"], name  # networkx gives the same reach and detours
