"""``buildings`` means one thing: in :mod:`twin.network` the service-connections table is
``connections=``; the old ``buildings=`` keyword still works, with a DeprecationWarning."""

from __future__ import annotations

import pandas as pd
import pytest

import twin
from twin.network import building_connections, criticality, pipe_break

PIPE = "water_pipes.JS000123"


@pytest.fixture(scope="module")
def water(sample_twin: twin.Twin) -> tuple[twin.PipeNetwork, pd.DataFrame]:
    net = sample_twin.pipe_network("water")
    return net, building_connections(sample_twin, net)


def test_pipe_break_old_keyword_warns_and_answers_the_same(water) -> None:
    net, links = water
    new = pipe_break(net, PIPE, connections=links)
    with pytest.warns(DeprecationWarning, match=r"pipe_break\(buildings=…\) is deprecated"):
        old = pipe_break(net, PIPE, buildings=links)
    assert new.summary["buildings"] > 0
    assert old.summary.to_dict() == new.summary.to_dict()
    assert old.buildings.index.tolist() == new.buildings.index.tolist()
    # without connections no building is counted: the keyword really carried them
    assert pipe_break(net, PIPE).summary["buildings"] is None


def test_criticality_old_keyword_warns_and_answers_the_same(water) -> None:
    net, links = water
    with pytest.warns(DeprecationWarning, match="connections="):
        old = criticality(net, buildings=links)
    new = criticality(net, connections=links)
    pd.testing.assert_frame_equal(old.drop(columns="geometry"), new.drop(columns="geometry"))
    assert new["total_buildings"].sum() > 0


def test_both_keywords_is_a_usage_error(water) -> None:
    net, links = water
    with pytest.raises(twin.UsageError, match="connections= and buildings="):
        pipe_break(net, PIPE, connections=links, buildings=links)
