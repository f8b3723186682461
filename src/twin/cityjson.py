"""CityJSON 2.0 and CityJSONSeq export of LOD1 buildings, and reading them back.

Each building is a ``Building`` city object, id = its twin uid, with an LOD
1.2 ``Solid`` (``MultiSolid`` for a multipolygon footprint), the standard
attributes ``measuredHeight`` and ``storeysAboveGround`` and the layer's own
fields. Vertices are quantised integers with a ``transform`` (1 mm by
default); ``metadata.referenceSystem`` is the twin CRS as an OGC URL.
CityJSONSeq (``.city.jsonl``) writes the header line and then one
``CityJSONFeature`` per line with its own vertices, for large cities.

Examples
--------
>>> import geopandas as gpd, shapely, json, tempfile, pathlib
>>> b = gpd.GeoDataFrame({"height_m": [10.0], "ground_m": [500.0], "floors": [3]},
...     geometry=[shapely.box(0, 0, 10, 20)], index=["buildings.B1"], crs="EPSG:4544")
>>> path = write_cityjson(b, pathlib.Path(tempfile.mkdtemp()) / "b.city.json")
>>> doc = json.loads(path.read_text())
>>> doc["version"], doc["CityObjects"]["buildings.B1"]["geometry"][0]["lod"]
('2.0', '1.2')
>>> read_cityjson(path).loc["buildings.B1", ["height_m", "ground_m"]].tolist()
[10.0, 500.0]
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyproj
import shapely

from twin.errors import CRSError, SourceError, UsageError
from twin.lod1 import Blocks, lod1_blocks

__all__ = ["cityjson_document", "read_cityjson", "write_cityjson"]

VERSION = "2.0"
SCALE_M = 0.001
_SKIP = {"geometry", "valid_from", "height_m", "floors", "ground_m"}


def reference_system(crs: Any) -> str:
    """The OGC CRS URL CityJSON 2.0 expects (``https://www.opengis.net/def/crs/EPSG/0/4544``)."""
    if crs is None:
        raise CRSError("the buildings have no CRS: CityJSON needs its referenceSystem")
    epsg = pyproj.CRS.from_user_input(crs).to_epsg()
    if epsg is None:
        raise CRSError("CityJSON needs an EPSG CRS for referenceSystem; reproject the twin")
    return f"https://www.opengis.net/def/crs/EPSG/0/{epsg}"


def _column(values: pd.Series) -> list[Any]:
    """A column as JSON-ready Python values, None where missing."""
    if pd.api.types.is_float_dtype(values.dtype):
        array = values.to_numpy(dtype=float)
        return [None if v != v else v for v in array.tolist()]  # NaN is not equal to itself
    return values.astype(object).where(values.notna(), None).tolist()


def _attributes(buildings: gpd.GeoDataFrame, blocks: Blocks) -> list[dict[str, Any]]:
    frame = pd.DataFrame(buildings.loc[blocks.uids].drop(columns=list(_SKIP), errors="ignore"))
    columns = {str(name): _column(frame[name]) for name in frame.columns}
    columns["measuredHeight"] = np.round(blocks.height_m, 3).tolist()
    columns["ground_m"] = np.round(blocks.ground_m, 3).tolist()
    columns["height_source"] = [str(v) for v in blocks.height_source]
    names = list(columns)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    if "floors" in buildings.columns:
        floors = pd.to_numeric(buildings.loc[blocks.uids, "floors"], errors="coerce").to_numpy()
        for i in np.flatnonzero(np.isfinite(floors)).tolist():
            rows[i]["storeysAboveGround"] = int(floors[i])
    return rows


def _geometry(blocks: Blocks, building: int) -> dict[str, Any]:
    solids = [[blocks.surfaces(part)] for part in blocks.parts(building)]
    if len(solids) == 1:
        return {"type": "Solid", "lod": "1.2", "boundaries": solids[0]}
    return {"type": "MultiSolid", "lod": "1.2", "boundaries": solids}


def _transform(vertices: np.ndarray) -> dict[str, list[float]]:
    return {"scale": [SCALE_M] * 3, "translate": np.floor(vertices.min(axis=0)).tolist()}


def _quantise(vertices: np.ndarray, transform: dict[str, list[float]]) -> np.ndarray:
    return np.rint((vertices - np.array(transform["translate"])) / SCALE_M).astype(np.int64)


def _metadata(blocks: Blocks, crs: Any, title: str) -> dict[str, Any]:
    low, high = blocks.vertices.min(axis=0), blocks.vertices.max(axis=0)
    return {
        "title": title,
        "referenceSystem": reference_system(crs),
        "geographicalExtent": [*np.round(low, 3).tolist(), *np.round(high, 3).tolist()],
    }


def cityjson_document(
    buildings: gpd.GeoDataFrame, *, storey_m: float = 3.0, title: str = "citytwin LOD1"
) -> dict[str, Any]:
    """The CityJSON 2.0 document (a dict) of the buildings' LOD1 solids."""
    blocks = lod1_blocks(buildings, storey_m=storey_m)
    transform = _transform(blocks.vertices)
    attributes = _attributes(buildings, blocks)
    objects = {
        str(uid): {
            "type": "Building",
            "attributes": attributes[i],
            "geometry": [_geometry(blocks, i)],
        }
        for i, uid in enumerate(blocks.uids)
    }
    return {
        "type": "CityJSON",
        "version": VERSION,
        "transform": transform,
        "metadata": _metadata(blocks, buildings.crs, title),
        "CityObjects": objects,
        "vertices": _quantise(blocks.vertices, transform),
    }


def _building_vertices(blocks: Blocks, quantised: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every building's own vertices (bottom ones, then top ones) in one array, and offsets."""
    starts, ends = blocks.vertex_ranges()
    count = ends - starts
    offsets = np.concatenate([[0], np.cumsum(2 * count)])
    within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], 2 * count)
    per = np.repeat(count, 2 * count)
    index = np.repeat(starts, 2 * count) + within % per + (within >= per) * blocks.top_offset
    return quantised[index], offsets


def _prism(size: int) -> bytes:
    """The ``Solid`` of a one-ring footprint of ``size`` corners, in its own numbering."""
    bottom = list(range(size))
    walls = [[[a, (a + 1) % size, (a + 1) % size + size, a + size]] for a in bottom]
    shell = [[bottom[::-1]], [[i + size for i in bottom]], *walls]
    return orjson.dumps({"type": "Solid", "lod": "1.2", "boundaries": [shell]})


def _feature_lines(
    buildings: gpd.GeoDataFrame, blocks: Blocks, transform: dict[str, list[float]]
) -> Iterator[bytes]:
    """One ``CityJSONFeature`` per building, serialised.

    A one-part footprint without holes (nearly every building) takes its
    ``Solid`` from a template per corner count, since in the feature's own
    numbering it depends on nothing else; others are built surface by surface.
    """
    vertices, offsets = _building_vertices(blocks, _quantise(blocks.vertices, transform))
    attributes = _attributes(buildings, blocks)
    simple = (np.diff(blocks.building_parts) == 1) & (
        np.diff(blocks.part_rings)[blocks.building_parts[:-1]] == 1
    )
    first_ring = blocks.part_rings[blocks.building_parts[:-1]]
    corners = blocks.ring_size[first_ring]
    templates: dict[int, bytes] = {}
    starts, _ = blocks.vertex_ranges()
    numpy = orjson.OPT_SERIALIZE_NUMPY
    for i, uid in enumerate(blocks.uids.tolist()):
        if simple[i]:
            size = int(corners[i])
            geometry = templates.get(size) or templates.setdefault(size, _prism(size))
        else:
            start, count = int(starts[i]), int(offsets[i + 1] - offsets[i]) // 2
            solids = [
                [blocks.surfaces(part, shift=start, top_offset=count)] for part in blocks.parts(i)
            ]
            geometry = orjson.dumps(
                {"type": "Solid", "lod": "1.2", "boundaries": solids[0]}
                if len(solids) == 1
                else {"type": "MultiSolid", "lod": "1.2", "boundaries": solids}
            )
        name = orjson.dumps(str(uid))
        yield b"".join(
            (
                b'{"type":"CityJSONFeature","id":',
                name,
                b',"CityObjects":{',
                name,
                b':{"type":"Building","attributes":',
                orjson.dumps(attributes[i], option=numpy),
                b',"geometry":[',
                geometry,
                b']}},"vertices":',
                orjson.dumps(vertices[offsets[i] : offsets[i + 1]], option=numpy),
                b"}",
            )
        )


def write_cityjson(
    buildings: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    *,
    storey_m: float = 3.0,
    title: str = "citytwin LOD1",
) -> Path:
    """Write ``.city.json`` (one document) or ``.city.jsonl`` / ``.jsonl`` (CityJSONSeq)."""
    target = Path(path)
    name = target.name.lower()
    if not (name.endswith(".json") or name.endswith(".jsonl")):
        raise UsageError(f"{target.name}: CityJSON export writes .city.json or .city.jsonl")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    options = orjson.OPT_SERIALIZE_NUMPY
    if name.endswith(".jsonl"):
        blocks = lod1_blocks(buildings, storey_m=storey_m)
        transform = _transform(blocks.vertices)
        header = {
            "type": "CityJSON",
            "version": VERSION,
            "transform": transform,
            "metadata": _metadata(blocks, buildings.crs, title),
            "CityObjects": {},
            "vertices": [],
        }
        with tmp.open("wb") as handle:
            handle.write(orjson.dumps(header, option=options) + b"\n")
            chunk: list[bytes] = []
            for line in _feature_lines(buildings, blocks, transform):
                chunk.append(line)
                if len(chunk) == 10_000:
                    handle.write(b"\n".join(chunk) + b"\n")
                    chunk.clear()
            if chunk:
                handle.write(b"\n".join(chunk) + b"\n")
    else:
        document = cityjson_document(buildings, storey_m=storey_m, title=title)
        tmp.write_bytes(orjson.dumps(document, option=options))
    os.replace(tmp, target)
    return target


def _documents(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        if path.name.lower().endswith(".jsonl"):
            lines = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
            return lines[0], lines[1:]
        return orjson.loads(path.read_bytes()), []
    except (OSError, orjson.JSONDecodeError) as exc:
        raise SourceError(f"{path} is not readable CityJSON: {exc}") from exc


def read_cityjson(path: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    """The buildings of a CityJSON / CityJSONSeq file: footprint, heights, attributes.

    The footprint is the union of the floor surfaces (the lowest horizontal
    surfaces of each solid), the height the solid's vertical extent.
    """
    source = Path(path)
    header, features = _documents(source)
    if header.get("type") != "CityJSON":
        raise SourceError(f"{source.name} is not CityJSON (its type is {header.get('type')!r})")
    transform = header.get("transform", {"scale": [1, 1, 1], "translate": [0, 0, 0]})
    scale, shift = np.array(transform["scale"]), np.array(transform["translate"])
    parts = [(header["CityObjects"], header.get("vertices", []))]
    parts += [(f["CityObjects"], f["vertices"]) for f in features]
    rows, index = [], []
    for objects, raw in parts:
        vertices = np.asarray(raw, dtype=float).reshape(-1, 3) * scale + shift
        for uid, obj in objects.items():
            if obj.get("type") != "Building" or not obj.get("geometry"):
                continue
            footprint, ground, top = _footprint(obj["geometry"][0], vertices)
            attrs = dict(obj.get("attributes", {}))
            attrs.pop("ground_m", None)
            rows.append(
                {
                    **attrs,
                    "height_m": round(top - ground, 3),
                    "ground_m": ground,
                    "geometry": footprint,
                }
            )
            index.append(uid)
    crs = _crs_of(header)
    frame = gpd.GeoDataFrame(rows, index=pd.Index(index, name="uid"), geometry="geometry", crs=crs)
    if "storeysAboveGround" in frame.columns:
        frame = frame.rename(columns={"storeysAboveGround": "floors"})
    return frame.drop(columns=["measuredHeight"], errors="ignore")


def _footprint(geometry: dict[str, Any], vertices: np.ndarray) -> tuple[Any, float, float]:
    boundaries = geometry["boundaries"]
    solids = boundaries if geometry["type"] == "MultiSolid" else [boundaries]
    polygons, grounds, tops = [], [], []
    for solid in solids:
        shell = solid[0]
        z = np.concatenate([vertices[ring, 2] for surface in shell for ring in surface])
        low = z.min()
        grounds.append(low)
        tops.append(z.max())
        for surface in shell:
            rings = [vertices[ring] for ring in surface]
            if all(np.allclose(r[:, 2], low) for r in rings):
                polygons.append(
                    shapely.Polygon(rings[0][::-1, :2], [r[::-1, :2] for r in rings[1:]])
                )
    footprint = polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)
    return footprint, float(min(grounds)), float(max(tops))


def _crs_of(header: dict[str, Any]) -> Any:
    url = header.get("metadata", {}).get("referenceSystem")
    if not url:
        return None
    return f"EPSG:{str(url).rstrip('/').split('/')[-1]}"
