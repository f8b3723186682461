"""Search (搜索): features by attribute, or by name, address or code text; exact and fuzzy.

Text is matched, case-insensitively, against every text field of every layer
the caller may read (names, addresses, codes, the uid): an equal value scores
100, a value containing the text 90, and with ``fuzzy=True`` a name or address
close to it (rapidfuzz's WRatio, 0-100) scores what it scores, down to
``min_score`` (codes and uids are matched exactly or by containment only: a
code one character off is another object). Fuzzy hits of equal score are
ordered by how alike they sound (toneless pinyin, by pypinyin): 天杨花园 ties
天阳花园 and 天坝花园 by characters, and 天阳花园 (杨, 阳: both *yang*) comes first.
Attribute filters (``where={"land_use": "R2"}``) keep only features whose field
equals the value (numerically for numeric fields) and apply with or without text.

Examples
--------
>>> from twin.query.search import search
>>> name = city.layer("parcels")["name"].dropna().iloc[0]
>>> search(index, name).hits[0].layer
'parcels'
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from twin.errors import UsageError
from twin.query.common import GeometryOut, derived, feature_dict, visible_layers
from twin.query.index import CityIndex, IndexedLayer

__all__ = ["MAX_RESULTS", "SearchHit", "SearchResult", "fuzzy_field", "search", "text_fields"]

#: The most hits one search returns.
MAX_RESULTS = 500
_MAX_TEXT = 200
_EXACT, _CONTAINS = 100.0, 90.0
_SKIP = ("valid_from",)


@dataclass
class SearchHit:
    """One feature found: where, how well and through which field."""

    layer: str
    kind: str
    uid: str
    field: str | None
    value: str | None
    score: float
    how: str  # exact, contains, fuzzy, attribute or address
    feature: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "kind": self.kind,
            "uid": self.uid,
            "field": self.field,
            "value": self.value,
            "score": self.score,
            "how": self.how,
            "feature": self.feature,
        }


@dataclass
class SearchResult:
    """Hits, best first; ``count`` is how many matched before ``limit``."""

    text: str | None
    where: dict[str, str]
    fuzzy: bool
    searched: list[str]
    count: int = 0
    hits: list[SearchHit] = field(default_factory=list)
    #: The standard-address matcher's answer (:func:`twin.address.onemap.search_places`).
    address: dict[str, Any] | None = None

    @property
    def truncated(self) -> bool:
        return self.count > len(self.hits)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "where": self.where,
            "fuzzy": self.fuzzy,
            "searched": self.searched,
            "count": self.count,
            "truncated": self.truncated,
            "hits": [h.to_dict() for h in self.hits],
            "address": self.address,
        }


def text_fields(layer: IndexedLayer) -> list[str]:
    """The layer's text fields (string columns), ``uid`` first."""
    frame = layer.frame
    names = [
        str(c)
        for c in frame.columns
        if c != frame.geometry.name
        and c not in _SKIP
        and (pd.api.types.is_string_dtype(frame[c]) or frame[c].dtype == object)
    ]
    return ["uid", *names]


def fuzzy_field(name: str) -> bool:
    """Whether fuzzy matching applies to field ``name`` (names and addresses).

    Examples
    --------
    >>> [fuzzy_field(f) for f in ("name", "address", "road_name", "地块名称", "uid", "pipe_id")]
    [True, True, True, True, False, False]
    """
    lowered = name.lower()
    return (
        lowered in ("name", "address")
        or lowered.endswith(("_name", "_address"))
        or "名称" in name
        or "地址" in name
    )


def _lowered(index: CityIndex, layer: IndexedLayer, name: str) -> pd.Series:
    def build() -> pd.Series:
        values = layer.frame.index if name == "uid" else layer.frame[name]
        text = pd.Series(values, copy=False).astype("string")
        return text.str.lower().reset_index(drop=True)

    return derived(index, ("lowered", layer.name, name), build)


def _choices(index: CityIndex, layer: IndexedLayer, name: str) -> list[str]:
    def build() -> list[str]:
        return _lowered(index, layer, name).fillna("").tolist()

    return derived(index, ("choices", layer.name, name), build)


def _attribute_mask(layer: IndexedLayer, where: Mapping[str, str]) -> np.ndarray | None:
    """Rows of ``layer`` whose fields equal the ``where`` values (None: a field is missing)."""
    frame = layer.frame
    mask = np.ones(len(frame), dtype=bool)
    for name, wanted in where.items():
        if name == "uid":
            column = pd.Series(frame.index, copy=False)
        elif name in frame.columns and name != frame.geometry.name:
            column = frame[name]
        else:
            return None
        if pd.api.types.is_bool_dtype(column):
            flag = str(wanted).strip().lower() in ("1", "true", "yes", "是")
            mask &= column.fillna(not flag).to_numpy(dtype=bool) == flag
        elif pd.api.types.is_numeric_dtype(column):
            number = pd.to_numeric(pd.Series([wanted]), errors="coerce").iloc[0]
            if pd.isna(number):
                raise UsageError(f"{name}={wanted!r}: {name} is numeric, give a number")
            mask &= (column == number).fillna(False).to_numpy(dtype=bool)
        else:
            mask &= (column.astype("string") == str(wanted)).fillna(False).to_numpy(dtype=bool)
    return mask


def _text_scores(
    index: CityIndex,
    layer: IndexedLayer,
    text: str,
    fields: Collection[str] | None,
    fuzzy: bool,
    min_score: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the best score (0: no match), the field giving it and how it matched."""
    n = len(layer.frame)
    best, field_of, how = np.zeros(n), np.full(n, -1), np.zeros(n, dtype=np.int8)
    needle = text.lower()
    for k, name in enumerate(text_fields(layer)):
        if fields is not None and name not in fields:
            continue
        lowered = _lowered(index, layer, name)
        equal = (lowered == needle).fillna(False).to_numpy(dtype=bool)
        inside = lowered.str.contains(needle, regex=False).fillna(False).to_numpy(dtype=bool)
        score = np.where(equal, _EXACT, np.where(inside, _CONTAINS, 0.0))
        kind = np.where(equal, 1, np.where(inside, 2, 0)).astype(np.int8)
        if fuzzy and fuzzy_field(name):
            matches = process.extract(
                needle,
                _choices(index, layer, name),
                scorer=fuzz.WRatio,
                score_cutoff=min_score,
                limit=MAX_RESULTS,
            )
            for _, value, row in matches:
                if score[row] < min(float(value), _CONTAINS - 0.01):
                    score[row], kind[row] = round(min(float(value), _CONTAINS - 0.01), 2), 3
        better = score > best
        best[better], field_of[better], how[better] = score[better], k, kind[better]
    return best, field_of, how


_HOW = {1: "exact", 2: "contains", 3: "fuzzy"}


def _layer_hits(
    index: CityIndex,
    layer: IndexedLayer,
    text: str | None,
    mask: np.ndarray | None,
    options: tuple[Collection[str] | None, bool, float, int],
) -> tuple[int, list[tuple[float, float, int, str | None, str]]]:
    """How many rows match, and the best ``limit`` as (score, sound, row, field, how)."""
    fields, fuzzy, min_score, limit = options
    if text is None:
        rows = np.flatnonzero(mask) if mask is not None else np.arange(len(layer.frame))
        return len(rows), [(_EXACT, 0.0, int(r), None, "attribute") for r in rows[:limit]]
    best, field_of, how = _text_scores(index, layer, text, fields, fuzzy, min_score)
    hit = best > 0
    if mask is not None:
        hit &= mask
    rows = np.flatnonzero(hit)
    names = text_fields(layer)
    heard = _sounds(index, layer, text, rows[how[rows] == 3], field_of)
    top = rows[np.lexsort((rows, -heard[rows], -best[rows]))][:limit]
    return len(rows), [
        (float(best[r]), float(heard[r]), int(r), names[field_of[r]], _HOW[int(how[r])])
        for r in top
    ]


def _sounds(
    index: CityIndex, layer: IndexedLayer, text: str, rows: np.ndarray, field_of: np.ndarray
) -> np.ndarray:
    """Per row: how alike its matched value sounds to ``text`` (0-100; fuzzy ``rows`` only).

    The tie-break between fuzzy hits of one score: 天杨花园 is as close to 天阳花园
    as to 天坝花园 by characters, but 杨 and 阳 are both *yang*.
    """
    heard = np.zeros(len(layer.frame))
    if len(rows) == 0:
        return heard
    from pypinyin import lazy_pinyin  # loads its dictionary: only when a fuzzy hit needs it

    needle = lazy_pinyin(text.lower())
    names = text_fields(layer)
    for row in rows.tolist():
        value = _choices(index, layer, names[field_of[row]])[row]
        heard[row] = fuzz.ratio(needle, lazy_pinyin(value))
    return heard


def _check(text: str | None, where: Mapping[str, str], limit: int, min_score: float) -> None:
    if text is not None and not 1 <= len(text.strip()) <= _MAX_TEXT:
        raise UsageError(f"search text must have 1 to {_MAX_TEXT} characters")
    if text is None and not where:
        raise UsageError("give text to search for, attribute filters (field=value), or both")
    if not 1 <= limit <= MAX_RESULTS:
        raise UsageError(f"limit {limit}: give 1 to {MAX_RESULTS} hits")
    if not 0 <= min_score <= 100:
        raise UsageError(f"min_score {min_score}: give a score from 0 to 100")


def search(
    index: CityIndex,
    text: str | None = None,
    *,
    where: Mapping[str, str] | None = None,
    layers: Collection[str] | None = None,
    fields: Collection[str] | None = None,
    fuzzy: bool = False,
    min_score: float = 70.0,
    limit: int = 20,
    coords: str | None = None,
    geometry: bool = True,
) -> SearchResult:
    """Features matching ``text`` and/or the attribute filters ``where``, best first.

    Parameters
    ----------
    index : CityIndex
        The twin snapshot.
    text : str, optional
        Name, address or code text (1 to 200 characters), case-insensitive.
    where : mapping of str to str, optional
        Attribute filters ``{field: value}``; a layer without one of the fields is skipped.
    layers : collection of str, optional
        The layers the caller may read (None: all).
    fields : collection of str, optional
        Only these text fields (default: every text field, ``uid`` included).
    fuzzy : bool, default False
        Also return names and addresses close to ``text`` (scores below 90).
    min_score : float, default 70
        The lowest fuzzy score kept (0-100).
    limit : int, default 20
        The most hits returned (1 to 500); ``count`` has them all.
    coords : {"wgs84", "gcj02", "bd09"}, optional
        Web-map convention of the returned geometries.
    geometry : bool, default True
        Include each feature's geometry.

    Returns
    -------
    SearchResult
        Hits ordered by score, then layer order, then position in the layer.
    """
    filters = {str(k): str(v) for k, v in (where or {}).items()}
    _check(text, filters, limit, min_score)
    shown = visible_layers(index, layers)
    result = SearchResult(text, filters, fuzzy, [item.name for item in shown])
    options = (fields, fuzzy, min_score, limit)
    ranked: list[tuple[float, float, int, int, IndexedLayer, str | None, str]] = []
    for order, layer in enumerate(shown):
        mask = _attribute_mask(layer, filters) if filters else None
        if filters and mask is None:
            continue
        count, top = _layer_hits(
            index, layer, None if text is None else text.strip(), mask, options
        )
        result.count += count
        ranked += [
            (score, heard, order, row, layer, name, how) for score, heard, row, name, how in top
        ]
    ranked.sort(key=lambda r: (-r[0], -r[1], r[2], r[3]))  # ties: the closer sound first
    out = GeometryOut(index, coords) if geometry else None
    for score, _, _, row, layer, name, how in ranked[:limit]:
        feature = feature_dict(index, layer, [row], out)[0]
        value = None if name is None else feature["properties"].get(name, feature["id"])
        result.hits.append(
            SearchHit(layer.name, layer.kind, feature["id"], name, value, score, how, feature)
        )
    return result
