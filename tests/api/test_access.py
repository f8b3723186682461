"""Access control (数据分级分类), the audit log, request limits and CORS, over a real server."""

from __future__ import annotations

import json

import httpx
import pytest

import twin
from tests.api.conftest import KEY_NAMES, LiveServer, start_server, stop_server

RESTRICTED = ["water_pipes", "gas_pipes", "valves", "sources", "cameras"]


def collection_ids(server: LiveServer, role: str | None) -> list[str]:
    response = server.get("/collections", role)
    assert response.status_code == 200
    return [c["id"] for c in response.json()["collections"]]


def test_each_role_sees_the_layers_its_classification_allows(live_server: LiveServer) -> None:
    infos = twin.Twin.open(live_server.twin).layer_infos()
    by_level = {
        level: [i.name for i in infos if i.classification in allowed]
        for level, allowed in (
            (None, ("public",)),
            ("internal", ("public", "internal")),
            ("restricted", ("public", "internal", "restricted")),
            ("ops", ("public", "internal", "restricted")),
        )
    }
    assert {"parcels", "buildings", "roads", "districts", "grids"} <= set(by_level[None])
    assert not {"sensors", *RESTRICTED} & set(by_level[None])
    assert "sensors" in by_level["internal"] and "water_pipes" not in by_level["internal"]
    for role, expected in by_level.items():
        assert collection_ids(live_server, role) == expected


@pytest.mark.parametrize("layer", RESTRICTED)
def test_restricted_layers_do_not_exist_without_a_key(live_server: LiveServer, layer: str) -> None:
    for role in (None, "internal"):
        unknown = live_server.get("/collections/no_such_layer", role).json()["description"]
        for path in (f"/collections/{layer}", f"/collections/{layer}/items"):
            response = live_server.get(path, role)
            assert response.status_code == 404
            # Word for word the answer for a layer that does not exist at all.
            description = response.json()["description"]
            assert description.replace(layer, "X") == unknown.replace("no_such_layer", "X")


def test_restricted_key_reads_pipes_and_is_audited(live_server: LiveServer) -> None:
    before = len(live_server.audit_lines())
    frame = twin.Twin.open(live_server.twin).layer("water_pipes")
    body = live_server.get("/collections/water_pipes/items", "restricted", limit=1000).json()
    assert body["numberMatched"] == len(frame) == 352
    assert {f["id"] for f in body["features"]} == set(frame.index)
    lines = live_server.audit_lines()[before:]
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["who"] == KEY_NAMES["restricted"] and record["role"] == "restricted"
    assert record["path"] == "/collections/water_pipes/items" and record["status"] == 200
    assert record["layers"] == ["water_pipes"] and "limit=1000" in record["query"]
    assert record["time"].endswith("Z") and record["client"] == "127.0.0.1"


def test_custom_role_from_the_keys_file(live_server: LiveServer) -> None:
    before = len(live_server.audit_lines())
    response = live_server.get("/collections/valves", "ops")
    assert response.status_code == 200 and response.json()["classification"] == "restricted"
    [line] = live_server.audit_lines()[before:]
    record = json.loads(line)
    assert (record["who"], record["role"], record["layers"]) == (
        KEY_NAMES["ops"],
        "ops-centre",
        ["valves"],
    )


def test_public_requests_are_not_audited(live_server: LiveServer) -> None:
    before = len(live_server.audit_lines())
    assert live_server.get("/collections/buildings/items", "restricted").status_code == 200
    assert live_server.get("/collections", "restricted").status_code == 200  # metadata only
    assert live_server.get("/collections/water_pipes").status_code == 404  # nothing read
    assert len(live_server.audit_lines()) == before


def test_unknown_key_is_401_and_bearer_works(live_server: LiveServer) -> None:
    response = httpx.get(
        live_server.url + "/collections", headers={"X-API-Key": "guess"}, timeout=30
    )
    assert response.status_code == 401 and "unknown API key" in response.json()["description"]
    bearer = httpx.get(
        live_server.url + "/collections/valves",
        headers={"Authorization": f"Bearer {live_server.keys['restricted']}"},
        timeout=30,
    )
    assert bearer.status_code == 200


def test_request_body_over_the_limit_is_413(live_server: LiveServer) -> None:
    response = httpx.post(live_server.url + "/collections", content=b"x" * 1_100_000, timeout=30)
    assert response.status_code == 413
    assert "over 1000000 bytes" in response.json()["description"]


def test_cors_only_when_configured(live_server: LiveServer, sample_twin_file, tmp_path) -> None:
    origin = "https://ops.example.cn"
    plain = httpx.get(live_server.url + "/collections", headers={"Origin": origin}, timeout=30)
    assert "access-control-allow-origin" not in plain.headers
    server = start_server(sample_twin_file, tmp_path, "--cors-origin", origin)
    try:
        preflight = httpx.options(
            server.url + "/collections/buildings/items",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "X-API-Key",
            },
            timeout=30,
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
        other = httpx.get(
            server.url + "/collections", headers={"Origin": "https://evil.example"}, timeout=30
        )
        assert "access-control-allow-origin" not in other.headers
    finally:
        stop_server(server)
