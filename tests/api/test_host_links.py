"""Without --public-url, links never echo a forged Host header (issue 12), real uvicorn."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.conftest import LiveServer, start_server, stop_server

FORGED = ["evil.example.com", "evil.example.com:80", "127.0.0.1:1", "localhost:1", "a@b", "x/y"]


def _links(server: LiveServer, host: str, path: str = "/collections/parcels/items") -> list[str]:
    answer = httpx.get(server.url + path, params={"limit": 1}, headers={"Host": host}, timeout=30)
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:  # h11 refuses some malformed Host values itself
        return []
    hrefs = [link["href"] for link in answer.json()["links"]]
    assert hrefs
    return hrefs


def _port(server: LiveServer) -> int:
    port = urlsplit(server.url).port
    assert port is not None
    return port


@pytest.mark.parametrize("host", FORGED)
def test_a_forged_host_is_not_echoed(live_server: LiveServer, host: str) -> None:
    hrefs = _links(live_server, host)
    own = f"http://127.0.0.1:{_port(live_server)}/"
    assert all(h.startswith(own) for h in hrefs), hrefs
    assert not any(host.split(":")[0] in urlsplit(h).netloc for h in hrefs if "127" not in host)
    for href in hrefs:  # the links lead back to this server
        assert httpx.get(href, timeout=30).status_code == 200, href


def test_the_bound_address_and_localhost_are_echoed(live_server: LiveServer) -> None:
    port = _port(live_server)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        hrefs = _links(live_server, host)
        assert all(h.startswith(f"http://{host}/") for h in hrefs), hrefs


@pytest.fixture
def open_server(sample_twin_file: Path, tmp_path: Path) -> Iterator[LiveServer]:
    copy = Path(shutil.copy(sample_twin_file, tmp_path / "chengdu.twin.gpkg"))
    server = start_server(
        copy, tmp_path, "--host", "0.0.0.0", "--allowed-host", "twin.city.example.cn"
    )
    yield server
    stop_server(server)


def test_wildcard_binding_links_to_the_connected_address_or_an_allowed_host(
    open_server: LiveServer,
) -> None:
    # bound to 0.0.0.0: links use the local address the connection arrived at
    hrefs = _links(open_server, "evil.example.com")
    own = f"http://127.0.0.1:{_port(open_server)}/collections/"
    assert all(h.startswith(own) for h in hrefs), hrefs
    allowed = _links(open_server, "twin.city.example.cn:8443")
    assert all(h.startswith("http://twin.city.example.cn:8443/") for h in allowed), allowed
