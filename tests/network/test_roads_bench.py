"""The road benchmark scenarios run end to end on a small city, and ours agrees with networkx."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_road_scenarios_small_city() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--buildings",
            "2000",
            "--json",
            "--only",
            "road-service,road-closure",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    rows = {r["scenario"]: r for r in json.loads(result.stdout)}
    service, closure = rows["road-service"], rows["road-closure"]
    # the runner compared the node-snapped answers: reached, mean time, buildings per facility
    assert service["same_answer"] and closure["same_answer"]
    facts = service["ours"]["facts"]
    assert facts["buildings"] == facts["reached"] == 2000
    assert sum(facts["per_facility"].values()) == 2000 and len(facts["per_facility"]) == 6
    assert facts["per_facility"] == service["peer_result"]["facts"]["per_facility"]
    assert closure["ours"]["facts"]["delayed"] == closure["peer_result"]["facts"]["delayed"]
