"""Upstream and downstream traces of a small drainage network, checked by hand."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely import LineString

from tests.network.small_network import CRS, at
from twin.errors import UsageError
from twin.network import flow_direction, network_from_frames, trace_downstream, trace_upstream


def _drains(with_inverts: bool = True) -> gpd.GeoDataFrame:
    """D1 -> D2 -> D3 along y=0 (D3 digitised against the flow), D4 joins at (100, 0).

    D5 is digitised from (300, 0) to (400, 0) with no inverts: it flows that way.
    """
    lines = {
        "D1": [(0, 0), (100, 0)],
        "D2": [(100, 0), (200, 0)],
        "D3": [(300, 0), (200, 0)],  # invert at (300,0) 7.0 < at (200,0) 8.0: flows to (300,0)
        "D4": [(100, 100), (100, 0)],
        "D5": [(300, 0), (400, 0)],
    }
    frame = gpd.GeoDataFrame(
        {
            "network": "drainage",
            "invert_up_m": [10.0, 9.0, 7.0, 12.0, np.nan],
            "invert_down_m": [9.0, 8.0, 8.0, 9.5, np.nan],
        },
        geometry=[LineString([at(*p) for p in pts]) for pts in lines.values()],
        index=pd.Index(list(lines), name="uid"),
        crs=CRS,
    )
    return frame if with_inverts else frame.drop(columns=["invert_up_m", "invert_down_m"])


def test_flow_direction_from_inverts() -> None:
    net = network_from_frames(_drains(), network="drainage")
    forward = dict(zip(net.piece_link, flow_direction(net), strict=True))
    assert forward == {"D1": True, "D2": True, "D3": False, "D4": True, "D5": True}


def test_downstream_and_upstream() -> None:
    net = network_from_frames(_drains(), network="drainage")
    down = trace_downstream(net, pipe="D1")
    assert down.pipes.index.tolist() == ["D1", "D2", "D3", "D5"]
    assert down.pipes["distance_m"].tolist() == pytest.approx([0, 0, 100, 200], abs=1e-6)
    up = trace_upstream(net, pipe="D2")
    assert set(up.pipes.index) == {"D2", "D1", "D4"}
    from_point = trace_upstream(net, point=at(250, 3))  # on D3
    assert set(from_point.pipes.index) == {"D3", "D2", "D1", "D4"}


def test_digitised_direction_without_inverts() -> None:
    net = network_from_frames(_drains(with_inverts=False), network="drainage")
    down = trace_downstream(net, pipe="D2")
    assert down.pipes.index.tolist() == ["D2"]  # D3 is digitised towards (200, 0)
    assert down.warnings


def test_trace_bad_arguments() -> None:
    net = network_from_frames(_drains(), network="drainage")
    with pytest.raises(UsageError):
        trace_downstream(net)
    with pytest.raises(UsageError, match="NOPE"):
        trace_downstream(net, pipe="NOPE")
    with pytest.raises(UsageError, match="no drainage pipe"):
        trace_downstream(net, point=at(5000, 5000))
