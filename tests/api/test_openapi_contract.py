"""Schemathesis against the live server's OpenAPI document: no 5xx, no schema violation.

Every operation the document lists (OGC API Features, and the one-map and
impact routes when installed) gets generated valid and invalid requests,
anonymously and with a restricted key. (Schemathesis' own pytest plugin does
not run under pytest 9, so the cases are drawn with Hypothesis here.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
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
