"""Vector tiles of the city's buildings (z14-z16): twin.tiles beside GeoPandas + mapbox-vector-tile.

Both sides load the buildings once and take them to Web Mercator once (not
timed per tile); then each tile is timed alone: ours cuts it from the prepared
:class:`twin.tiles.TileSource`, the peer clips the GeoDataFrame to the buffered
tile (``GeoDataFrame.clip``, spatial index) and encodes with
``mapbox_vector_tile.encode``. Both tiles are decoded afterwards (untimed) by
mapbox-vector-tile and their uid sets compared.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

Inputs = dict[str, Path]

ZOOMS = (14, 15, 16)
TILES_PER_ZOOM = 20
HALF = 20037508.342789244
EXTENT, BUFFER = 4096, 64
FIELDS = ["uid", "height", "name", "use"]


def _buildings(path: Path) -> Any:
    import twin

    return twin.Twin.open(path).layer("buildings")


def _chosen_tiles(mercator: Any) -> list[tuple[int, int, int]]:
    """Tiles under randomly drawn buildings (the same draw for both sides), per zoom."""
    rng = np.random.default_rng(7)
    centres = mercator.geometry.centroid
    tiles = []
    for z in ZOOMS:
        size = 2 * HALF / 2**z
        for row in rng.choice(len(centres), TILES_PER_ZOOM, replace=False):
            c = centres.iloc[int(row)]
            tiles.append((z, int((c.x + HALF) // size), int((HALF - c.y) // size)))
    return tiles


def _uids(data: bytes) -> list[str]:
    """The uids of a tile's features that a map can draw (polygons with area on the grid).

    The MVT spec says a ring should not have zero area; ours drops features whose
    every ring collapses on the tile grid (slivers thinner than a pixel), the
    peer writes them anyway. Both sides are counted without them.
    """
    import mapbox_vector_tile
    import shapely.geometry

    if not data:
        return []
    layers = mapbox_vector_tile.decode(data)
    return [
        f["properties"]["uid"]
        for layer in layers.values()
        for f in layer["features"]
        if shapely.geometry.shape(f["geometry"]).area > 0
    ]


def _all_uids(data: bytes) -> list[str]:
    import mapbox_vector_tile

    layers = mapbox_vector_tile.decode(data) if data else {}
    return [f["properties"]["uid"] for layer in layers.values() for f in layer["features"]]


def _facts(times: list[float], tiles: list[bytes], prepare_s: float) -> dict[str, Any]:
    uids = [sorted(_uids(t)) for t in tiles]
    written = sum(len(_all_uids(t)) for t in tiles)
    digest = hashlib.sha256("\n".join(",".join(u) for u in uids).encode()).hexdigest()[:16]
    ms = np.asarray(times) * 1000
    return {
        "tiles": len(tiles),
        "features": sum(len(u) for u in uids),
        "zero_area_written": written - sum(len(u) for u in uids),
        "uid_digest": digest,
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "tiles_s": round(float(ms.sum() / 1000), 4),
        "prepare_s": round(prepare_s, 2),
    }


def tiles_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    from twin.tiles import TileSource

    frame = _buildings(inputs["city_twin"])
    started = time.perf_counter()
    source = TileSource.from_frame("buildings", "building", frame)
    prepare_s = time.perf_counter() - started
    chosen = _chosen_tiles(frame.geometry.to_crs("EPSG:3857").to_frame())
    source.tile(*chosen[0])  # warm-up (first-call imports)
    times, tiles = [], []
    for z, x, y in chosen:
        started = time.perf_counter()
        tiles.append(source.tile(z, x, y))
        times.append(time.perf_counter() - started)
    return _facts(times, tiles, prepare_s)


def tiles_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    import mapbox_vector_tile
    import pandas as pd
    import shapely

    frame = _buildings(inputs["city_twin"])
    started = time.perf_counter()
    mercator = frame.to_crs("EPSG:3857").reset_index()
    # the same attributes as ours: uid, height (floors x 3 m when no height), name, use
    height = mercator["height_m"].astype(float).fillna(mercator["floors"].astype(float) * 3.0)
    mercator["height"] = height.fillna(3.0).round(1)
    mercator.sindex  # built once, like our tree  # noqa: B018
    prepare_s = time.perf_counter() - started
    chosen = _chosen_tiles(mercator)
    times, tiles = [], []
    for z, x, y in chosen:
        started = time.perf_counter()
        size = 2 * HALF / 2**z
        minx, maxy = -HALF + x * size, HALF - y * size
        pad = size * BUFFER / EXTENT
        box = shapely.box(minx - pad, maxy - size - pad, minx + size + pad, maxy + pad)
        clipped = mercator.clip(box)
        clipped = clipped[~clipped.geometry.is_empty]
        records = clipped[FIELDS].astype(object).to_dict("records")
        features = [
            {"geometry": geom, "properties": {k: v for k, v in props.items() if pd.notna(v)}}
            for geom, props in zip(clipped.geometry, records, strict=True)
        ]
        tiles.append(
            mapbox_vector_tile.encode(
                [{"name": "buildings", "features": features}],
                default_options={
                    "quantize_bounds": (minx, maxy - size, minx + size, maxy),
                    "extents": EXTENT,
                },
            )
        )
        times.append(time.perf_counter() - started)
    return _facts(times, tiles, prepare_s)


def page_render(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """The one-map page's first full render (MapLibre's first ``idle``) in headless Chromium."""
    import shutil
    import subprocess
    import sys

    import httpx
    from playwright.sync_api import sync_playwright

    import twin
    from tests.api.conftest import free_port

    root = Path(__file__).resolve().parents[1]
    city = twin.Twin.create(scratch / "chengdu.twin.gpkg", crs="auto", name="sample")
    city.import_mapping(root / "data" / "samples" / "mapping.yaml")
    city.build()
    port = free_port()
    cli = str(Path(sys.executable).with_name("twin"))
    server = subprocess.Popen(
        [cli, "-q", "serve", str(city.path), "--port", str(port), "--audit-log",
         str(scratch / "audit.jsonl")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        flags = ["--use-angle=swiftshader", "--use-gl=angle", "--enable-unsafe-swiftshader",
                 "--ignore-gpu-blocklist", "--no-sandbox"]  # fmt: skip
        renders = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=flags
            )
            tile_requests = []
            for _ in range(4):  # the first one warms the server's tile sources
                page = browser.new_page(viewport={"width": 1400, "height": 850})
                asked: list[str] = []
                page.on("request", lambda r, asked=asked: asked.append(r.url))
                page.goto(url)
                page.wait_for_function("window.citytwin && window.citytwin.ready", timeout=60_000)
                renders.append(page.evaluate("citytwin.firstIdleMs") / 1000)
                tile_requests.append(sum(u.endswith(".pbf") for u in asked))
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    return {
        "cold_render_s": round(renders[0], 2),
        "first_render_s": round(float(np.median(renders[1:])), 2),
        "tile_requests": int(np.median(tile_requests)),
    }
