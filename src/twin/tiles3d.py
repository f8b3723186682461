"""glTF 2.0 (glb) and 3D Tiles 1.1 export of the LOD1 blocks.

One glb per district (or one for all): a single mesh of triangles whose
vertices are in a local east-north-up frame (glTF's y axis up) at the
tileset's centre, with a ``_FEATURE_ID_0`` vertex attribute
(``EXT_mesh_features``) and a property table holding each feature's uid
(``EXT_structural_metadata``), so a click in a viewer gives the uid. The
``tileset.json`` (3D Tiles 1.1) has a root whose ``transform`` takes that
frame to ECEF, one child tile per glb, and ``region`` bounding volumes
(radians and metres above the ellipsoid, heights taken as ellipsoidal).

Examples
--------
>>> import geopandas as gpd, shapely, tempfile, pathlib, json
>>> b = gpd.GeoDataFrame({"height_m": [10.0], "ground_m": [500.0]},
...     geometry=[shapely.box(408700, 3392700, 408710, 3392720)], index=["buildings.B1"],
...     crs="EPSG:4544")
>>> folder = write_tileset(b, pathlib.Path(tempfile.mkdtemp()) / "tiles")
>>> tileset = json.loads((folder / "tileset.json").read_text())
>>> tileset["asset"]["version"], len(tileset["root"]["children"])
('1.1', 1)
"""

from __future__ import annotations

import itertools
import json
import os
import struct
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from twin.errors import CRSError
from twin.lod1 import Blocks, lod1_blocks, part_triangles

__all__ = ["enu_frame", "glb_bytes", "read_glb", "write_glb", "write_tileset"]

_GLB_MAGIC = 0x46546C67
_JSON_CHUNK = 0x4E4F534A
_BIN_CHUNK = 0x004E4942
_ECEF = "EPSG:4978"
_LONLATH = "EPSG:4979"


def enu_frame(lon_deg: float, lat_deg: float, height_m: float) -> np.ndarray:
    """The 4 × 4 matrix taking east-north-up metres at a point to ECEF metres."""
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    to_ecef = pyproj.Transformer.from_crs(_LONLATH, _ECEF, always_xy=True)
    origin = np.array(to_ecef.transform(lon_deg, lat_deg, height_m))
    east = np.array([-np.sin(lon), np.cos(lon), 0.0])
    north = np.array([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)])
    up = np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    matrix = np.eye(4)
    matrix[:3, 0], matrix[:3, 1], matrix[:3, 2], matrix[:3, 3] = east, north, up, origin
    return matrix


def _to_ecef(vertices: np.ndarray, crs: Any) -> np.ndarray:
    if crs is None:
        raise CRSError("the buildings have no CRS: 3D Tiles need one to place them on Earth")
    to_geo = pyproj.Transformer.from_crs(crs, _LONLATH, always_xy=True)
    lon, lat = to_geo.transform(vertices[:, 0], vertices[:, 1])
    to_ecef = pyproj.Transformer.from_crs(_LONLATH, _ECEF, always_xy=True)
    return np.column_stack(to_ecef.transform(lon, lat, vertices[:, 2]))


def _pad(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % 4)


def glb_bytes(
    positions: np.ndarray,
    triangles: np.ndarray,
    feature_ids: np.ndarray,
    uids: list[str],
    *,
    origin: tuple[float, float, float] | None = None,
) -> bytes:
    """A glb of one triangle mesh, with feature ids per vertex and a uid property table.

    ``positions`` (n, 3) in glTF axes (y up), ``triangles`` (k, 3) counter-clockwise
    seen from outside, ``feature_ids`` (n,) indexing ``uids``.
    """
    pos = np.ascontiguousarray(positions, dtype="<f4")
    idx = np.ascontiguousarray(triangles.ravel(), dtype="<u4")
    fid = np.ascontiguousarray(feature_ids, dtype="<f4")
    encoded = [u.encode("utf-8") for u in uids]
    strings = b"".join(encoded)
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype("<u4")
    blobs = [pos.tobytes(), idx.tobytes(), fid.tobytes(), strings, offsets.tobytes()]
    views, binary = [], b""
    for i, blob in enumerate(blobs):
        view: dict[str, Any] = {"buffer": 0, "byteOffset": len(binary), "byteLength": len(blob)}
        if i == 0:
            view["target"] = 34962
            view["byteStride"] = 12
        elif i == 1:
            view["target"] = 34963
        elif i == 2:
            view["target"] = 34962
        views.append(view)
        binary += _pad(blob, b"\x00")
    document = {
        "asset": {"version": "2.0", "generator": "citytwin"}
        | ({"extras": {"origin": list(origin)}} if origin else {}),
        "extensionsUsed": ["EXT_mesh_features", "EXT_structural_metadata"],
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [_primitive(len(uids))]}],
        "materials": [
            {
                "pbrMetallicRoughness": {
                    "baseColorFactor": [0.85, 0.82, 0.76, 1.0],
                    "metallicFactor": 0.0,
                }
            }
        ],
        "accessors": _accessors(pos, idx, fid),
        "bufferViews": views,
        "buffers": [{"byteLength": len(binary)}],
        "extensions": {"EXT_structural_metadata": _metadata(len(uids))},
    }
    text = _pad(json.dumps(document, separators=(",", ":")).encode("utf-8"), b" ")
    total = 12 + 8 + len(text) + 8 + len(binary)
    return b"".join(
        [
            struct.pack("<III", _GLB_MAGIC, 2, total),
            struct.pack("<II", len(text), _JSON_CHUNK),
            text,
            struct.pack("<II", len(binary), _BIN_CHUNK),
            binary,
        ]
    )


def _primitive(n_features: int) -> dict[str, Any]:
    return {
        "attributes": {"POSITION": 0, "_FEATURE_ID_0": 2},
        "indices": 1,
        "material": 0,
        "mode": 4,
        "extensions": {
            "EXT_mesh_features": {
                "featureIds": [{"featureCount": n_features, "attribute": 0, "propertyTable": 0}]
            }
        },
    }


def _accessors(pos: np.ndarray, idx: np.ndarray, fid: np.ndarray) -> list[dict[str, Any]]:
    return [
        {
            "bufferView": 0,
            "componentType": 5126,
            "count": len(pos),
            "type": "VEC3",
            "min": pos.min(axis=0).tolist(),
            "max": pos.max(axis=0).tolist(),
        },
        {"bufferView": 1, "componentType": 5125, "count": len(idx), "type": "SCALAR"},
        {"bufferView": 2, "componentType": 5126, "count": len(fid), "type": "SCALAR"},
    ]


def _metadata(n_features: int) -> dict[str, Any]:
    return {
        "schema": {
            "id": "citytwin",
            "classes": {"building": {"properties": {"uid": {"type": "STRING"}}}},
        },
        "propertyTables": [
            {
                "class": "building",
                "count": n_features,
                "properties": {"uid": {"values": 3, "stringOffsets": 4}},
            }
        ],
    }


def read_glb(data: bytes) -> tuple[dict[str, Any], np.ndarray, np.ndarray, list[str]]:
    """The JSON, positions, feature ids and uids of a glb written by :func:`glb_bytes`."""
    magic, _version, _total = struct.unpack_from("<III", data, 0)
    if magic != _GLB_MAGIC:
        raise ValueError("not a glb file")
    json_length = struct.unpack_from("<I", data, 12)[0]
    document = json.loads(data[20 : 20 + json_length])
    binary = data[20 + json_length + 8 :]
    views = document["bufferViews"]

    def view(i: int) -> bytes:
        v = views[i]
        return binary[v["byteOffset"] : v["byteOffset"] + v["byteLength"]]

    positions = np.frombuffer(view(0), dtype="<f4").reshape(-1, 3)
    feature_ids = np.frombuffer(view(2), dtype="<f4")
    offsets = np.frombuffer(view(4), dtype="<u4")
    strings = view(3)
    uids = [strings[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets.tolist())]
    return document, positions, feature_ids, uids


def _district_mesh(
    blocks: Blocks, members: np.ndarray, frame_inverse: np.ndarray, ecef: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    faces, ids = [], []
    for feature, building in enumerate(members):
        for part in blocks.parts(int(building)):
            tri = part_triangles(blocks, part)
            faces.append(tri)
            ids.append(np.full(len(tri), feature))
    triangles = np.vstack(faces)
    feature_of_face = np.concatenate(ids)
    # Flat faces: each triangle its own three vertices (one feature id per vertex).
    corners = triangles.ravel()
    local = (frame_inverse @ np.column_stack([ecef[corners], np.ones(len(corners))]).T).T[:, :3]
    gltf = np.column_stack([local[:, 0], local[:, 2], -local[:, 1]])  # ENU -> glTF (y up)
    return gltf, np.arange(len(corners)).reshape(-1, 3), np.repeat(feature_of_face, 3)


def _region(lonlath: np.ndarray) -> list[float]:
    lon, lat = np.radians(lonlath[:, 0]), np.radians(lonlath[:, 1])
    return [
        float(lon.min()),
        float(lat.min()),
        float(lon.max()),
        float(lat.max()),
        float(lonlath[:, 2].min()),
        float(lonlath[:, 2].max()),
    ]


def _placed(buildings: gpd.GeoDataFrame, storey_m: float) -> tuple[Blocks, np.ndarray, np.ndarray]:
    """The blocks, their vertices in ECEF and as lon/lat/height."""
    blocks = lod1_blocks(buildings, storey_m=storey_m)
    ecef = _to_ecef(blocks.vertices, buildings.crs)
    to_geo = pyproj.Transformer.from_crs(buildings.crs, _LONLATH, always_xy=True)
    lon, lat = to_geo.transform(blocks.vertices[:, 0], blocks.vertices[:, 1])
    return blocks, ecef, np.column_stack([lon, lat, blocks.vertices[:, 2]])


def write_glb(
    buildings: gpd.GeoDataFrame, path: str | os.PathLike[str], *, storey_m: float = 3.0
) -> Path:
    """Write every building's LOD1 block into one glb, in an east-north-up frame at its centre.

    The frame's origin (lon, lat, height) is in ``asset.extras.origin``.
    """
    blocks, ecef, lonlath = _placed(buildings, storey_m)
    centre = lonlath.mean(axis=0)
    origin = (float(centre[0]), float(centre[1]), float(lonlath[:, 2].min()))
    inverse = np.linalg.inv(enu_frame(*origin))
    members = np.arange(len(blocks))
    positions, triangles, feature_ids = _district_mesh(blocks, members, inverse, ecef)
    data = glb_bytes(
        positions, triangles, feature_ids, [str(u) for u in blocks.uids], origin=origin
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def write_tileset(
    buildings: gpd.GeoDataFrame,
    folder: str | os.PathLike[str],
    *,
    districts: pd.Series | None = None,
    storey_m: float = 3.0,
) -> Path:
    """Write one glb per district and ``tileset.json`` into ``folder``; return the folder.

    Parameters
    ----------
    buildings : GeoDataFrame
        Buildings indexed by uid, with heights (see :func:`twin.lod1.block_heights`).
    districts : Series, optional
        District name per building uid; all buildings in one tile without it.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    blocks, ecef, lonlath = _placed(buildings, storey_m)
    centre = lonlath.mean(axis=0)
    frame = enu_frame(float(centre[0]), float(centre[1]), float(lonlath[:, 2].min()))
    inverse = np.linalg.inv(frame)
    names = (
        districts.reindex(blocks.uids).fillna("other").astype(str).to_numpy()
        if districts is not None
        else np.full(len(blocks), "all")
    )
    children = []
    for number, name in enumerate(sorted({str(n) for n in names})):
        members = np.flatnonzero(names == name)
        positions, triangles, feature_ids = _district_mesh(blocks, members, inverse, ecef)
        uri = f"district_{number:03d}.glb"
        (out / uri).write_bytes(
            glb_bytes(positions, triangles, feature_ids, [str(u) for u in blocks.uids[members]])
        )
        used = _vertices_of(blocks, members)
        children.append(
            {
                "boundingVolume": {"region": _region(lonlath[used])},
                "geometricError": 0.0,
                "content": {"uri": uri},
                "extras": {"district": name, "buildings": len(members)},
            }
        )
    root_region = _region(lonlath)
    span = max(root_region[2] - root_region[0], root_region[3] - root_region[1]) * 6.4e6
    tileset = {
        "asset": {"version": "1.1", "generator": "citytwin"},
        "geometricError": float(span),
        "root": {
            "transform": frame.T.ravel().tolist(),  # column-major
            "boundingVolume": {"region": root_region},
            "geometricError": float(span / 4),
            "refine": "ADD",
            "children": children,
        },
    }
    (out / "tileset.json").write_text(json.dumps(tileset, indent=1), encoding="utf-8")
    return out


def _vertices_of(blocks: Blocks, members: np.ndarray) -> np.ndarray:
    used: list[int] = []
    for building in members:
        for part in blocks.parts(int(building)):
            for ring in range(int(blocks.part_rings[part]), int(blocks.part_rings[part + 1])):
                used.extend(blocks.ring(ring))
    bottom = np.array(used)
    return np.concatenate([bottom, bottom + blocks.top_offset])
