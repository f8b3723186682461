"""Change sets between a stored layer and a re-import of it.

Unchanged features keep their uid and their ``valid_from``; changed and removed
versions move to the layer's history table with ``valid_to`` set, so the twin
can be read as it was at any time.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

BOOKKEEPING = ("uid", "valid_from", "valid_to", "change", "import_id")


@dataclass
class ChangeSet:
    """The result of comparing a new delivery with the stored layer."""

    added: np.ndarray  # uids
    changed: np.ndarray
    removed: np.ndarray
    unchanged: np.ndarray
    retired: gpd.GeoDataFrame  # stored versions that end now (changed and removed)
    valid_from: np.ndarray  # for each new feature: kept or new start of validity


def compare(current: gpd.GeoDataFrame, new: gpd.GeoDataFrame, now: pd.Timestamp) -> ChangeSet:
    """Compare ``new`` features with the ``current`` layer, both with a ``uid`` column."""
    columns = sorted(
        {c for c in (*current.columns, *new.columns) if c not in (*BOOKKEEPING, "geometry")}
    )
    old_print = pd.Series(fingerprints(current, columns), index=current["uid"].to_numpy())
    new_uids = new["uid"].to_numpy()
    in_current = pd.Index(old_print.index).get_indexer(new_uids)
    known = in_current >= 0
    same = np.zeros(len(new), dtype=bool)
    same[known] = old_print.to_numpy()[in_current[known]] == fingerprints(new, columns)[known]
    removed_mask = ~current["uid"].isin(pd.Index(new_uids)).to_numpy()
    changed_mask_new = known & ~same
    valid_from = np.full(len(new), now, dtype=object)
    old_from = current["valid_from"].to_numpy(dtype=object)
    valid_from[same] = old_from[in_current[same]]
    retire = removed_mask.copy()
    retire[in_current[changed_mask_new]] = True
    retired = current.loc[retire].copy()
    retired["change"] = np.where(removed_mask[retire], "removed", "changed")
    return ChangeSet(
        added=new_uids[~known],
        changed=new_uids[changed_mask_new],
        removed=current["uid"].to_numpy()[removed_mask],
        unchanged=new_uids[same],
        retired=retired,
        valid_from=valid_from,
    )


def fingerprints(frame: gpd.GeoDataFrame, columns: list[str]) -> np.ndarray:
    """A 64-bit hash per row of ``columns`` and the geometry, robust to storage round trips.

    Integers, floats and booleans hash by value, so ``3`` (Int64) equals ``3.0``
    read back from the file; a single polygon equals the one-part multipolygon
    the GeoPackage may return.
    """
    n = len(frame)
    acc = _geometry_hash(frame.geometry)
    for name in columns:
        values = frame[name] if name in frame.columns else pd.Series([None] * n)
        acc = acc * np.uint64(1_000_003) ^ _column_hash(values)
    return acc


def _column_hash(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        as_float = pd.to_numeric(values.astype("Float64"), errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan
        )
        return pd.util.hash_array(as_float)
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values, utc=True)
        return pd.util.hash_array(
            stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").fillna("").to_numpy(dtype=object)
        )
    if pd.api.types.is_string_dtype(values) and not pd.api.types.is_object_dtype(values):
        # text already (a str dtype): each value is its own str(); missing ones as "\x00"
        return pd.util.hash_array(values.to_numpy(dtype=object, na_value="\x00"))
    text = values.astype(object).map(
        lambda v: "\x00" if v is None or v is pd.NA or v != v else str(v)
    )
    return pd.util.hash_array(text.to_numpy(dtype=object))


def _geometry_hash(geoms: gpd.GeoSeries) -> np.ndarray:
    values = np.asarray(geoms.array, dtype=object)
    type_ids = shapely.get_type_id(values)
    promoted = values.copy()
    for single, make in ((3, shapely.multipolygons), (1, shapely.multilinestrings)):
        mask = type_ids == single
        if mask.any():
            promoted[mask] = make(values[mask].reshape(-1, 1))
    wkb = shapely.to_wkb(promoted)
    wkb = np.where(pd.isna(wkb), b"", wkb).astype(object)
    return pd.util.hash_array(wkb)
