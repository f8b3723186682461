"""bench.ab runs an older tree and this one alternately and tabulates them (small city)."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "b829a8f"  # the tree issue 11's table compares with
NAMES = ["segments", "road-closure", "load"]


@pytest.fixture(scope="module")
def before_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    known = subprocess.run(
        ["git", "cat-file", "-e", f"{BEFORE}^{{commit}}"], cwd=ROOT, capture_output=True
    )
    if known.returncode != 0:
        pytest.skip(f"{BEFORE} is not in this repository's history")
    folder = tmp_path_factory.mktemp("before")
    archive = folder / "tree.tar"
    subprocess.run(["git", "archive", "-o", str(archive), BEFORE], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "tree", filter="data")
    return folder / "tree"


@pytest.mark.slow
def test_ab_table_of_two_trees(before_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.ab",
            "--before",
            str(before_tree),
            "--before-inputs",
            str(tmp_path / "before-inputs"),
            "--after-inputs",
            str(tmp_path / "after-inputs"),
            "--buildings",
            "2000",
            "--repeat",
            "2",
            "--only",
            ",".join(NAMES),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())
    assert [r["scenario"] for r in rows] == NAMES
    for row in rows:
        assert len(row["before_runs"]) == len(row["after_runs"]) == 2  # B A B A
        assert row["before_s"] == min(row["before_runs"]) > 0
        assert row["after_s"] == min(row["after_runs"]) > 0
        assert row["ratio"] == round(row["after_s"] / row["before_s"], 3)
        assert row["within"] is (row["ratio"] <= 1.10)
        assert len(row["load_before"]) == 3
        assert f"| {row['scenario']} | {row['before_s']:.4g} | " in result.stdout
    by_name = {r["scenario"]: r for r in rows}
    # both libraries answer the same 5 closures alike (exact access points): one definition
    closure = by_name["road-closure"]
    assert closure["definition"] == "ab" and closure["facts_differ"] == {}
    assert closure["before_facts"]["delayed"] == closure["after_facts"]["delayed"] > 0
    # each tree's own definition, on the same generated network: the same segments
    segments = by_name["segments"]
    assert segments["definition"] == "own" and segments["facts_differ"] == {}
    assert segments["before_facts"]["pipes"] == segments["after_facts"]["pipes"] > 0
    assert by_name["load"]["before_facts"] == by_name["load"]["after_facts"] == {"features": 2000}
