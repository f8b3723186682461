"""Relation lookups for one snapshot: the stored ``twin build`` relations, both ways.

Each (relation, from layer, to layer) is read from the twin once per snapshot
into sorted arrays, so a lookup is two binary searches; it is read only while the
file is still the version the snapshot holds (never from a newer file). A pair the last build
did not cover (a layer imported since, or no build at all) is computed from
the geometry for the one feature asked about, with the same rules as the build
(:mod:`twin.build`): largest share, or for sensors the building they stand in,
else the nearest within ``max_distance_m``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from twin.build import DEFAULT_MAX_DISTANCE_M
from twin.errors import UsageError
from twin.query.common import derived
from twin.query.index import CityIndex, IndexedLayer
from twin.relate import largest_share, nearest_within

__all__ = ["Related", "related_from", "related_to"]


@dataclass(frozen=True)
class Related:
    """One related feature: its uid, the share of the relation and the distance."""

    uid: str
    share: float | None
    distance_m: float | None


@dataclass(frozen=True)
class _Table:
    """One stored relation pair, sorted both ways for binary search."""

    from_sorted: npt.NDArray[np.str_]
    forward: pd.DataFrame  # rows in from_sorted order: to_uid, share, distance_m
    to_sorted: npt.NDArray[np.str_]
    backward: pd.DataFrame  # rows in to_sorted order: from_uid, share, distance_m


def _table(index: CityIndex, relation: str, from_layer: str, to_layer: str) -> _Table | None:
    def build() -> _Table | None:
        # Only from the very file version the snapshot holds: once an import has
        # replaced the file, the stored rows describe other features, and the
        # relation is computed from the snapshot's own geometry instead.
        if not _same_version(index):
            return None
        try:
            rows = index.twin.relations(relation, from_layer=from_layer, to_layer=to_layer)
        except UsageError:  # no relations built yet
            return None
        if rows.empty or not _same_version(index):
            return None
        rows = rows[["from_uid", "to_uid", "share", "distance_m"]]
        forward = rows.sort_values("from_uid", kind="stable").reset_index(drop=True)
        linked = rows[rows["to_uid"].notna()]
        backward = linked.sort_values("to_uid", kind="stable").reset_index(drop=True)
        return _Table(
            from_sorted=forward["from_uid"].to_numpy(dtype=str),
            forward=forward,
            to_sorted=backward["to_uid"].to_numpy(dtype=str),
            backward=backward,
        )

    return derived(index, ("relation", relation, from_layer, to_layer), build)


def _same_version(index: CityIndex) -> bool:
    """Whether the twin is still the version the snapshot was read from."""
    return index.is_current()


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def related_to(
    index: CityIndex, relation: str, source: IndexedLayer, target: IndexedLayer, uid: str
) -> Related | None:
    """The feature of ``target`` that feature ``uid`` of ``source`` belongs to, if any."""
    table = _table(index, relation, source.name, target.name)
    if table is None:
        return _computed_to(relation, source, target, uid)
    lo = int(np.searchsorted(table.from_sorted, uid, side="left"))
    hi = int(np.searchsorted(table.from_sorted, uid, side="right"))
    if lo == hi:
        return _computed_to(relation, source, target, uid)  # the feature is newer than the build
    row = table.forward.iloc[lo]
    if pd.isna(row["to_uid"]):
        return None
    return Related(str(row["to_uid"]), _number(row["share"]), _number(row["distance_m"]))


def related_from(
    index: CityIndex, relation: str, source: IndexedLayer, target: IndexedLayer, uid: str
) -> list[Related]:
    """The features of ``source`` that belong to feature ``uid`` of ``target``."""
    table = _table(index, relation, source.name, target.name)
    if table is None:
        return _computed_from(relation, source, target, uid)
    lo = int(np.searchsorted(table.to_sorted, uid, side="left"))
    hi = int(np.searchsorted(table.to_sorted, uid, side="right"))
    rows = table.backward.iloc[lo:hi]
    return [
        Related(str(f), _number(s), _number(d))
        for f, s, d in zip(rows["from_uid"], rows["share"], rows["distance_m"], strict=True)
    ]


# --------------------------------------------------------------------------- from geometry


def _computed_to(
    relation: str, source: IndexedLayer, target: IndexedLayer, uid: str
) -> Related | None:
    found = _relate(relation, source, [source.position(uid)], target)
    row = found.iloc[0]
    if pd.isna(row["to"]):
        return None
    return Related(str(row["to"]), _number(row["share"]), _number(row["distance_m"]))


def _computed_from(
    relation: str, source: IndexedLayer, target: IndexedLayer, uid: str
) -> list[Related]:
    geometry = target.geometries[target.position(uid)]
    reach = DEFAULT_MAX_DISTANCE_M if relation == "sensor_building" else 0.0
    candidates = source.within_distance(geometry, reach)
    if not len(candidates):
        return []
    found = _relate(relation, source, candidates, target)
    mine = found[found["to"] == uid]
    return [
        Related(str(f), _number(s), _number(d))
        for f, s, d in zip(mine.index, mine["share"], mine["distance_m"], strict=True)
    ]


def _relate(
    relation: str, source: IndexedLayer, positions: Any, target: IndexedLayer
) -> pd.DataFrame:
    """Columns ``to, share, distance_m`` for source rows at ``positions``, by the build's rule."""
    features = source.frame.iloc[positions][[source.frame.geometry.name]]
    reach = DEFAULT_MAX_DISTANCE_M if relation == "sensor_building" else 0.0
    near: list[int] = sorted(
        {int(p) for g in features.geometry for p in target.within_distance(g, reach)}
    )
    zones = target.frame.iloc[near][[target.frame.geometry.name]]
    if relation == "sensor_building":
        found = nearest_within(features, zones, max_distance_m=DEFAULT_MAX_DISTANCE_M)
        share = np.where(found["how"].to_numpy() == "inside", 1.0, np.nan)
        return pd.DataFrame(
            {"to": found["target"], "share": share, "distance_m": found["distance_m"]},
            index=features.index,
        )
    shares = largest_share(features, zones)
    return pd.DataFrame(
        {"to": shares["zone"], "share": shares["share"], "distance_m": np.nan},
        index=features.index,
    )
