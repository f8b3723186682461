"""``twin build``: compute the cross-layer relations and store them in the twin.

Relations are planned from the layers' kinds:

==================  =========================================  ==================
relation            from → to                                  rule
==================  =========================================  ==================
building_parcel     each building layer → each parcel layer    largest share
sensor_building     each sensor layer → each building layer    inside, else nearest
                                                               within max_distance_m
sensor_parcel       each sensor layer → each parcel layer      inside
feature_district    every layer → each district layer          largest share
feature_grid        every layer → each grid layer              largest share
==================  =========================================  ==================

A rebuild recomputes only the relations whose input layers were re-imported
since the last build (each relation remembers the imports it was built from),
and drops relations whose layers are gone. Rows with no ``to_uid`` are the
flagged ones: a building on no parcel, a sensor with no building near.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from geopandas import GeoDataFrame

from twin.relate import largest_share, nearest_within, single_parts
from twin.store import schema

if TYPE_CHECKING:
    from twin.model import LayerInfo, Twin

DEFAULT_MAX_DISTANCE_M = 30.0
_SENSOR_KINDS = ("sensor",)


@dataclass(frozen=True)
class RelationPlan:
    """One relation to compute: its rule and the two layers it links."""

    relation: str
    from_layer: str
    to_layer: str

    @property
    def key(self) -> str:
        return f"{self.relation}:{self.from_layer}->{self.to_layer}"


@dataclass
class BuildReport:
    """What a build computed, kept and dropped."""

    build_id: int | None = None
    time: str | None = None
    max_distance_m: float = DEFAULT_MAX_DISTANCE_M
    recomputed: dict[str, int] = field(default_factory=dict)  # key -> rows
    unrelated: dict[str, int] = field(default_factory=dict)  # key -> rows with no target
    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def plan_relations(infos: list[LayerInfo]) -> list[RelationPlan]:
    """Every relation the twin's layers call for, in a stable order."""
    by_kind: dict[str, list[str]] = {}
    for info in infos:
        by_kind.setdefault(info.kind, []).append(info.name)
    plans = [
        RelationPlan("building_parcel", b, p)
        for b in by_kind.get("building", [])
        for p in by_kind.get("parcel", [])
    ]
    for sensor_layer in (s for kind in _SENSOR_KINDS for s in by_kind.get(kind, [])):
        plans += [
            RelationPlan("sensor_building", sensor_layer, b) for b in by_kind.get("building", [])
        ]
        plans += [RelationPlan("sensor_parcel", sensor_layer, p) for p in by_kind.get("parcel", [])]
    for info in infos:
        plans += [
            RelationPlan("feature_district", info.name, d)
            for d in by_kind.get("district", [])
            if d != info.name
        ]
        plans += [
            RelationPlan("feature_grid", info.name, g)
            for g in by_kind.get("grid", [])
            if g != info.name and info.kind != "district"
        ]
    return plans


def build_relations(
    city: Twin,
    *,
    max_distance_m: float = DEFAULT_MAX_DISTANCE_M,
    force: bool = False,
    progress: Callable[[str, float], None] | None = None,
) -> BuildReport:
    """Compute the relations that changed and store them atomically.

    Parameters
    ----------
    city : Twin
        The twin to build.
    max_distance_m : float, default 30
        How far a sensor outside every building may be from its nearest building.
    force : bool, default False
        Recompute every relation, changed inputs or not.
    progress : callable, optional
        Called as ``progress(relation_key, fraction)``.
    """
    started = time.perf_counter()
    infos = city.layer_infos()
    imports = {info.name: info.last_import for info in infos}
    plans = plan_relations(infos)
    previous = _previous_inputs(city)
    signature = {p.key: [imports[p.from_layer], imports[p.to_layer], max_distance_m] for p in plans}
    todo = [p for p in plans if force or previous.get(p.key) != signature[p.key]]
    report = BuildReport(max_distance_m=max_distance_m)
    report.kept = [p.key for p in plans if p not in todo]
    report.dropped = sorted(set(previous) - set(signature))
    frames = _LayerCache(city)
    rows: dict[RelationPlan, pd.DataFrame] = {}
    for i, plan in enumerate(todo):
        if progress:
            progress(plan.key, i / max(len(todo), 1))
        rows[plan] = compute_relation(frames, plan, max_distance_m=max_distance_m)
        report.recomputed[plan.key] = len(rows[plan])
        report.unrelated[plan.key] = int(rows[plan]["to_uid"].isna().sum())
    with city.store.transaction() as work, contextlib.closing(sqlite3.connect(work)) as con, con:
        schema.ensure_relation_tables(con)
        for key in [*report.dropped, *(p.key for p in todo)]:
            relation, layers = key.split(":", 1)
            from_layer, to_layer = layers.split("->", 1)
            con.execute(
                "DELETE FROM twin_relations WHERE relation=? AND from_layer=? AND to_layer=?",
                (relation, from_layer, to_layer),
            )
        for plan, frame in rows.items():
            _insert(con, plan, frame)
        report.time = schema.now_utc()
        report.seconds = time.perf_counter() - started
        cursor = con.execute(
            "INSERT INTO twin_builds (time, inputs, report) VALUES (?, ?, ?)",
            (report.time, json.dumps(signature), "{}"),
        )
        report.build_id = int(cursor.lastrowid or 0)
        con.execute(
            "UPDATE twin_builds SET report=? WHERE build_id=?",
            (json.dumps(report.to_dict(), ensure_ascii=False), report.build_id),
        )
    return report


def compute_relation(
    frames: _LayerCache, plan: RelationPlan, *, max_distance_m: float
) -> pd.DataFrame:
    """Rows ``from_uid, to_uid, share, distance_m, n_candidates`` for one relation."""
    source, target = frames.get(plan.from_layer), frames.get(plan.to_layer)
    if plan.relation == "sensor_building":
        found = nearest_within(source, target, max_distance_m=max_distance_m)
        return pd.DataFrame(
            {
                "from_uid": found.index.to_numpy(),
                "to_uid": found["target"].to_numpy(dtype=object),
                "share": np.where(found["how"].to_numpy() == "inside", 1.0, np.nan),
                "distance_m": found["distance_m"].to_numpy(),
                "n_candidates": found["target"].notna().astype(int).to_numpy(),
            }
        )
    shares = largest_share(source, target)
    return pd.DataFrame(
        {
            "from_uid": shares.index.to_numpy(),
            "to_uid": shares["zone"].to_numpy(dtype=object),
            "share": shares["share"].to_numpy(),
            "distance_m": np.nan,
            "n_candidates": shares["n_zones"].to_numpy(),
        }
    )


class _LayerCache:
    """Each layer's geometry read once per build, whatever uses it."""

    def __init__(self, city: Twin) -> None:
        self.city = city
        self.frames: dict[str, GeoDataFrame] = {}

    def get(self, layer: str) -> GeoDataFrame:
        if layer not in self.frames:
            self.frames[layer] = single_parts(self.city.layer(layer, columns=[]))
        return self.frames[layer]


def _previous_inputs(city: Twin) -> dict[str, list[object]]:
    if "twin_builds" not in city.store.tables():
        return {}
    last = city.store.query("SELECT inputs FROM twin_builds ORDER BY build_id DESC LIMIT 1")
    return {} if last.empty else dict(json.loads(last["inputs"].iloc[0]))


def _insert(con: sqlite3.Connection, plan: RelationPlan, frame: pd.DataFrame) -> None:
    to_uid = frame["to_uid"].to_numpy(dtype=object)
    share = frame["share"].to_numpy(dtype=float)
    distance = frame["distance_m"].to_numpy(dtype=float)
    rows = zip(
        frame["from_uid"].astype(str).tolist(),
        [None if pd.isna(u) else str(u) for u in to_uid],
        [None if np.isnan(v) else float(v) for v in share],
        [None if np.isnan(v) else float(v) for v in distance],
        frame["n_candidates"].astype(int).tolist(),
        strict=True,
    )
    con.executemany(
        "INSERT INTO twin_relations (relation, from_layer, from_uid, to_layer, to_uid, share,"
        " distance_m, n_candidates) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ((plan.relation, plan.from_layer, f, plan.to_layer, t, s, d, n) for f, t, s, d, n in rows),
    )
