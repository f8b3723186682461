"""The result protocol on the last results that lacked it: traces, criticality rankings and
import reports (a summary dataclass with ``to_dict()``, GeoDataFrame tables with a CRS,
``to_file``, a short repr).

Each summary is checked against an independent path: the table it summarises, the
pipe break of the top segment, the layer an import wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely

import twin
from twin.network import (
    Criticality,
    RoadCriticality,
    Trace,
    TraceSummary,
    building_connections,
    criticality,
    isolation_segments,
    pipe_break,
    road_access,
    road_criticality,
    select_facilities,
    trace_downstream,
    trace_upstream,
)
from twin.reports import ImportReport, ImportSummary
from twin.results import Summary


@pytest.fixture(scope="module")
def water(sample_twin: twin.Twin) -> twin.PipeNetwork:
    return sample_twin.pipe_network("water")


@pytest.mark.parametrize("trace", [trace_downstream, trace_upstream])
def test_trace_has_the_result_protocol(water: twin.PipeNetwork, trace, tmp_path: Path) -> None:
    start = water.pipes.index[10]
    found = trace(water, pipe=start)
    assert isinstance(found, Trace) and isinstance(found.summary, TraceSummary)
    assert isinstance(found.summary, Summary)
    pipes = found.tables()["pipes"]
    assert isinstance(pipes, gpd.GeoDataFrame) and pipes.crs == water.crs
    # the summary against the table, the lengths measured again by shapely (on the source
    # lines: the network snaps their ends within tolerance_m, so a few cm differ)
    summary = found.summary.to_dict()
    assert summary["pipes"] == len(pipes) and summary["start_pipe"] == start
    measured = float(shapely.length(water.pipes.loc[pipes.index].geometry.to_numpy()).sum())
    assert summary["length_m"] == pytest.approx(measured, rel=1e-4)
    assert found.summary["direction"] == trace.__name__.removeprefix("trace_")
    json.dumps(summary)  # JSON-ready
    out = found.to_file(tmp_path / "trace.gpkg")
    assert dict(pyogrio.list_layers(out))["pipes"]
    assert len(gpd.read_file(out, layer="pipes")) == len(pipes)
    assert len(repr(found)) < 200 and "<table>" in found._repr_html_()


def test_criticality_has_the_result_protocol(
    sample_twin: twin.Twin, water: twin.PipeNetwork, tmp_path: Path
) -> None:
    links = building_connections(sample_twin, water)
    ranking = criticality(water, connections=links)
    assert isinstance(ranking, Criticality) and isinstance(ranking, gpd.GeoDataFrame)
    summary = ranking.summary
    top = ranking.sort_values("rank").index[0]
    assert summary.to_dict() == {
        "rows": len(isolation_segments(water).table),
        "top": int(top),
        "top_buildings": int(ranking.loc[top, "total_buildings"]),
    }
    # independent: breaking a pipe of the top segment takes out that many buildings
    segments = isolation_segments(water).of_pipe
    pipe = segments[segments == top].index[0]
    assert pipe_break(water, pipe, connections=links).summary["buildings"] == summary.top_buildings
    table = ranking.tables()["criticality"]
    assert table.crs == water.crs and len(table) == summary.rows
    out = tmp_path / "criticality.gpkg"
    ranking.reset_index().to_file(out, layer="criticality")
    assert len(gpd.read_file(out, layer="criticality")) == summary.rows


def test_road_criticality_has_the_result_protocol(sample_twin: twin.Twin) -> None:
    fire = select_facilities(sample_twin.layer("facilities"), "poi_type=消防站")
    access = road_access(sample_twin.road_network(), sample_twin.layer("buildings"), fire)
    ranking = road_criticality(access, candidates=4)
    assert isinstance(ranking, RoadCriticality) and len(ranking) == 4
    assert ranking.summary.to_dict() == {
        "rows": 4,
        "top": ranking.index[ranking["rank"].tolist().index(1)],
        "top_buildings": int(ranking["buildings_lost"].iloc[0]),
    }
    assert list(ranking.tables()) == ["road_criticality"]
    assert ranking.tables()["road_criticality"].crs == sample_twin.crs


def test_import_report_summary_is_a_dataclass_with_the_old_line(tmp_path: Path) -> None:
    city = twin.Twin.create(tmp_path / "t.gpkg", crs="EPSG:4544")
    source = tmp_path / "pois.csv"
    source.write_text("id,name,lon,lat\n1,a,104.05,30.66\n2,b,104.06,30.67\n3,c,,\n")
    report = city.import_layer(
        source, layer="pois", kind="poi", x="lon", y="lat", src_crs="EPSG:4326"
    )
    assert isinstance(report, ImportReport)
    summary = report.summary
    assert isinstance(summary, ImportSummary)
    assert summary.to_dict() == {
        "layer": "pois",
        "read": 3,
        "imported": len(city.layer("pois")),
        "repaired": 0,
        "rejected": 3 - len(city.layer("pois")),
        "added": len(city.layer("pois")),
        "changed": 0,
        "removed": 0,
    }
    line = f"pois: read 3, imported {summary.imported}, repaired 0, rejected {summary.rejected}"
    assert str(summary).startswith(line) and summary() == str(summary)  # the 0.1 form


def test_plot_draws_every_table_in_the_colours_explore_uses(
    sample_twin: twin.Twin, water: twin.PipeNetwork
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.colors import to_rgba

    palette = ["red", "blue", "orange", "purple", "green", "gray", "black"]  # explore()'s
    result = sample_twin.pipe_break(str(water.pipes.index[10]))
    tables = result.tables()
    assert all(t.geometry.notna().all() for t in tables.values())
    ax = result.plot()
    drawn = [name for name, table in tables.items() if len(table)]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == drawn
    # each non-empty table is one collection, in explore()'s colour for its position
    colours = [palette[i % len(palette)] for i, t in enumerate(tables.values()) if len(t)]
    assert len(ax.collections) == len(drawn)
    for collection, colour in zip(ax.collections, colours, strict=True):
        face, edge = collection.get_facecolor(), collection.get_edgecolor()
        painted = face if len(face) else edge
        assert tuple(painted[0]) == to_rgba(colour)
    # the drawing covers what the tables hold
    x0, x1 = ax.get_xlim()
    bounds = gpd.GeoSeries(
        [g for t in tables.values() if len(t) for g in t.geometry], crs=water.crs
    ).total_bounds
    assert x0 <= bounds[0] and x1 >= bounds[2]
