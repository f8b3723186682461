"""Service connections: the twin's stored relation and the on-the-fly join give the same answers.

The sample delivery is imported into a twin; before ``build`` (and once a
layer is re-imported) the analyses compute the connections themselves and
say so; after it they read the stored relation. Both must connect the same
buildings to the same pipes, so every pipe break affects the same buildings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import twin
from twin.cli import analyze
from twin.network import criticality, pipe_break, pipe_network, service_connections
from twin.network.services import building_connections

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
LAYERS = ["buildings", "water_pipes", "gas_pipes", "valves", "sources"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> twin.Twin:
    folder = tmp_path_factory.mktemp("service")
    city = twin.Twin.create(folder / "sample.gpkg", crs="EPSG:4544")
    city.import_mapping(SAMPLES / "mapping.yaml", layers=LAYERS)
    return city


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """twin"""

    analyze.register(app)
    return app


def _break_json(city: twin.Twin, pipe: str) -> dict:
    args = ["analyze", "pipe-break", str(city.path), "--pipes", "water_pipes", "--pipe", pipe]
    result = CliRunner().invoke(_app(), [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_stored_and_computed_connections_agree(sample: twin.Twin) -> None:
    for network in ("water", "gas"):
        net = pipe_network(sample, network, pipes=f"{network}_pipes")
        before = building_connections(sample, net)
        assert before.attrs["stored"] is False
        assert "build the twin with build()" in before.attrs["service_connections"]
        assert before.attrs["service_connections_reason"].code == "no_build"
    sample.build()
    for network in ("water", "gas"):
        net = pipe_network(sample, network, pipes=f"{network}_pipes")
        stored = building_connections(sample, net)
        assert stored.attrs["stored"] is True
        assert stored.attrs["service_connections"] == (
            f"stored by the last build (relation service_{network})"
        )
        computed = service_connections(sample.layer("buildings"), net)
        assert len(computed) == len(sample.layer("buildings", columns=[]))  # all within 50 m
        assert stored.index.equals(computed.index)
        assert (stored["pipe"].to_numpy() == computed["pipe"].to_numpy()).all()
        assert np.allclose(stored["distance_m"], computed["distance_m"])
        rng = np.random.default_rng(3)
        for pipe in rng.choice(net.pipes.index.to_numpy(), 25, replace=False):
            a = pipe_break(net, pipe, connections=stored)
            b = pipe_break(net, pipe, connections=computed)
            assert a.buildings.index.equals(b.buildings.index), pipe
            assert a.buildings["pipe"].tolist() == b.buildings["pipe"].tolist()
            assert a.summary == {
                **b.summary,
                "service_connections": a.summary["service_connections"],
            }
        ranked = [criticality(net, connections=links) for links in (stored, computed)]
        pd.testing.assert_frame_equal(
            ranked[0].drop(columns="geometry"), ranked[1].drop(columns="geometry")
        )


def test_cli_says_which_connections_it_used(sample: twin.Twin, tmp_path: Path) -> None:
    sample.build()
    pipe = "water_pipes.JS000123"
    stored = _break_json(sample, pipe)
    assert stored["service_connections"].startswith("stored by the last build")
    # a larger radius than the build's: computed, and the reason given
    args = ["analyze", "pipe-break", str(sample.path), "--pipes", "water_pipes", "--pipe", pipe]
    wider = CliRunner().invoke(_app(), [*args, "--max-service", "80", "--json"])
    data = json.loads(wider.stdout)
    assert data["service_connections"].startswith("computed for this analysis")
    assert "--max-service-m 80" in data["service_connections"]
    assert data["buildings"] == stored["buildings"]  # 50 m already reach every building
    # re-importing the pipes makes the stored relation stale: computed, same answer
    sample.import_mapping(SAMPLES / "mapping.yaml", layers=["water_pipes"])
    stale = _break_json(sample, pipe)
    assert "stale" in stale["service_connections"]
    assert {k: v for k, v in stale.items() if k != "service_connections"} == {
        k: v for k, v in stored.items() if k != "service_connections"
    }
