"""The rows of one stored largest-share relation as positions, read without text.

A zone relation (``feature_grid``, ``feature_district``, ``building_parcel``)
has one row per feature of its from layer, in the layer's fid order (row
``fid - (set_id << 32)``). :func:`read_zone_rows` reads only what an
aggregation by zone needs: the row, the target uid dictionary-encoded by
Arrow (a few thousand zones, never a million strings), the share and the
number of zones the feature overlaps. :func:`read_footprints` reads the
from layer's geometries in the same order, kept as Arrow WKB (never a million
Python objects).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio

from twin.store.damage import file_errors
from twin.store.relations import StoredSet

__all__ = ["read_footprints", "read_zone_rows"]


def read_footprints(path: Path, layer: str, columns: list[str]) -> tuple[pa.Array, pd.DataFrame]:
    """A layer's geometries as one Arrow WKB array and some of its columns, in fid order.

    Examples
    --------
    >>> wkb, values = read_footprints(city.path, "buildings", ["floors"])
    >>> len(wkb) == len(values) == len(city.layer("buildings")), list(values.columns)
    (True, ['floors'])
    """
    with file_errors(path, f"reading table {layer!r}"):
        meta, table = pyogrio.read_arrow(path, layer=layer, columns=columns)
    wkb = table.column(meta["geometry_name"] or "wkb_geometry").combine_chunks()
    values = {c: table.column(c).to_numpy(zero_copy_only=False) for c in columns}
    return wkb, pd.DataFrame(values, index=pd.RangeIndex(len(wkb)))


def read_zone_rows(path: Path, stored: StoredSet) -> pd.DataFrame:
    """The set's rows: ``row`` (int64), ``zone`` (categorical uid), ``share``, ``n_zones``.

    Rows come in row order; a feature in no zone has a missing ``zone``.

    Examples
    --------
    >>> from twin.build import ZONE_RELATIONS
    >>> grid = [s for s in city.store.relation_sets().values()
    ...         if s.relation == ZONE_RELATIONS["grid"] and s.from_layer == "buildings"][0]
    >>> rows = read_zone_rows(city.path, grid)
    >>> len(rows) == grid.n_rows, rows["zone"].dtype.name, bool(rows["row"].is_monotonic_increasing)
    (True, 'category', True)
    """
    first, last = stored.fids  # integers: safe to format into the SQL
    sql = (
        f"SELECT fid - {first} AS row, to_uid, share, n_candidates FROM twin_relations"
        f" WHERE fid BETWEEN {first} AND {last} ORDER BY fid"
    )
    _, table = pyogrio.read_arrow(path, sql=sql)
    if table.num_rows == 0:
        return pd.DataFrame(
            {
                "row": np.empty(0, dtype=np.int64),
                "zone": pd.Categorical([]),
                "share": np.empty(0),
                "n_zones": np.empty(0, dtype=np.int64),
            }
        )
    zone = pc.dictionary_encode(table.column("to_uid").combine_chunks())
    codes = pc.fill_null(zone.indices, -1).to_numpy().astype(np.int64)
    return pd.DataFrame(
        {
            "row": table.column("row").to_numpy().astype(np.int64),
            "zone": pd.Categorical.from_codes(
                codes, categories=pd.Index(zone.dictionary.to_pylist(), dtype=object)
            ),
            "share": table.column("share").to_numpy(zero_copy_only=False).astype(np.float64),
            "n_zones": pc.fill_null(table.column("n_candidates"), 0).to_numpy().astype(np.int64),
        }
    )
