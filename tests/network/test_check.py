"""``check_network`` on the hand-drawn network with defects added."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
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
from twin.network import check_network, network_from_frames, pipe_network


def test_check_small(small: twin.Twin) -> None:
    report = check_network(pipe_network(small))
    counts = report.counts
    assert counts["dangling_end"] == 1  # F; S is the source
    assert counts["valve_off_network"] == 1
    assert counts["disconnected_part"] == 0 and counts["short_pipe"] == 0
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
