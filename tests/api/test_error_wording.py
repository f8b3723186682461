"""The API words library errors in its own parameters (``by=``, ``max_access_m=``), which
are the library's keywords: no command-line option (``--by``) reaches an HTTP client."""

from __future__ import annotations

import httpx

from tests.api.conftest import LiveServer


def test_statistics_by_an_unknown_zone_layer_names_the_parameter(live_server: LiveServer) -> None:
    answer = live_server.get("/statistics", by="roads")
    assert answer.status_code == 400, answer.text
    description = answer.json()["description"]
    assert "by='roads'" in description and "--" not in description


def test_a_route_from_far_away_names_max_access_m(live_server: LiveServer) -> None:
    body = {
        "origin": {"lon": 116.39, "lat": 39.91},  # Beijing, 1,500 km from the sample district
        "destination": {"layer": "facilities", "uid": "facilities.YJ0001"},
        "max_access_m": 1000,
    }
    answer = httpx.post(live_server.url + "/impact/route", json=body, timeout=60)
    assert answer.status_code == 400, answer.text
    description = answer.json()["description"]
    assert "the origin lies" in description and "raise max_access_m=" in description
    assert "--" not in description
