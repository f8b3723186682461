"""The planner's surface: ``import twin`` is enough, one call per analysis, one result protocol.

Answers of the one-call forms are checked against the step-by-step library calls
they replace (an independent path through the same public functions); the public
surface is walked module by module.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pyogrio
import pytest

import twin
from tests.conftest import run_cli
from twin.network import (
    building_connections,
    pipe_break,
    pipe_network,
    road_access,
    road_closure,
    road_network,
    select_facilities,
    service_areas,
)

ROOT = Path(__file__).resolve().parents[1]

#: The documented public modules: every name in their ``__all__`` has a docstring.
PUBLIC_MODULES = (
    "twin",
    "twin.settings",
    "twin.results",
    "twin.analyses",
    "twin.network",
    "twin.indicators",
    "twin.query",
    "twin.store",
)


def test_import_twin_reaches_subpackages_in_a_fresh_interpreter() -> None:
    code = (
        "import twin, sys\n"
        "assert 'twin.network' not in sys.modules\n"  # loaded on first use, not at import
        "print(twin.zones.__name__, twin.network.__name__, twin.indicators.__name__,"
        " twin.compliance.__name__, twin.query.__name__, twin.settings.SERVICE_DISTANCE_M,"
        " twin.BreakResult.__name__, twin.NetworkError.__name__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "twin.zones",
        "twin.network",
        "twin.indicators",
        "twin.compliance",
        "twin.query",
        "50.0",
        "BreakResult",
        "NetworkError",
    ]


def test_every_error_is_exported() -> None:
    import twin.errors as errors

    classes = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, twin.TwinError)
    }
    assert classes <= set(twin.__all__)
    assert classes >= {"TwinBusyError", "NetworkError"}


def test_unknown_attribute_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        _ = twin.nonsense


def _runs_an_example(doc: str | None) -> bool:
    """Whether a docstring has an example not all marked ``+SKIP``."""
    examples = doctest.DocTestParser().get_examples(doc or "")
    return any(not ex.options.get(doctest.SKIP) for ex in examples)


def _own_doc(module: object, value: object) -> str | None:
    """The object's own docstring (not the one a class inherits, not a builtin type's)."""
    doc = getattr(value, "__doc__", None)
    if inspect.isclass(value) or inspect.isroutine(value) or inspect.ismodule(value):
        return doc
    return None  # constants and type aliases: documented by their module


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_names_have_docstrings_with_examples_that_run(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [] if _runs_an_example(module.__doc__) else ["the module itself"]
    for name in module.__all__:
        if name.startswith("__"):
            continue
        doc = _own_doc(module, getattr(module, name))
        if doc is None:
            if name not in (module.__doc__ or ""):
                missing.append(f"{name} (undocumented)")
        elif not _runs_an_example(doc):
            missing.append(name)
    assert not missing, f"{module_name}: no example that runs for {', '.join(missing)}"


def test_pipe_break_in_one_call_matches_the_step_by_step_answer(sample_twin: twin.Twin) -> None:
    pipe = "water_pipes.JS000010"
    one = sample_twin.pipe_break(pipe)
    net = pipe_network(sample_twin, "water", pipes="water_pipes")
    links = building_connections(sample_twin, net)
    steps = pipe_break(net, pipe, connections=links)
    assert one.summary == steps.summary
    assert list(one.valves_to_close.index) == list(steps.valves_to_close.index)
    assert list(one.buildings.index) == list(steps.buildings.index)
    # tables carry their CRS; the buildings their footprints
    assert one.buildings.crs == sample_twin.crs and steps.buildings.crs == sample_twin.crs
    footprints = sample_twin.layer("buildings").geometry.reindex(one.buildings.index)
    assert one.buildings.geometry.geom_equals(footprints).all()
    # the summary is a dataclass, a dict, and JSON
    assert one.summary.valves_to_close == one.summary["valves_to_close"]
    assert json.loads(json.dumps(one.summary)) == one.summary.to_dict()


def test_pipe_break_infers_the_gas_network_from_the_uid(sample_twin: twin.Twin) -> None:
    gas = sample_twin.layer("gas_pipes")
    pipe = str(gas.index[10])
    result = sample_twin.pipe_break(pipe)
    net = pipe_network(sample_twin, "gas", pipes="gas_pipes")
    expected = pipe_break(net, pipe, connections=building_connections(sample_twin, net))
    assert result.summary.network == "gas"
    assert result.summary == expected.summary


def test_failed_valves_widen_the_one_call_break(sample_twin: twin.Twin) -> None:
    from tests.conftest import failing_valve_break

    pipe, valve = failing_valve_break(sample_twin)
    wider = sample_twin.pipe_break(pipe, failed_valves=[valve])
    assert wider.summary.failed_valves == [valve]
    assert wider.summary.extra_valves == len(wider.extra_valves) > 0


def test_a_uid_of_a_layer_that_holds_no_pipes_is_refused(sample_twin: twin.Twin) -> None:
    with pytest.raises(twin.UsageError, match="holds no pipes"):
        sample_twin.pipe_break("buildings.JZ0000001")
    with pytest.raises(twin.UsageError, match="not a feature uid"):
        sample_twin.pipe_break("JS000010")


def test_road_closure_and_service_area_in_one_call(sample_twin: twin.Twin) -> None:
    where = "poi_type=消防站"
    net = road_network(sample_twin, "roads")
    access = road_access(
        net,
        sample_twin.layer("buildings"),
        select_facilities(sample_twin.layer("facilities"), where),
    )
    road = str(sample_twin.layer("roads").index[2])
    closure = sample_twin.road_closure([road], where=where, max_time_s=180)
    assert closure.summary == road_closure(access, roads=[road], max_time_s=180).summary
    area = sample_twin.service_area(where=where, max_time_s=300)
    assert area.summary == service_areas(access, max_time_s=300).summary


def test_results_write_every_table_and_stay_short(sample_twin: twin.Twin, tmp_path: Path) -> None:
    result = sample_twin.pipe_break("water_pipes.JS000010")
    path = result.to_file(tmp_path / "break.gpkg")
    written = {name for name, _ in pyogrio.list_layers(path)}
    expected = {name for name, table in result.tables().items() if len(table)}
    assert written == expected and "valves_to_close" in written
    back = pyogrio.read_dataframe(path, layer="valves_to_close")
    assert len(back) == len(result.valves_to_close)
    assert len(repr(result)) < 200 and len(repr(sample_twin.pipe_network("water"))) < 200
    assert "<table>" in result._repr_html_()


def test_explore_draws_every_table_on_one_map(sample_twin: twin.Twin) -> None:
    fmap = sample_twin.pipe_break("water_pipes.JS000010").explore()
    html = fmap.get_root().render()
    assert "valves_to_close" in html and "isolated_pipes" in html


def test_cli_pipe_break_needs_only_the_uid(sample_twin: twin.Twin) -> None:
    gas = str(sample_twin.layer("gas_pipes").index[10])
    done = run_cli("analyze", "pipe-break", str(sample_twin.path), "--pipe", gas, "--json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    expected = sample_twin.pipe_break(gas).summary.to_dict()
    assert printed["network"] == "gas"
    assert {k: printed[k] for k in expected} == json.loads(json.dumps(expected))


def test_indicators_and_check_in_one_call(sample_twin: twin.Twin) -> None:
    from twin.compliance import plan_compliance
    from twin.zones import indicators_by_zone

    assert sample_twin.indicators(by="grid").equals(indicators_by_zone(sample_twin, "grid"))
    table = sample_twin.check()
    expected = plan_compliance(sample_twin.layer("parcels"), sample_twin.layer("buildings"))
    assert table.equals(expected)


def test_grouped_connections_follow_an_in_place_edit(sample_twin: twin.Twin) -> None:
    """The cache of a network's service table is keyed by content, not by the table object."""
    net = pipe_network(sample_twin, "water", pipes="water_pipes")
    links = building_connections(sample_twin, net)
    pipe = "water_pipes.JS000010"
    first = pipe_break(net, pipe, connections=links)
    # move every building onto the broken pipe, in place: they all lose service now
    links.loc[:, "pipe"] = pipe
    edited = pipe_break(net, pipe, connections=links)
    fresh = pipe_break(net, pipe, connections=links.copy())
    assert edited.summary["buildings"] == fresh.summary["buildings"] == len(links)
    assert first.summary["buildings"] < len(links)


def test_readme_one_call_examples_run(sample_twin: twin.Twin, tmp_path: Path) -> None:
    """The README's "One call per analysis" block runs as written on the sample twin."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### One call per analysis", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"out/chengdu.twin.gpkg"', repr(str(sample_twin.path)))
    code = code.replace('"break.gpkg"', repr(str(tmp_path / "break.gpkg")))
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "break.gpkg").exists()
    r = namespace["r"]
    assert r.summary.failed_valves == ["valves.JSF000039"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("by", ["grids", "districts", "parcels"])
def test_indicators_reuse_the_stored_zone_relation(sample_twin: twin.Twin, by: str) -> None:
    """With a current build, building indicators start from the stored largest-share
    relation; the table is the one the overlay alone gives."""
    import pandas as pd

    from twin.build import stored_zone_shares
    from twin.indicators import building_indicators

    known = stored_zone_shares(sample_twin, "buildings", by)
    assert known is not None and len(known) == len(sample_twin.layer("buildings"))
    zones = sample_twin.layer(by, columns=[])
    buildings = sample_twin.layer("buildings")
    fast = building_indicators(zones, buildings, zone_of=known)
    overlay = building_indicators(zones, buildings)
    pd.testing.assert_frame_equal(fast, overlay, rtol=1e-9)
    assert (known["n_zones"] == 1).sum() > len(known) / 2  # most took the short way


def test_a_snapshot_never_reads_relations_from_a_newer_file(
    sample_twin: twin.Twin, tmp_path: Path
) -> None:
    """After an import replaces the file, a snapshot's relation lookups come from its own
    geometry (the build's rule), not from the rows of the new file."""
    import shutil

    from twin.query.index import CityIndex
    from twin.query.profile import profile

    path = tmp_path / "copy.gpkg"
    shutil.copy(sample_twin.path, path)
    snapshot = CityIndex.load(path)
    uid = "buildings.JZ0000101"
    parcel_before = profile(CityIndex.load(path), "buildings", uid).group("parcel")
    # re-import the parcels, every one moved 5 km away, and rebuild: the new file's
    # stored relation puts the building on no parcel
    city = twin.Twin.open(path)
    moved = city.layer("parcels").reset_index()
    moved = moved.set_geometry(moved.geometry.translate(5000, 5000))
    moved["id"] = moved["uid"].str.removeprefix("parcels.")
    city.import_frame(
        moved.drop(columns=["uid", "valid_from"]), layer="parcels", kind="parcel", id="id"
    )
    city.build()
    assert profile(CityIndex.load(path), "buildings", uid).group("parcel") == []
    # the old snapshot still answers for the file it read
    assert profile(snapshot, "buildings", uid).group("parcel") == parcel_before != []


def test_service_distance_zero_keeps_only_buildings_touching_a_pipe(
    sample_twin: twin.Twin,
) -> None:
    """max_service_m=0 (which the API accepts) is an answer, not a GEOS error."""
    from twin.network import service_connections

    net = pipe_network(sample_twin, "water", pipes="water_pipes")
    buildings = sample_twin.layer("buildings")
    links = service_connections(buildings, net, max_service_m=0.0)
    touching = buildings.sjoin(net.pipes[["geometry"]], predicate="intersects").index.unique()
    assert set(links.index) == set(touching)
    assert (links["distance_m"] == 0).all()


# Only twin.store talks SQL: no statement, no cursor, no sqlite3 above it (the GeoPackage
# media type "application/geopackage+sqlite3" is a name, not a use).
_SQL_OUTSIDE_STORE = r"execute\(|SELECT |INSERT |(?<!\+)sqlite3"


def _sql_lines(paths: list[Path], root: Path) -> list[str]:
    import re

    pattern = re.compile(_SQL_OUTSIDE_STORE)
    return [
        f"{path.relative_to(root)}:{number}: {line.strip()}"
        for path in paths
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]


def test_no_sql_outside_the_store() -> None:
    root = Path(__file__).resolve().parents[1]
    store = root / "src" / "twin" / "store"
    above = [
        path
        for folder in (root / "src" / "twin", root / "api")
        for path in sorted(folder.rglob("*.py"))
        if store not in path.parents
    ]
    assert len(above) > 100  # the whole package and the service
    assert _sql_lines(above, root) == [], "SQL outside twin.store"
    # the check does see SQL where it belongs
    assert len(_sql_lines([store / "live_queries.py"], root)) >= 10
