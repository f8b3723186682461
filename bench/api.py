"""Benchmark of the HTTP API: ``twin serve`` beside pygeoapi, loaded from a second process.

Ours: ``twin serve`` on the city twin (1 worker). Figures: start-up (process
start to the first answer), bbox item pages of about 100 buildings in
requests/s, and identify latency (p50 / p99 at one connection).

Peer: pygeoapi (uvicorn, 1 worker, its Starlette app) serving the same
buildings from a GeoPackage (in EPSG:4326, so it needs no reprojection)
through its OGR provider, the same bbox and page size. pygeoapi installs a
top-level ``tests`` package, so it lives in its own virtualenv under
bench/.cache, made from Debian's Python (which has GDAL's ``osgeo`` bindings).

Load: ``wrk`` (Debian) from a second process on loopback, bounded in time;
without wrk, a Python client in a subprocess.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
Inputs = dict[str, Path]
LOAD_S = 10  # seconds of load per figure
CONNECTIONS = 4  # concurrent connections for throughput
TARGET_FEATURES = 100
PEER_PACKAGES = ["pygeoapi==0.21.0", "starlette", "uvicorn"]


# -- shared set-up --------------------------------------------------------------
def choose_bbox(city_twin: Path, target: int = TARGET_FEATURES) -> dict[str, Any]:
    """A CRS84 bbox around the median building holding about ``target`` buildings (cached)."""
    cache = CACHE / f"api-bbox-{city_twin.stem}-{target}.json"
    if cache.exists():
        return dict(json.loads(cache.read_text()))
    import numpy as np
    import pyogrio
    import shapely

    frame = pyogrio.read_dataframe(city_twin, layer="buildings", columns=[], use_arrow=True)
    frame = frame.to_crs("OGC:CRS84")
    geoms = np.asarray(frame.geometry.array)
    tree = shapely.STRtree(geoms)
    centre = shapely.get_coordinates(shapely.centroid(geoms[len(geoms) // 2]))[0]
    low, high = 1e-6, 0.05
    for _ in range(40):  # bisect the half-size in degrees
        half = (low + high) / 2
        count = len(tree.query(shapely.box(*(centre - half), *(centre + half)), "intersects"))
        if count == target:
            break
        low, high = (half, high) if count < target else (low, half)
    bbox = [*(centre - half).tolist(), *(centre + half).tolist()]
    point = shapely.get_coordinates(shapely.point_on_surface(geoms[len(geoms) // 2]))[0]
    answer = {"bbox": bbox, "features": int(count), "point": point.tolist()}
    cache.write_text(json.dumps(answer))
    return answer


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout_s: float = 300) -> float:
    """Seconds until ``url`` answers 200 (the process started just before)."""
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5).status_code == 200:
                return time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- load generation ------------------------------------------------------------
def ensure_wrk() -> str | None:
    """wrk's path; installed from Debian when missing and possible."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            "apt-get install -y -qq wrk >/dev/null 2>&1 || "
            "(apt-get update -qq && apt-get install -y -qq wrk) >/dev/null 2>&1",
            shell=True,
            check=False,
        )
        found = shutil.which("wrk")
    return found


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_load(url: str, *, connections: int, seconds: int = LOAD_S) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) of GET ``url`` from a second process."""
    wrk = ensure_wrk()
    if wrk is None:
        command = [sys.executable, "-m", "bench.api", "load", url, str(connections), str(seconds)]
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
        return dict(json.loads(result.stdout))
    result = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s", url],
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"failed requests under load of {url}:\n{out}")
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)$", out, re.MULTILINE)
        figures[f"p{pct}_ms"] = _ms(match.group(1)) if match else float("nan")
    figures["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return figures


def python_load(url: str, connections: int, seconds: int) -> dict[str, float]:
    """The fallback load generator: threads with keep-alive connections."""
    import threading

    import httpx
    import numpy as np

    latencies: list[float] = []
    failures = []
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        with httpx.Client(timeout=10) as client:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = client.get(url)
                latencies.append((time.perf_counter() - started) * 1e3)
                if response.status_code != 200:
                    failures.append(response.status_code)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests under load of {url}")
    return {
        "rps": len(latencies) / seconds,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "requests": float(len(latencies)),
    }


# -- ours -----------------------------------------------------------------------
def _items_url(base: str, bbox: list[float]) -> str:
    query = urlencode({"bbox": ",".join(f"{v:.9f}" for v in bbox), "limit": TARGET_FEATURES})
    return f"{base}/collections/buildings/items?{query}"


@contextlib.contextmanager
def serving_ours(inputs: Inputs, scratch: Path) -> Iterator[tuple[str, float]]:
    """``twin serve`` on the city twin (1 worker): yields its URL and its start-up seconds."""
    port = free_port()
    twin_cli = str(Path(sys.executable).with_name("twin"))
    command = [twin_cli, "-q", "serve", str(inputs["city_twin"]), "--port", str(port)]
    command += ["--workers", "1", "--audit-log", str(scratch / "audit.jsonl")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_API_")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, cwd=scratch)
    base = f"http://127.0.0.1:{port}"
    try:
        yield base, wait_until_up(base + "/health", process)
    finally:
        stop(process)


def items_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """Start-up, then bbox pages of about 100 buildings under load."""
    import httpx

    chosen = choose_bbox(inputs["city_twin"])
    with serving_ours(inputs, scratch) as (base, startup_s):
        url = _items_url(base, chosen["bbox"])
        page = httpx.get(url, timeout=60).json()
        items = run_load(url, connections=CONNECTIONS)
    return {
        "startup_s": round(startup_s, 2),
        "features_per_page": len(page["features"]),
        "items_rps": round(items["rps"], 1),
        "ms_per_page": round(1e3 / items["rps"], 3),
    }


def identify_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """Start-up, then identify at a building, one connection: latency percentiles."""
    import httpx

    lon, lat = choose_bbox(inputs["city_twin"])["point"]
    with serving_ours(inputs, scratch) as (base, startup_s):
        url = f"{base}/identify?lon={lon:.9f}&lat={lat:.9f}&geometry=false"
        answer = httpx.get(url, timeout=60)
        if answer.status_code != 200:
            raise RuntimeError(f"identify answered {answer.status_code}: {answer.text[:300]}")
        one = run_load(url, connections=1)
    return {
        "startup_s": round(startup_s, 2),
        "identify_p50_ms": round(one["p50_ms"], 3),
        "identify_p99_ms": round(one["p99_ms"], 3),
        "identify_rps": round(one["rps"], 1),
    }


# -- peer -----------------------------------------------------------------------
def peer_python() -> Path:
    """Python of the pygeoapi virtualenv (made once from Debian's Python + python3-gdal)."""
    venv = CACHE / "pygeoapi-venv"
    python = venv / "bin" / "python"
    done = venv / ".complete"  # scripts carry the venv's path: build it in place
    if done.exists():
        return python
    system = Path("/usr/bin/python3")
    probe = [str(system), "-c", "import osgeo.ogr"]
    if subprocess.run(probe, capture_output=True).returncode != 0:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "python3-gdal", "python3-venv"],
            check=True,
            capture_output=True,
        )
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([str(system), "-m", "venv", "--system-site-packages", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES],
        check=True,
        capture_output=True,
    )
    done.write_text(" ".join(PEER_PACKAGES))
    return python


def peer_gpkg(city_twin: Path) -> Path:
    """The twin's buildings as a plain GeoPackage in EPSG:4326 (made once)."""
    path = CACHE / f"api-peer-{city_twin.stem}.gpkg"
    if not path.exists():
        import pyogrio

        frame = pyogrio.read_dataframe(city_twin, layer="buildings", use_arrow=True)
        frame = frame.drop(columns=["valid_from"]).to_crs("EPSG:4326")
        tmp = path.with_suffix(".tmp.gpkg")
        tmp.unlink(missing_ok=True)
        pyogrio.write_dataframe(frame, tmp, layer="buildings", use_arrow=True)
        tmp.rename(path)
    return path


def peer_config(gpkg: Path, port: int, folder: Path) -> Path:
    import yaml

    config = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "limits": {"default_items": 10, "max_items": 10000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "peer",
                "description": "benchmark peer",
                "keywords": ["city"],
                "keywords_type": "theme",
                "terms_of_service": "none",
                "url": "http://127.0.0.1",
            },
            "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org"},
            "provider": {"name": "bench", "url": "http://127.0.0.1"},
            "contact": {"name": "bench"},
        },
        "resources": {
            "buildings": {
                "type": "collection",
                "title": "buildings",
                "description": "buildings",
                "keywords": ["buildings"],
                "extents": {"spatial": {"bbox": [-180, -90, 180, 90]}},
                "providers": [
                    {
                        "type": "feature",
                        "name": "OGR",
                        "data": {
                            "source_type": "GPKG",
                            "source": str(gpkg),
                            "source_capabilities": {"paging": True},
                        },
                        "id_field": "uid",
                        "layer": "buildings",
                    }
                ],
            }
        },
    }
    path = folder / "pygeoapi.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def items_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """pygeoapi (uvicorn, 1 worker) on the same buildings: start-up and bbox pages."""
    import httpx

    chosen = choose_bbox(inputs["city_twin"])
    gpkg = peer_gpkg(inputs["city_twin"])
    python = peer_python()
    port = free_port()
    config = peer_config(gpkg, port, scratch)
    openapi = scratch / "openapi.yml"
    bin_dir = python.parent
    subprocess.run(
        [str(bin_dir / "pygeoapi"), "openapi", "generate", str(config), "-of", str(openapi)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    command = [str(python), "-m", "uvicorn", "pygeoapi.starlette_app:APP"]
    command += ["--port", str(port), "--workers", "1", "--log-level", "error"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, cwd=scratch)
    base = f"http://127.0.0.1:{port}"
    try:
        startup_s = wait_until_up(base + "/collections/buildings", process)
        url = _items_url(base, chosen["bbox"]) + "&f=json"
        page = httpx.get(url, timeout=60).json()
        items = run_load(url, connections=CONNECTIONS)
        return {
            "startup_s": round(startup_s, 2),
            "features_per_page": len(page["features"]),
            "items_rps": round(items["rps"], 1),
            "ms_per_page": round(1e3 / items["rps"], 3),
        }
    finally:
        stop(process)


if __name__ == "__main__":  # python -m bench.api load URL CONNECTIONS SECONDS
    if len(sys.argv) == 5 and sys.argv[1] == "load":
        print(json.dumps(python_load(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        sys.exit("usage: python -m bench.api load URL CONNECTIONS SECONDS")
