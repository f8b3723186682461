"""The benchmark runner works end to end on a small city (figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_runner_small_city() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--buildings", "2000", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["scenario"] for r in rows] == ["import", "load"]
    for row in rows:
        assert row["same_answer"], row  # ours and the peer imported / loaded the same features
        assert row["ours"]["facts"]["features"] > 1500
        assert row["ours"]["seconds"] > 0 and row["peer_result"]["peak_mib"] > 0
