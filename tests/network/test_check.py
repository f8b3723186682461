"""``check_network`` on the hand-drawn network with defects added."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely import Point

import twin
from tests.network.small_network import (
    CRS,
    at,
    pipes_frame,
    sources_frame,
    uid,
    valves_frame,
)
from twin.errors import UsageError
from twin.network import check_network, network_from_frames, pipe_network


def test_check_small(small: twin.Twin) -> None:
    report = check_network(pipe_network(small))
    counts = report.counts
    assert counts["dangling_end"] == 1  # F; S is the source
    assert counts["valve_off_network"] == 1
    assert counts["disconnected_part"] == 0 and counts["short_pipe"] == 0
    assert counts["near_miss"] == 0  # F is 100 m from everything but P7
    issues = report.issues.set_index("issue")
    assert issues.loc["valve_off_network", "uid"] == uid("valves", "V9")
    assert issues.loc["dangling_end", "uid"] == uid("pipes", "P7")
    assert report.stats["parts"] == 1


def test_check_defects(tmp_path: Path) -> None:
    extra = pipes_frame(
        {
            "P8": [(600, 0), (700, 0)],  # a part of its own
            "P9": [(400, 0), (400, 0.3)],  # shorter than the tolerance
        }
    ).set_index("pipe_id")
    frame = pd.concat([pipes_frame().set_index("pipe_id"), extra])
    sources = pd.concat(
        [
            sources_frame().set_index("source_id"),
            gpd.GeoDataFrame(
                {"source_type": ["tank"], "network": ["water"]},
                geometry=[Point(at(50, 30))],
                index=pd.Index(["T"]),
                crs=CRS,
            ),
        ]
    )
    net = network_from_frames(
        gpd.GeoDataFrame(frame, crs=CRS),
        valves_frame().set_index("valve_id"),
        sources,
        network="water",
    )
    report = check_network(net)
    counts = report.counts
    assert counts["short_pipe"] == 1
    assert counts["disconnected_part"] == 1
    assert counts["source_off_network"] == 1
    part = report.issues[report.issues["issue"] == "disconnected_part"].iloc[0]
    assert part["uid"] == "P8" and "no source" in part["detail"]
    short = report.issues[report.issues["issue"] == "short_pipe"].iloc[0]
    assert short["uid"] == "P9"
    assert report.summary()["issues"]["source_off_network"] == 1


def _with_near_misses() -> twin.network.PipeNetwork:
    """The hand-drawn network plus three pipes that nearly meet it.

    P8 stops 1.5 m short of P3 (an undershoot); P10 starts 0.3 m off the middle of P2,
    where P2 has no vertex (a T-junction not noded: within the snap tolerance of the
    line, but snapping joins ends and vertices only); P9 starts 3 m past F, the open
    end of P7. P8's and P10's far ends lie 40 m and more from every other pipe.
    """
    extra = pipes_frame(
        {
            "P8": [(250, 1.5), (250, 60)],
            "P9": [(403, 0), (450, 0)],
            "P10": [(150, 0.3), (150, -50)],
        }
    ).set_index("pipe_id")
    frame = pd.concat([pipes_frame().set_index("pipe_id"), extra])
    return network_from_frames(
        gpd.GeoDataFrame(frame, crs=CRS),
        valves_frame().set_index("valve_id"),
        sources_frame().set_index("source_id"),
        network="water",
    )


def _pairs(report: object) -> dict[tuple[str, str], float]:
    issues = report.issues  # type: ignore[attr-defined]
    near = issues[issues["issue"] == "near_miss"]
    return {
        (u, o): round(d, 6)
        for u, o, d in zip(near["uid"], near["other_uid"], near["distance_m"], strict=True)
    }


def test_near_miss_dangles(tmp_path: Path) -> None:
    net = _with_near_misses()
    report = check_network(net)
    assert _pairs(report) == {("P8", "P3"): 1.5, ("P10", "P2"): 0.3}
    # dangling: F (P7), both ends of P8, of P9 and of P10
    assert report.counts["dangling_end"] == 7
    gap = report.issues.set_index("uid").loc["P8"]
    gap = gap[gap["issue"] == "near_miss"].iloc[0]
    assert gap.geometry.length == pytest.approx(1.5)
    assert gap.geometry.coords[0] == pytest.approx(at(250, 1.5))
    assert gap.geometry.coords[-1] == pytest.approx(at(250, 0))
    assert "1.50 m from P3" in gap["detail"]
    wider = check_network(net, near_miss_m=5)
    assert _pairs(wider) == {
        ("P8", "P3"): 1.5,
        ("P10", "P2"): 0.3,
        ("P7", "P9"): 3.0,
        ("P9", "P7"): 3.0,
    }
    assert _pairs(check_network(net, near_miss_m=1.0)) == {("P10", "P2"): 0.3}
    with pytest.raises(UsageError, match="near_miss_m"):
        check_network(net, near_miss_m=-1)


def test_short_stub_is_not_a_near_miss(tmp_path: Path) -> None:
    # a 1.2 m stub off A: its open end is 1.2 m from P1, P2 and P4, all joined to it at A
    frame = pd.concat(
        [
            pipes_frame().set_index("pipe_id"),
            pipes_frame({"S1": [(100, 0), (100, -1.2)]}).set_index("pipe_id"),
        ]
    )
    net = network_from_frames(
        gpd.GeoDataFrame(frame, crs=CRS), None, sources_frame().set_index("source_id")
    )
    report = check_network(net)
    assert report.counts["dangling_end"] == 2  # F and the stub's end
    assert report.counts["near_miss"] == 0
