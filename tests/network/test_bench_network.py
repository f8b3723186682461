"""The network benchmark functions run on a small synthetic city (figures are not asserted)."""

from __future__ import annotations

from pathlib import Path

import pyogrio
import pytest

from bench import network as bn


def test_bench_network_functions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from twin.sample import generate_city

    monkeypatch.setattr(bn, "PEER_BUILDINGS", 1500)
    inputs = bn.prepare_network(tmp_path, 3000, seed=3)
    city = generate_city(3000, seed=3)
    inputs["buildings"] = tmp_path / "buildings.gpkg"
    pyogrio.write_dataframe(city["buildings"], inputs["buildings"], layer="buildings")
    ours, peer = bn.segments_ours(inputs, tmp_path), bn.segments_peer(inputs, tmp_path)
    assert ours == peer and ours["pipes"] > 100
    full = bn.segments_full_ours(inputs, tmp_path)
    assert full["segments"] >= 1 and full["pipes"] > ours["pipes"]
    assert 0 < full["max_segment_share"] < 1 and full["median_pipes_per_segment"] >= 1
    breaks = bn.break_ours(inputs, tmp_path)
    assert breaks["breaks"] == 100 and 0 < breaks["ms_median"] <= breaks["ms_max"]
    assert breaks["median_valves_to_close"] >= 1 and breaks["median_isolated_pipes"] >= 1
    assert bn.criticality_ours(inputs, tmp_path)["segments"] == full["segments"]
