"""Validation of imported features against their layer kind.

Each check returns, per row, either None (fine) or the reason the row is
rejected, so that an import report can say exactly what was wrong where.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import pandas as pd
import shapely
from geopandas import GeoSeries

from twin.kinds import FieldSpec, LayerKind

_Frame = TypeVar("_Frame", bound=pd.DataFrame)
# shapely type ids: 0 Point, 1 LineString, 3 Polygon, 5 MultiLineString, 6 MultiPolygon
_TYPE_IDS = {"point": [0], "line": [1, 5], "polygon": [3, 6]}
_FAMILIES = {
    "point": ("Point",),
    "line": ("LineString", "MultiLineString"),
    "polygon": ("Polygon", "MultiPolygon"),
}
_TRUE = {"1", "true", "t", "yes", "y", "是", "有"}
_FALSE = {"0", "false", "f", "no", "n", "否", "无"}
_ONEWAY = {
    "yes": 1,
    "true": 1,
    "1": 1,
    "是": 1,
    "单行": 1,
    "forward": 1,
    "no": 0,
    "false": 0,
    "0": 0,
    "否": 0,
    "双行": 0,
    "-1": -1,
    "reverse": -1,
    "backward": -1,
}


def new_reasons(n: int) -> np.ndarray:
    """An array of ``n`` empty rejection reasons."""
    return np.full(n, None, dtype=object)


def note(reasons: np.ndarray, mask: np.ndarray, message: str) -> None:
    """Record ``message`` for rows in ``mask`` that have no reason yet (first one wins)."""
    reasons[mask & pd.isna(reasons)] = message


def note_values(
    reasons: np.ndarray, mask: np.ndarray, spec: FieldSpec, raw: pd.Series, problem: str
) -> None:
    """Record "<field>=<value> <problem>" for rows in ``mask`` that have no reason yet."""
    if not mask.any():
        return
    values = raw.to_numpy(dtype=object)
    for i in np.flatnonzero(mask & pd.isna(reasons)):
        reasons[i] = f"{spec.name}={values[i]!r} {problem}"


def valid_geometries(values: np.ndarray) -> np.ndarray:
    """``shapely.is_valid`` of ``values``, on two cores for large arrays.

    Examples
    --------
    >>> import shapely
    >>> bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    >>> valid_geometries(np.array([shapely.box(0, 0, 1, 1), bowtie, None])).tolist()
    [True, False, False]
    """
    return _in_threads(shapely.is_valid, values)


def check_geometries(
    geoms: GeoSeries, kind: LayerKind, reasons: np.ndarray, *, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Repair what can be repaired and reject what does not fit ``kind``.

    ``valid`` is ``shapely.is_valid`` of ``geoms`` when the caller has computed it
    (unwrapping a one-part multi-geometry does not change validity).

    Returns
    -------
    geometries : ndarray of shapely geometries
        The geometries, repaired where they were invalid.
    repaired : ndarray of bool
        Which rows were repaired (made valid, or a one-point MultiPoint made a Point).
    """
    values = np.asarray(geoms.array, dtype=object)
    missing = shapely.is_missing(values)
    note(reasons, missing, "no geometry")
    empty = ~missing & shapely.is_empty(values)
    note(reasons, empty, "empty geometry")
    repaired = np.zeros(len(values), dtype=bool)
    present = ~(missing | empty)
    if kind.geometry == "point":
        multi = shapely.get_type_id(values) == 4
        single = present & multi & (shapely.get_num_geometries(values) == 1)
        values[single] = shapely.get_geometry(values[single], 0)
        repaired |= single
    elif kind.geometry == "line":
        # FileGDB and Shapefile store every polyline as multi-part: unwrap the one-part ones.
        one_part = present & (shapely.get_type_id(values) == 5)
        one_part &= shapely.get_num_geometries(values) == 1
        values[one_part] = shapely.get_geometry(values[one_part], 0)
    invalid = present & ~(valid_geometries(values) if valid is None else valid)
    for i in np.flatnonzero(invalid):
        values[i] = _repair(values[i], kind.geometry)
        repaired[i] = values[i] is not None
    unfixable = f"invalid geometry that cannot be repaired as a {kind.geometry}"
    note(reasons, invalid & ~repaired, unfixable)
    type_ids = shapely.get_type_id(values)
    wrong = present & ~shapely.is_missing(values) & ~np.isin(type_ids, _TYPE_IDS[kind.geometry])
    for i in np.flatnonzero(wrong & pd.isna(reasons)):
        reasons[i] = f"a {values[i].geom_type} does not fit kind {kind.name} ({kind.geometry})"
    return values, repaired & pd.isna(reasons)


def _in_threads(func: Callable[[np.ndarray], np.ndarray], values: np.ndarray) -> np.ndarray:
    """Run a vectorised shapely predicate on two cores (shapely releases the GIL)."""
    if len(values) < 200_000:
        return func(values)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return np.concatenate(list(pool.map(func, np.array_split(values, 2))))


def _repair(geom: shapely.Geometry, family: str) -> shapely.Geometry | None:
    fixed = shapely.make_valid(geom)
    parts = [p for p in shapely.get_parts(fixed) if p.geom_type in _FAMILIES[family]]
    parts = [q for p in parts for q in shapely.get_parts(p)]
    if not parts:
        return None
    if family == "polygon":
        return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
    if family == "line":
        return parts[0] if len(parts) == 1 else shapely.MultiLineString(parts)
    return parts[0] if len(parts) == 1 else None


def convert_fields(frame: _Frame, kind: LayerKind, reasons: np.ndarray) -> _Frame:
    """Convert the kind's declared fields to their types; note impossible values.

    Fields the kind does not declare are left exactly as they came.
    """
    out = frame.copy(deep=False)  # columns are replaced, never changed in place
    for spec in kind.fields:
        if spec.name not in out.columns:
            continue
        out[spec.name] = _convert(out[spec.name], spec, reasons)
    return out


#: Whole numbers beyond this lose digits as floats (2**53); the twin refuses them.
_LARGEST_WHOLE = float(2**53)


def _convert(series: pd.Series, spec: FieldSpec, reasons: np.ndarray) -> pd.Series:
    raw = series
    text = _stripped_text(raw)
    blank = np.array(raw.isna() if text is None else (text.isna() | (text == "")), dtype=bool)
    if text is not None:
        blank |= text.isin(["nan", "None", "NULL", "null"]).to_numpy(dtype=bool)
    if spec.dtype in ("int", "float"):
        result = _numeric(raw, text, blank, spec, reasons)
    elif spec.dtype == "bool":
        result = _boolean(raw, text, blank, spec, reasons)
    elif spec.dtype == "oneway":
        result = _oneway(raw, text, blank, spec, reasons)
    else:
        result = _as_text(raw, text, blank, spec)
        if spec.choices:
            outside = ~blank & ~result.isin(spec.choices).to_numpy(dtype=bool)
            choices = ", ".join(spec.choices)
            note_values(reasons, outside, spec, raw, f"is not one of {choices}")
    if spec.required:
        note(reasons, blank, f"{spec.name} is empty")
    return result


def _stripped_text(raw: pd.Series) -> pd.Series | None:
    """The values as stripped strings, or None when the column is not textual."""
    if pd.api.types.is_string_dtype(raw) and not pd.api.types.is_object_dtype(raw):
        return raw.str.strip()
    if pd.api.types.is_object_dtype(raw):
        return raw.map(lambda v: None if v is None or v is pd.NA or v != v else str(v).strip())
    return None


def _numeric(
    raw: pd.Series,
    text: pd.Series | None,
    blank: np.ndarray,
    spec: FieldSpec,
    reasons: np.ndarray,
) -> pd.Series:
    if text is None:
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
    else:
        values = pd.to_numeric(text.where(~blank), errors="coerce").astype("float64")
        note_values(reasons, ~blank & values.isna().to_numpy(), spec, raw, "is not a number")
    infinite = np.isinf(values.to_numpy())
    note_values(reasons, infinite, spec, raw, "is not a finite number")
    values = values.where(~infinite)
    if spec.dtype == "int":
        frac = (values.notna() & (values != values.round())).to_numpy()
        note_values(reasons, frac, spec, raw, "is not a whole number")
        _check_range(values, spec, raw, reasons)
        huge = (values.abs() > _LARGEST_WHOLE).to_numpy(dtype=bool)
        note_values(reasons, huge & ~frac, spec, raw, "is too large for a whole number")
        return values.where(~frac & ~huge).round().astype("Int64")
    _check_range(values, spec, raw, reasons)
    return values


def _boolean(
    raw: pd.Series,
    text: pd.Series | None,
    blank: np.ndarray,
    spec: FieldSpec,
    reasons: np.ndarray,
) -> pd.Series:
    words = (text if text is not None else raw.astype(str)).str.lower()
    parsed = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    parsed[words.isin(_TRUE).to_numpy(dtype=bool)] = True
    parsed[words.isin(_FALSE).to_numpy(dtype=bool)] = False
    note_values(reasons, ~blank & parsed.isna().to_numpy(), spec, raw, "is not yes/no")
    return parsed


def _oneway(
    raw: pd.Series,
    text: pd.Series | None,
    blank: np.ndarray,
    spec: FieldSpec,
    reasons: np.ndarray,
) -> pd.Series:
    words = (text if text is not None else raw.astype(str)).str.lower()
    words = words.str.replace(r"\.0$", "", regex=True)
    parsed = words.map(_ONEWAY).astype("Int8")
    unknown = ~blank & parsed.isna().to_numpy()
    note_values(reasons, unknown, spec, raw, "is not a one-way flag (yes / no / -1)")
    return parsed.where(~blank, 0).astype("Int8")


def _as_text(
    raw: pd.Series, text: pd.Series | None, blank: np.ndarray, spec: FieldSpec
) -> pd.Series:
    if text is None:  # numbers used as codes: 12.0 -> "12"
        if pd.api.types.is_float_dtype(raw) and (raw.dropna() == raw.dropna().round()).all():
            raw = raw.astype("Int64")
        text = raw.astype("str").where(~blank)
    result = text.where(~blank) if blank.any() else text
    if spec.choices:
        result = result.str.lower()
    return result.astype("str")


def _check_range(values: pd.Series, spec: FieldSpec, raw: pd.Series, reasons: np.ndarray) -> None:
    if spec.minimum is not None:
        low = (values < spec.minimum).fillna(False).to_numpy(dtype=bool)
        note_values(reasons, low, spec, raw, f"is below {spec.minimum:g}")
    if spec.maximum is not None:
        high = (values > spec.maximum).fillna(False).to_numpy(dtype=bool)
        note_values(reasons, high, spec, raw, f"is above {spec.maximum:g}")
