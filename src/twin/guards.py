"""Guards against silent wrong answers: small checks the import, store and query code call.

Each function either returns a cleaned value or raises a :mod:`twin.errors`
exception with a one-line message saying what is wrong and how to fix it.
None of them writes anything.
"""

from __future__ import annotations

import codecs
import contextlib
import math
import os
import re
import shutil
import stat
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import shapely

from twin.errors import (
    CRSError,
    InputDataError,
    ReadOnlyTwinError,
    SourceError,
    StorageError,
    UsageError,
)
from twin.kinds import Classification

# Columns the twin writes itself, or that the GeoPackage and GDAL hold: a source
# field with one of these names, in any case, would collide with them.
RESERVED_NAMES = frozenset(
    {"uid", "valid_from", "valid_to", "change", "import_id", "fid", "geom", "geometry"}
)
DEFAULT_MAX_REMOVED_SHARE = 0.2
DEFAULT_MAX_SNAP_M = 1000.0
_GEOJSON_CRS = re.compile(rb'"crs"\s*:\s*\{.*?"name"\s*:\s*"([^"]+)"', re.DOTALL)


# -- field names -----------------------------------------------------------
def safe_field_names(columns: Iterable[str], *, geometry: str = "geometry") -> dict[str, str]:
    """Renames that keep source fields clear of the twin's columns and of each other.

    A field named like a reserved column (``UID``, ``Valid_From``, ``FID``,
    ``geom``, ``Geometry`` …, any case) becomes ``src_<name>``; fields that
    differ only by case (``Name``, ``name``) keep the first and number the
    others (``name_2``). GeoPackage column names are case-insensitive, so
    both would otherwise collide in the file.

    Parameters
    ----------
    columns : iterable of str
        The attribute columns, in source order (the geometry column is skipped).
    geometry : str, default "geometry"
        The active geometry column's name.

    Returns
    -------
    dict
        ``{old: new}`` for the renamed fields only.

    Examples
    --------
    >>> safe_field_names(["UID", "Name", "name", "geometry", "Geometry"])
    {'UID': 'src_UID', 'name': 'name_2', 'Geometry': 'src_Geometry'}
    """
    names = [str(c) for c in columns if c != geometry]
    taken = {n.lower() for n in names} | RESERVED_NAMES
    seen: set[str] = set()
    renames: dict[str, str] = {}
    for name in names:
        low = name.lower()
        if low in RESERVED_NAMES:
            new = _free_name(f"src_{name}", taken)
        elif low in seen:
            new = _free_name(name, taken, start=2)
        else:
            seen.add(low)
            continue
        taken.add(new.lower())
        seen.add(new.lower())
        renames[name] = new
    return renames


def _free_name(base: str, taken: set[str], start: int | None = None) -> str:
    if start is None and base.lower() not in taken:
        return base
    n = start or 2
    while f"{base}_{n}".lower() in taken:
        n += 1
    return f"{base}_{n}"


# -- values -----------------------------------------------------------------
def nonfinite_geometries(values: np.ndarray, *, valid: np.ndarray | None = None) -> np.ndarray:
    """Which geometries hold an infinite or NaN coordinate (missing ones excluded).

    ``valid`` (``shapely.is_valid(values)``, when the caller has it) narrows the
    scan: GEOS reports an x or y that is not finite as invalid, so only invalid
    geometries and those with z need their coordinates read (at a million
    footprints this saves reading every coordinate).

    Examples
    --------
    >>> import shapely
    >>> values = np.array([shapely.Point(1, 2), shapely.Point(float("inf"), 2), None,
    ...                    shapely.Point(1, 2, float("nan")), shapely.Point(1, 2, float("inf"))])
    >>> nonfinite_geometries(values).tolist()
    [False, True, False, False, True]
    >>> nonfinite_geometries(values, valid=shapely.is_valid(values)).tolist()
    [False, True, False, False, True]
    """
    if valid is not None:
        suspects = np.flatnonzero(~valid | shapely.has_z(values))
        bad = np.zeros(len(values), dtype=bool)
        bad[suspects] = nonfinite_geometries(values[suspects])
        return bad
    coords, rows = shapely.get_coordinates(values, include_z=True, return_index=True)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(coords) | np.isnan(coords) & (np.arange(3) == 2)  # 2D: z is NaN
    bad = np.zeros(len(values), dtype=bool)
    bad[np.unique(rows[~finite.all(axis=1)])] = True
    return bad


def check_classification(value: str | None) -> str | None:
    """``value`` if it is a classification level, else a :class:`UsageError` listing them."""
    if value is None:
        return None
    try:
        return Classification(str(value).lower()).value
    except ValueError:
        levels = ", ".join(c.value for c in Classification)
        raise UsageError(f"classification={value!r} is not a level: use one of {levels}") from None


def check_encoding(name: str | None) -> str | None:
    """``name`` if Python knows that text encoding, else a :class:`UsageError`."""
    if name is None:
        return None
    try:
        codecs.lookup(name)
    except LookupError:
        raise UsageError(
            f"encoding={name!r} is not a known text encoding: use e.g. UTF-8, GBK or GB18030"
        ) from None
    return name


def undecodable_text_error(source: Path, fmt: str, encoding: str | None) -> SourceError:
    """The error for a source whose text does not decode (GeoJSON not UTF-8, wrong encoding)."""
    if fmt == "geojson":
        return SourceError(
            f"{source.name} is not UTF-8 text, which GeoJSON requires (RFC 7946): convert it, "
            f"e.g. iconv -f GBK -t UTF-8 {source.name} > fixed.geojson"
        )
    used = f"encoding={encoding!r}" if encoding else "the declared encoding"
    return SourceError(
        f"the text of {source.name} does not decode with {used}: "
        "give the right one, e.g. encoding='GBK' or encoding='UTF-8'"
    )


# -- deliveries -------------------------------------------------------------
def dbf_record_count(source: Path) -> int | None:
    """The record count a Shapefile's DBF header declares (None without a DBF)."""
    for dbf in (source.with_suffix(".dbf"), source.with_suffix(".DBF")):
        if dbf.is_file():
            with open(dbf, "rb") as handle:
                head = handle.read(8)
            return int.from_bytes(head[4:8], "little") if len(head) == 8 else None
    return None


def check_rows_read(read: int, declared: int | None, source: Path) -> None:
    """Fail when fewer (or more) rows were read than the format declares (a truncated file)."""
    if declared is not None and declared >= 0 and read != declared:
        raise SourceError(
            f"{source.name} declares {declared} features but {read} could be read: the file "
            "is truncated or damaged; ask for the delivery again (nothing was imported)"
        )


def check_something_imported(
    read: int, imported: int, layer: str, source: str, reasons: Sequence[str] = ()
) -> None:
    """Fail when a delivery holds no feature, or every feature was rejected.

    ``reasons`` are the rejections' reasons: the message names the commonest two,
    since a failed import shows no report.

    Examples
    --------
    >>> try:
    ...     check_something_imported(3, 0, "b", "b.shp", ["no id", "empty geometry", "no id"])
    ... except InputDataError as error:
    ...     print(error)
    all 3 features of b.shp were rejected: no id (2), empty geometry (1); nothing was imported
    """
    if read == 0:
        raise InputDataError(
            f"{Path(source).name} holds no features: an empty delivery would empty layer "
            f"{layer}; nothing was imported"
        )
    if imported == 0:
        counted = Counter(reasons).most_common(2)
        why = (
            ": " + ", ".join(f"{reason} ({n})" for reason, n in counted)
            if counted
            else " (swapped x/y or a wrong src_crs= are the usual causes)"
        )
        raise InputDataError(
            f"all {read} features of {Path(source).name} were rejected{why}; nothing was imported"
        )


def check_removals(layer: str, stored: int, removed: int, *, allow: bool, max_share: float) -> None:
    """Fail when a re-import would remove more than ``max_share`` of a layer's features."""
    if allow or stored == 0 or removed / stored <= max_share:
        return
    raise InputDataError(
        f"this import would remove {removed} of the {stored} features of layer {layer} "
        f"({removed / stored:.0%}, more than {max_share:.0%}): check the delivery, or pass "
        "allow_removals=True if the removals are meant"
    )


def check_same_delivery(
    layer: str,
    *,
    stored_id: str | None,
    stored_source: str | None,
    new_id: str | None,
    new_source: str,
    matched_share: float,
    replace: bool,
) -> None:
    """Fail when a re-import looks like another dataset, unless ``replace``.

    Another id field, or another source file name, is fine as long as most
    stored features are found again by uid (a re-delivery, or a twin export
    carrying its uids); when fewer than half are (``matched_share`` < 0.5),
    every uid changes or it is a different dataset in the wrong layer.

    Examples
    --------
    >>> check_same_delivery("parcels", stored_id="code", stored_source="a.shp", new_id="code",
    ...                     new_source="a_2026.shp", matched_share=0.98, replace=False)
    """
    if replace:
        return
    if (stored_id or None) != (new_id or None) and matched_share < 0.5:
        raise UsageError(
            f"layer {layer} was imported with id field {stored_id!r}, this import uses "
            f"{new_id!r}: every uid would change; pass replace=True to replace the layer anyway"
        )
    if (
        stored_source is not None
        and Path(stored_source).name != Path(new_source).name
        and matched_share < 0.5
    ):
        raise UsageError(
            f"layer {layer} was imported from {Path(stored_source).name}; "
            f"{Path(new_source).name} holds only {matched_share:.0%} of its features: "
            "pass replace=True if this delivery replaces the layer"
        )


# -- coordinate reference systems -------------------------------------------
def geojson_crs_member(source: Path) -> str | None:
    """The CRS name a GeoJSON's ``crs`` member declares (the old 2008 spec), if any."""
    with open(source, "rb") as handle:
        head = handle.read(1 << 16)
    match = _GEOJSON_CRS.search(head)
    return match.group(1).decode("utf-8", "replace") if match else None


def check_geojson_crs(source: Path) -> None:
    """Fail on a GeoJSON ``crs`` member naming a CRS that does not exist (GDAL reads 4326)."""
    name = geojson_crs_member(source)
    if name is None:
        return
    try:
        pyproj.CRS.from_user_input(name)
    except pyproj.exceptions.CRSError:
        raise CRSError(
            f"{source.name} declares CRS {name!r}, which does not exist: fix its crs member "
            "or give the right one with src_crs="
        ) from None


def outside_area_of_use(
    points: np.ndarray, crs: pyproj.CRS, *, margin_deg: float = 1.0
) -> np.ndarray:
    """Which points (an ``(n, 2)`` array of x, y in ``crs``) lie outside its area of use.

    Examples
    --------
    >>> pts = np.array([[104.06, 30.66], [30.66, 104.06]])
    >>> outside_area_of_use(pts, pyproj.CRS("EPSG:4490")).tolist()
    [False, True]
    """
    area = crs.area_of_use
    bad = ~np.isfinite(points).all(axis=1)
    if area is None or not len(points):
        return bad
    xs, ys = points[:, 0], points[:, 1]
    if not crs.is_geographic:
        geodetic = crs.geodetic_crs or pyproj.CRS("EPSG:4326")
        to_geo = pyproj.Transformer.from_crs(crs, geodetic, always_xy=True)
        if _box_inside_area(points[~bad], to_geo, area, margin_deg):
            return bad  # every finite point is inside: none needs transforming
        xs, ys = to_geo.transform(xs, ys, errcheck=False)
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    with np.errstate(invalid="ignore"):
        inside = (
            (xs >= area.west - margin_deg)
            & (xs <= area.east + margin_deg)
            & (ys >= area.south - margin_deg)
            & (ys <= area.north + margin_deg)
        )
    return bad | ~inside


_BOX_STEP_M = 1000.0  # at most this far between the points tracing the box's edges
_BOX_SLACK_DEG = 0.01  # room for the bends of the traced edges between those points


def _box_inside_area(
    points: np.ndarray, to_geo: pyproj.Transformer, area: Any, margin_deg: float
) -> bool:
    """Whether the bounding box of ``points`` (projected) maps inside the area of use.

    A projection maps the inside of the box into the inside of the curve its edges map
    to; when that curve (a point every kilometre, with 0.01° of slack for the bends in
    between) lies in the lon/lat box of the area of use (grown by ``margin_deg``), so
    does every point, and none needs transforming. False (check point by point) when
    the box is larger than 2,000 km, crosses the antimeridian or does not map.

    Examples
    --------
    >>> gk = pyproj.CRS("EPSG:4544")
    >>> to_geo = pyproj.Transformer.from_crs(gk, gk.geodetic_crs, always_xy=True)
    >>> near = np.array([[505_700.0, 3_392_300.0], [520_000.0, 3_400_000.0]])
    >>> _box_inside_area(near, to_geo, gk.area_of_use, 1.0)
    True
    >>> _box_inside_area(near * [1, 3], to_geo, gk.area_of_use, 1.0)  # 10,000 km north
    False
    """
    if not len(points) or area.west > area.east:
        return False
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    steps = int(max(x1 - x0, y1 - y0) // _BOX_STEP_M) + 2
    if steps > 2000:
        return False
    t = np.linspace(0.0, 1.0, steps)
    xs = np.concatenate(
        [x0 + (x1 - x0) * t, np.full(steps, x1), x1 - (x1 - x0) * t, np.full(steps, x0)]
    )
    ys = np.concatenate(
        [np.full(steps, y0), y0 + (y1 - y0) * t, np.full(steps, y1), y1 - (y1 - y0) * t]
    )
    lon, lat = (np.asarray(v, dtype=float) for v in to_geo.transform(xs, ys, errcheck=False))
    grow = margin_deg - _BOX_SLACK_DEG
    with np.errstate(invalid="ignore"):
        return bool(
            np.isfinite(lon).all()
            and np.isfinite(lat).all()
            and (lon >= area.west - grow).all()
            and (lon <= area.east + grow).all()
            and (lat >= area.south - grow).all()
            and (lat <= area.north + grow).all()
        )


def crs_mismatch_error(
    points: np.ndarray, crs: pyproj.CRS, *, what: str, option: str = "src_crs"
) -> CRSError:
    """The error for data that lies outside its CRS's area of use, naming the likely cause.

    ``option`` is the keyword that set the CRS (the message names it as ``option=``).

    Examples
    --------
    >>> print(crs_mismatch_error(np.array([[104.06, 30.66]]), pyproj.CRS("EPSG:4544"),
    ...                          what="a.csv"))  # doctest: +ELLIPSIS
    a.csv lies outside the area of use of EPSG:4544 (...): the coordinates look like degrees...
    """
    area = crs.area_of_use
    where = f" ({area.name})" if area is not None else ""
    return CRSError(
        f"{what} lies outside the area of use of {_name(crs)}{where}: "
        f"{_cause(points, crs)}; check {option}="
    )


def check_near_twin(
    bounds: Sequence[float],
    twin_extent: Sequence[float] | None,
    *,
    what: str,
    max_gap_m: float = 100_000.0,
    option: str = "src_crs",
) -> None:
    """Fail when data (in the twin CRS) lies farther than ``max_gap_m`` from the twin's extent.

    ``option`` is the keyword that set the CRS (named as ``option=``).
    """
    if twin_extent is None or not all(math.isfinite(v) for v in (*bounds, *twin_extent)):
        return
    gap = shapely.distance(shapely.box(*bounds), shapely.box(*twin_extent))
    if gap > max_gap_m:
        raise CRSError(
            f"{what} lies {gap / 1000:.0f} km from the data already in the twin: a wrong "
            f"{option}= is the usual cause (degrees given as metres, or swapped axes); "
            "check it and try again"
        )


def _cause(points: np.ndarray, crs: pyproj.CRS) -> str:
    finite = points[np.isfinite(points).all(axis=1)]
    if not len(finite):
        return "no coordinate is a finite number"
    x, y = np.median(finite[:, 0]), np.median(finite[:, 1])
    degrees = abs(x) <= 180 and abs(y) <= 90
    if not crs.is_geographic and degrees:
        return (
            "the coordinates look like degrees (lon/lat), not metres: "
            "try src_crs='EPSG:4490' (CGCS2000) or src_crs='EPSG:4326' (WGS 84)"
        )
    if crs.is_geographic and not (abs(x) <= 180 and abs(y) <= 180):
        return "the coordinates look like metres, not degrees: give the projected CRS they are in"
    if crs.is_geographic and abs(x) <= 90 < abs(y):
        return "x and y look swapped (latitude first): swap them (x= / y= for a CSV)"
    if not crs.is_geographic and y < x:
        return "x and y may be swapped (northing first), or the CRS is another zone"
    return "the coordinates do not fit this CRS"


def _name(crs: pyproj.CRS) -> str:
    code = crs.to_epsg()
    return f"EPSG:{code}" if code else crs.name


# -- points and areas given by a user -----------------------------------------------
def geometry_in_twin(
    geom: shapely.Geometry,
    twin_crs: pyproj.CRS,
    *,
    crs: str | None = None,
    coords: str | None = None,
    option: str = "the geometry",
    crs_option: str = "crs",
) -> shapely.Geometry:
    """A point or area given in ``crs`` (or lon/lat in a web-map ``coords`` convention).

    Without either, ``geom`` is in the twin CRS; coordinates that then look
    like degrees in a projected twin are an error naming the fix. ``option``
    names the geometry in messages, ``crs_option`` the caller's keyword for
    ``crs`` (``point_crs`` on the command line).

    Examples
    --------
    >>> p = geometry_in_twin(shapely.Point(104.06, 30.66), pyproj.CRS("EPSG:4544"),
    ...                      crs="EPSG:4326")
    >>> round(p.x), round(p.y)
    (409907, 3393657)
    """
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise UsageError(f"{option}: every coordinate must be a finite number")
    if coords is not None:
        from twin.webcoords import geometries_to_wgs84

        geom = geometries_to_wgs84(np.array([geom], dtype=object), coords)[0]
        crs = "EPSG:4326"
    if crs is None:
        minx, miny, maxx, maxy = shapely.bounds(geom)
        if (
            not twin_crs.is_geographic
            and max(abs(minx), abs(maxx)) <= 180
            and max(abs(miny), abs(maxy)) <= 90
        ):
            raise UsageError(
                f"{option} looks like longitude/latitude, but is read in the twin CRS "
                f"{_name(twin_crs)} (metres): add {crs_option}='EPSG:4326' (or "
                "coords='gcj02' / 'bd09' for web-map points)"
            )
        return geom
    try:
        source = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError:
        raise UsageError(f"{option}: unknown CRS {crs!r}; use e.g. EPSG:4326") from None
    forward = pyproj.Transformer.from_crs(source, twin_crs, always_xy=True)
    moved = shapely.transform(geom, lambda xy: np.column_stack(forward.transform(*xy.T)))
    if not np.isfinite(shapely.get_coordinates(moved)).all():
        raise UsageError(f"{option} cannot be taken from {crs} to {_name(twin_crs)}")
    return moved


def check_access_distance(
    distance_m: float, *, what: str, max_m: float, crs_note: str, option: str = "max_access_m"
) -> None:
    """Fail when a point lies farther than ``max_m`` from the network it is routed on.

    ``option`` is the keyword of the limit (named as ``option=``).

    Examples
    --------
    >>> check_access_distance(12.0, what="the origin", max_m=1000, crs_note="EPSG:4544")
    >>> check_access_distance(3.4e6, what="the origin", max_m=1000, crs_note="EPSG:4544")
    Traceback (most recent call last):
    ...
    twin.errors.UsageError: the origin lies 3,400,000 m from the nearest road ...
    """
    if math.isfinite(distance_m) and distance_m <= max_m:
        return
    raise UsageError(
        f"{what} lies {distance_m:,.0f} m from the nearest road (read in {crs_note}), more "
        f"than {max_m:,.0f} m: check the point and its CRS, or raise {option}="
    )


# -- files --------------------------------------------------------------------
def check_writable(path: Path, status: os.stat_result, *, force: bool) -> None:
    """Refuse to replace a twin file nobody may write (mode without write bits) unless ``force``."""
    if force or status.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return
    raise ReadOnlyTwinError(
        f"{path} is read-only (mode {stat.S_IMODE(status.st_mode):o}): make it writable "
        "(chmod u+w) or pass force=True to write it anyway"
    )


def keep_mode_and_owner(work: Path, original: os.stat_result) -> None:
    """Give the new twin file the original's mode, owner and group before it replaces it."""
    os.chmod(work, stat.S_IMODE(original.st_mode))
    current = work.stat()
    if (current.st_uid, current.st_gid) != (original.st_uid, original.st_gid):
        try:
            os.chown(work, original.st_uid, original.st_gid)
        except PermissionError:  # not root: keep the group at least, when we belong to it
            with contextlib.suppress(PermissionError):
                os.chown(work, -1, original.st_gid)


def check_free_space(target_dir: Path, needed_bytes: int, *, factor: float = 1.1) -> None:
    """Fail before a copy when ``target_dir``'s file system lacks room for it."""
    free = shutil.disk_usage(target_dir).free
    if needed_bytes * factor > free:
        raise StorageError(
            f"not enough free space in {target_dir}: a write needs about "
            f"{needed_bytes * factor / 1e6:.0f} MB, {free / 1e6:.0f} MB are free; free some space"
        )
