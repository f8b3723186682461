"""The impact an event carries words its service-connections note as the API does."""

from __future__ import annotations

import shutil
from pathlib import Path

import twin
from twin.errors import BuildNeeded, BuildNeededError
from twin.network import building_connections, pipe_break
from twin.sensing.impact import ImpactEngine
from twin_api.errors import describe


def test_a_computed_connections_note_speaks_the_apis_words(
    sample_twin: twin.Twin, tmp_path: Path
) -> None:
    # Built with a 30 m reach, the twin cannot answer the engine's 50 m: the connections
    # are computed for the event, and its note says why in the API's words.
    path = Path(shutil.copy(sample_twin.path, tmp_path / "narrow.gpkg"))
    city = twin.Twin.open(path)
    city.build(max_service_m=30)
    pipe = str(city.layer("water_pipes", columns=[]).index[0])
    answer = ImpactEngine(city).pipe_break("water", pipe)
    note = answer["summary"]["service_connections"]
    assert note == (
        "computed for this analysis: the last build connected buildings within 30 m of a pipe:"
        " ask with max_service_m <= 30, or have the twin built again with max_service_m=50"
    )
    # the same words as an API error body for that reason; no Python call in them
    reason = BuildNeeded("beyond_reach", str(path), parameter="max_service_m", value=50, built=30)
    assert note.endswith(describe(BuildNeededError(reason)))
    assert "build(" not in note
    # the rest of the summary is the library's own answer
    net = city.pipe_network("water")
    links = building_connections(city, net)
    library = dict(pipe_break(net, pipe, connections=links).summary)
    assert "build(max_service_m=50)" in library["service_connections"]
    assert {k: v for k, v in answer["summary"].items() if k != "service_connections"} == {
        k: v for k, v in library.items() if k != "service_connections"
    }


def test_stored_connections_keep_their_note(sample_twin: twin.Twin) -> None:
    pipe = str(sample_twin.layer("water_pipes", columns=[]).index[0])
    answer = ImpactEngine(sample_twin).pipe_break("water", pipe)
    assert answer["summary"]["service_connections"] == (
        "stored by the last build (relation service_water)"
    )
