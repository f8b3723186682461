"""Fast GeoJSON: geometries written by GEOS in one vectorised call, JSON assembled by orjson.

Coordinates are transformed from the twin CRS with one pyproj call per page
and written in the axis order of the output CRS, as OGC API Features Part 2
requires (CRS84: longitude, latitude; EPSG:4326 and EPSG:4490: latitude,
longitude; the Gauss-Krüger twin CRS: northing, easting).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyproj
import shapely

from twin.errors import CRSError, UsageError
from twin.query.compact import release_freed_memory
from twin.query.delta import CarriedArray
from twin.query.index import CityIndex, IndexedLayer, transformer

from .packed_texts import BLOCK, PackedTexts
from .preparing import LULL, Job, Worker

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/"
GEOJSON = "application/geo+json"


@dataclass(frozen=True)
class OutputCrs:
    """A CRS answers may be written in: its URI, its pyproj text and its axis order."""

    uri: str
    text: str  # as pyproj reads it
    swap: bool  # first axis northing / latitude

    @classmethod
    def of(cls, uri: str) -> OutputCrs:
        """The output CRS for an OGC URI (or ``EPSG:n`` / ``OGC:CRS84`` shorthand)."""
        return _output_crs(uri)


@lru_cache(maxsize=32)
def _output_crs(uri: str) -> OutputCrs:
    text = uri_to_text(uri)
    try:
        crs = pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError:
        raise CRSError(f"unknown CRS {uri!r}: PROJ does not know {text}") from None
    first = crs.axis_info[0].direction.lower() if crs.axis_info else "east"
    return OutputCrs(canonical_uri(text), text, first in ("north", "south"))


def canonical_uri(text: str) -> str:
    """The OGC URI of ``OGC:CRS84`` or ``EPSG:n`` (no lookup in the EPSG database)."""
    return CRS84 if text == "OGC:CRS84" else EPSG_URI + text.split(":", 1)[1]


def uri_to_text(uri: str) -> str:
    """``OGC:CRS84`` or ``EPSG:n`` for an OGC CRS URI (or those shorthands).

    Examples
    --------
    >>> uri_to_text("http://www.opengis.net/def/crs/EPSG/0/4490")
    'EPSG:4490'
    >>> uri_to_text("[EPSG:4326]")
    'EPSG:4326'
    """
    value = uri.strip()
    if value.startswith("[") and value.endswith("]"):  # safe CURIE
        value = value[1:-1]
    if value in (CRS84, "OGC:CRS84", "CRS84", CRS84 + "h"):
        return "OGC:CRS84"
    for prefix in (EPSG_URI, "https://www.opengis.net/def/crs/EPSG/0/", "EPSG:", "epsg:"):
        if value.startswith(prefix) and value[len(prefix) :].isdigit():
            return f"EPSG:{int(value[len(prefix) :])}"
    raise CRSError(f"unknown CRS {uri!r}: use {CRS84} or {EPSG_URI}<code>")


def crs_uri(text: str) -> str:
    """The OGC URI of ``OGC:CRS84`` / ``EPSG:n``."""
    return _output_crs(text).uri


def transform_geometries(geometries: np.ndarray, index: CityIndex, out: OutputCrs) -> np.ndarray:
    """``geometries`` (twin CRS) in ``out``, axes in its order."""
    same = out.text == index.crs_text
    if same and not out.swap:
        return geometries
    forward = None if same else transformer(index.crs_text, out.text)

    def convert(coords: np.ndarray) -> np.ndarray:
        x, y = coords[:, 0], coords[:, 1]
        if forward is not None:
            x, y = forward.transform(x, y)
        return np.column_stack((y, x) if out.swap else (x, y))

    return shapely.transform(geometries, convert)


@dataclass(frozen=True)
class Columns:
    """A layer's attributes as Arrow arrays, ready to slice for any page of features.

    Built once per layer snapshot (see :func:`columns_of`), nearly free (the
    frame's columns are Arrow-backed already): taking a page from Arrow arrays
    costs microseconds where slicing the GeoDataFrame costs a millisecond.
    """

    names: list[str]
    values: list[pa.Array | np.ndarray]  # Arrow arrays; datetime64[ms] for timestamps
    uids: pa.Array

    @classmethod
    def of(cls, layer: IndexedLayer) -> Columns:
        frame = layer.attributes
        names = property_names(layer)
        values = [_column_array(frame[name]) for name in names]
        return cls(names, values, _arrow(frame.index.to_series().astype(str)))

    def rows(self, positions: np.ndarray) -> list[list[Any]]:
        """Per column, the Python values at ``positions`` (None where missing)."""
        take = pa.array(positions)
        return [_page_values(array, positions, take) for array in self.values]


def _column_array(values: pd.Series) -> pa.Array | np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True).dt.tz_localize(None).to_numpy("datetime64[ms]")
    return _arrow(values)


def _arrow(values: pd.Series) -> pa.Array:
    """One Arrow array (NaN and NA as nulls), in one chunk: taking rows from a
    chunked array costs time in proportion to its length. Given the Series' values,
    not the Series: asked for an attribute, a Series looks the name up in its index,
    which hashes a million uids the first time."""
    data = values.array if isinstance(values.dtype, pd.api.extensions.ExtensionDtype) else None
    array = pa.array(values.to_numpy() if data is None else data, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):  # one chunk: taken as it is, not copied
        return array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()
    return array


def _page_values(array: pa.Array | np.ndarray, positions: np.ndarray, take: pa.Array) -> list[Any]:
    if isinstance(array, np.ndarray):
        text = np.datetime_as_string(array[positions], unit="ms")
        return [None if s == "NaT" else s + "Z" for s in text.tolist()]
    return list(array.take(take).to_pylist())


_COLUMNS: weakref.WeakKeyDictionary[IndexedLayer, Columns] = weakref.WeakKeyDictionary()
_COLUMNS_LOCK = threading.Lock()


def columns_of(layer: IndexedLayer) -> Columns:
    """The :class:`Columns` of a layer snapshot (built on first use, then kept with it)."""
    found = _COLUMNS.get(layer)
    if found is None:
        with _COLUMNS_LOCK:
            found = _COLUMNS.get(layer)
            if found is None:
                found = Columns.of(layer)
                _COLUMNS[layer] = found
    return found


def ready_columns(index: CityIndex) -> None:
    """Build the :class:`Columns` of every layer of ``index`` ahead of the first request.

    Examples
    --------
    >>> ready_columns(index)
    >>> all(columns_of(layer) is columns_of(layer) for layer in index)
    True
    """
    for layer in index:
        columns_of(layer)


def warm(index: CityIndex) -> Job | None:
    """Build the :class:`Columns` of every layer of ``index`` ahead of the first request
    (:func:`ready_columns`), and start writing its geometries as CRS84 GeoJSON
    (:func:`prepare_geometry_texts`)."""
    ready_columns(index)
    return prepare_geometry_texts(index)


# Every feature's geometry written once as CRS84 GeoJSON, by layer snapshot.
_TEXTS: weakref.WeakKeyDictionary[IndexedLayer, pa.Array | CarriedArray | PackedTexts] = (
    weakref.WeakKeyDictionary()
)
_NEWEST: dict[object, int] = {}  # twin path -> id of the newest snapshot being prepared
_TEXTS_LOCK = threading.Lock()
# Features written a batch (a multiple of packed_texts.BLOCK). GEOS writes a batch
# holding the interpreter lock (about 2.5 ms a thousand buildings): a request waits
# behind at most one batch, so batches stay small.
TEXT_BATCH = 1024
assert TEXT_BATCH % BLOCK == 0


TEXTS_ENV = "TWIN_GEOJSON_TEXTS"
TEXTS_MODES = ("auto", "all", "packed", "none")


def texts_mode() -> str:
    """``TWIN_GEOJSON_TEXTS``: ``auto`` (default), ``all``, ``packed`` or ``none``.

    ``auto``: plain texts for a snapshot without compact layers, packed ones
    (:class:`~twin_api.packed_texts.PackedTexts`) for a snapshot holding some;
    ``all``: plain texts always (memory for speed); ``packed``: packed always;
    ``none``: never.

    Examples
    --------
    >>> texts_mode() in TEXTS_MODES
    True
    """
    mode = os.environ.get(TEXTS_ENV, "").strip().lower() or "auto"
    if mode not in TEXTS_MODES:
        raise UsageError(f"{TEXTS_ENV}={mode!r}: use {', '.join(TEXTS_MODES)}")
    return mode


def geometry_texts(layer: IndexedLayer) -> pa.Array | CarriedArray | PackedTexts | None:
    """The layer's geometries as CRS84 GeoJSON texts by position, once prepared
    (an Arrow string array, a patched layer's :class:`~twin.query.delta.CarriedArray`,
    or :class:`~twin_api.packed_texts.PackedTexts`)."""
    return _TEXTS.get(layer)


def prepare_geometry_texts(index: CityIndex) -> Job | None:
    """Write every feature's geometry as CRS84 GeoJSON on the process's texts thread.

    A page in CRS84 (the default) then takes its features' geometries as
    ready-made JSON (``orjson.Fragment``) instead of projecting and writing
    them per request: the same bytes, about a third of a page's work. Plain
    texts cost about 250 bytes a building (one Arrow string array a layer);
    a snapshot holding compact layers (a province, see
    :mod:`twin.query.compact`) keeps them packed instead, LZ4-compressed
    in blocks of 8 features (about 125 bytes a building, see
    :mod:`twin_api.packed_texts`); ``TWIN_GEOJSON_TEXTS`` chooses otherwise
    (see :func:`texts_mode`). When a newer snapshot of the same twin comes
    in, this one stops after the layer under way. Returns the queued
    :class:`~twin_api.preparing.Job` (``join()`` waits for it), or None.
    """
    mode = texts_mode()
    if mode == "none":
        return None
    packed = mode == "packed" or (mode == "auto" and any(layer.compact for layer in index))
    with _TEXTS_LOCK:
        _NEWEST[index.path] = id(index)
    out = OutputCrs.of(CRS84)

    def batches(layer: IndexedLayer) -> Iterator[np.ndarray]:
        for start in range(0, len(layer), TEXT_BATCH):
            LULL.wait()  # requests first: a batch holds the interpreter lock
            geometries = layer.geometries[start : start + TEXT_BATCH]
            yield shapely.to_geojson(transform_geometries(geometries, index, out))

    def run() -> None:
        for layer in list(index):
            with _TEXTS_LOCK:
                if _NEWEST.get(index.path) != id(index):
                    return
            if packed:
                _TEXTS[layer] = PackedTexts.pack(batches(layer))
                continue
            carried = _carried_texts(layer, index, out)
            if carried is not None:  # a patched layer: the older layer's texts, taken
                _TEXTS[layer] = carried
                continue
            parts = [pa.array(texts, type=pa.large_string()) for texts in batches(layer)]
            _TEXTS[layer] = pa.concat_arrays(parts) if parts else pa.array([], pa.large_string())
        if packed:
            release_freed_memory()  # the batches' texts, written and compressed, are gone

    return _WRITING.submit(run)


#: The thread writing GeoJSON texts, one for the process (see :mod:`twin_api.preparing`).
_WRITING = Worker("geojson-texts")


def ready_projections(index: CityIndex | str) -> None:
    """Make the calling thread's PROJ transformations between the twin CRS and CRS84.

    pyproj makes a ``Transformer``'s PROJ object anew in each thread on its
    first use there: 0.3 s or more, seconds on a busy machine. Called by the
    thread that will run the event loop, so a page written per request (a new
    snapshot whose texts are still being prepared, another ``crs``) or a
    ``bbox`` in CRS84 never pays it while a client waits. ``index`` is a
    snapshot, or the twin CRS as stored (``EPSG:4544``), known before the
    snapshot is loaded. PROJ searches its database without the interpreter
    lock, so this may run while other threads load the twin.

    Examples
    --------
    >>> ready_projections(index)
    >>> ready_projections(index.crs_text)
    """
    crs_text = index if isinstance(index, str) else index.crs_text
    lonlat = OutputCrs.of(CRS84).text
    if crs_text != lonlat:  # the transformers pages and bbox parameters take
        for forward in (transformer(crs_text, lonlat), transformer(lonlat, crs_text)):
            forward.transform(0.0, 0.0)


def _texts(geometries: np.ndarray, index: CityIndex, out: OutputCrs) -> pa.Array:
    written = shapely.to_geojson(transform_geometries(geometries, index, out))
    return pa.array(written, type=pa.large_string())


def _carried_texts(layer: IndexedLayer, index: CityIndex, out: OutputCrs) -> CarriedArray | None:
    """A patched layer's texts from its older layer's, only the rows read written anew
    (see :class:`twin.query.delta.Lineage`); None when there is nothing to carry."""
    lineage = layer.lineage
    older = None if lineage is None else lineage.base()
    old = None if older is None else geometry_texts(older)
    if lineage is None or old is None or isinstance(old, PackedTexts):
        return None
    return lineage.carry(old, _texts(layer.geometries[lineage.read_rows], index, out))


def property_names(layer: IndexedLayer) -> list[str]:
    """The attribute columns of a layer, as served (everything but the geometry)."""
    return layer.fields


def feature_dicts(
    layer: IndexedLayer, positions: np.ndarray, index: CityIndex, out: OutputCrs
) -> list[dict[str, Any]]:
    """GeoJSON Features of rows ``positions``, geometry pre-serialised (orjson Fragment)."""
    columns = columns_of(layer)
    names = columns.names
    values = columns.rows(positions)
    take = pa.array(positions, type=pa.int64())
    ready = geometry_texts(layer) if out.uri == CRS84 else None
    texts: list[Any]
    if isinstance(ready, PackedTexts):
        texts = ready.take(positions)
    elif ready is not None:
        texts = ready.take(take).to_pylist()
    else:
        geoms = transform_geometries(layer.geometries[positions], index, out)
        texts = shapely.to_geojson(geoms).tolist()
    uids = columns.uids.take(take).to_pylist()
    return [
        {
            "type": "Feature",
            "id": uid,
            "geometry": None if text is None else orjson.Fragment(text),
            "properties": dict(zip(names, row, strict=True)),
        }
        for uid, text, row in zip(uids, texts, zip(*values, strict=True), strict=True)
    ]


def dumps(body: Any) -> bytes:
    """JSON bytes (numpy scalars and arrays allowed)."""
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def collection_bytes(features: Iterable[dict[str, Any]], **members: Any) -> bytes:
    """A FeatureCollection with ``members`` (links, numberMatched…) as JSON bytes."""
    return dumps({"type": "FeatureCollection", **members, "features": list(features)})
