"""Schemathesis against the live server's OpenAPI document: no 5xx, no schema violation.

Every operation the document lists (OGC API Features, and the one-map and
impact routes when installed) gets generated valid and invalid requests,
anonymously and with a restricted key. (Schemathesis' own pytest plugin does
not run under pytest 9, so the cases are drawn with Hypothesis here.)
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks

from tests.api.conftest import LiveServer

CHECKS = [
    checks.not_a_server_error,
    checks.response_schema_conformance,
    checks.status_code_conformance,
    checks.content_type_conformance,
]
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)


def fuzz_every_operation(server: LiveServer, role: str | None) -> int:
    schema = schemathesis.openapi.from_url(server.url + "/api")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6
    headers = server.headers(role)
    for operation in operations:
        declared = schema.raw_schema["paths"][operation.path][operation.method.lower()]
        modes = list(schemathesis.GenerationMode)
        if not declared.get("parameters") and "requestBody" not in declared:
            modes = [schemathesis.GenerationMode.POSITIVE]  # nothing to make invalid
        for mode in modes:

            @FUZZ
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=server.url, headers=headers, checks=CHECKS)

            run()
    return len(operations)


@pytest.mark.slow
@pytest.mark.parametrize("role", [None, "restricted"])
def test_no_server_error_and_every_answer_matches_the_schema(
    live_server: LiveServer, role: str | None
) -> None:
    paths = {op for op in live_server.get("/api").json()["paths"]}
    assert {"/collections", "/collections/{collectionId}/items"} <= paths
    assert fuzz_every_operation(live_server, role) >= len(paths)


# -- issue 12: the classes of input that once answered 500, generated ----------------
_GEOJSON_TYPES = {
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
}
_CLASS_FUZZ = settings(
    max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)


def test_generated_zero_area_bboxes_are_400(live_server: LiveServer) -> None:
    coordinate = st.floats(min_value=-180, max_value=180, allow_nan=False)

    @_CLASS_FUZZ
    @given(x=coordinate, y=st.floats(min_value=-90, max_value=90), dx=st.sampled_from([0.0, 1.0]))
    def run(x: float, y: float, dx: float) -> None:
        x1, y1 = (x, y + 0.5) if dx == 0 else (min(x + dx, 180), y)
        if x1 == x and y1 == y + 0.5 and y1 > 90:
            y1 = y
        answer = live_server.get("/collections/parcels/items", bbox=f"{x},{y},{x1},{y1}")
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "InvalidParameterValue"

    run()


def test_generated_datetimes_outside_pandas_range_are_400(live_server: LiveServer) -> None:
    years = st.one_of(st.integers(1, 1677), st.integers(2263, 9999))

    @_CLASS_FUZZ
    @given(year=years, month=st.integers(1, 12), day=st.integers(1, 28), z=st.booleans())
    def run(year: int, month: int, day: int, z: bool) -> None:
        if year == 1677 and (month, day) >= (9, 23):
            year = 1676
        instant = f"{year:04d}-{month:02d}-{day:02d}" + ("T00:00:00Z" if z else "")
        answer = live_server.get("/collections/parcels/items", datetime=instant)
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"].startswith("application/json")

    run()


def test_generated_unknown_geometry_types_for_an_area_are_400(live_server: LiveServer) -> None:
    @_CLASS_FUZZ
    @given(kind=st.text(max_size=20).filter(lambda t: t not in _GEOJSON_TYPES))
    def run(kind: str) -> None:
        body = {"area": {"type": kind, "coordinates": [[104.0, 30.6], [104.1, 30.7]]}}
        answer = httpx.post(live_server.url + "/impact/road-closure", json=body, timeout=60)
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "InvalidParameterValue"

    run()
