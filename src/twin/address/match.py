"""Match parsed addresses against a standard address layer.

An :class:`AddressIndex` holds the layer's levels, normalised, in hash maps:
room, building and house number keys under each road, building names and
compound + building number pairs. A query is parsed (:mod:`twin.address.parse`)
and looked up exactly first; a road or building name that is not found
exactly is matched with rapidfuzz among the roads of the parsed street or
community that have the parsed number (else among all roads), or among the
building names. Each answer says the level it reached:

``room`` > ``building`` > ``house_number`` > ``road`` > ``community`` >
``unmatched`` (with the reason).

A house number holding one building is that building; a number holding
several is claimed at ``house_number`` level only, without a building, and
the answer says how many buildings it holds (``candidates``). A
number the road does not have, or a building number the house number does
not have, stops at the level above: nothing is claimed that the layer does not
hold.

Examples
--------
>>> import pandas as pd
>>> layer = pd.DataFrame({
...     "road": ["杉江街", "杉江街", "杉江街"], "number": ["3", "3", "5"],
...     "building": ["1", "2", None], "unit": [None, None, None], "room": [None, None, None],
...     "street": ["天亭街道"] * 3, "community": ["新江社区"] * 3,
...     "district": ["锦江区"] * 3, "city": ["成都市"] * 3, "province": ["四川省"] * 3,
...     "name": ["芙湖新村", "芙湖新村", None], "building_name": [None, None, "星山广场1号楼"],
... }, index=["a.1", "a.2", "a.3"])
>>> index = AddressIndex(layer)
>>> index.match("成都锦江杉江街三号2栋").uid, index.match("成都锦江杉江街三号2栋").level
('a.2', 'building')
>>> index.match("杉江街3号").candidates
2
>>> index.match("杉红街5号附近").uid
'a.3'
>>> index.match("星山广场1号楼").level
'building'
>>> m = index.match("上海市黄浦区广东路100号")
>>> m.level, m.reason
('unmatched', 'outside the layer: 上海市黄浦区')
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from rapidfuzz import fuzz, process

from twin.address.divisions import DivisionTable, division_table
from twin.address.normalise import normalise
from twin.address.parse import ParsedAddress, parse_address

__all__ = ["LEVELS", "AddressIndex", "AddressMatch"]

#: Match levels, finest first.
LEVELS = ("room", "building", "house_number", "road", "community", "unmatched")
_ROAD_CUTOFF = 75.0
_NARROW_CUTOFF = 60.0  # among the roads that have the number typed
_NAME_CUTOFF = 80.0
_ADMIN = ("province", "city", "district")


@dataclass
class AddressMatch:
    """The answer for one address."""

    query: str
    level: str
    uid: str | None = None
    score: float = 0.0
    address: str | None = None
    row: int | None = None  # position in the layer
    reason: str | None = None
    candidates: int = 0  # buildings at a house number answered without one

    def to_dict(self) -> dict[str, Any]:
        """The answer as a plain dict (``row`` left out)."""
        out = asdict(self)
        out.pop("row")
        return out


def _clean(value: Any) -> str:
    return normalise(value) if isinstance(value, str) else ""


class AddressIndex:
    """Hash maps over a standard address layer for exact and fuzzy matching.

    Parameters
    ----------
    layer : DataFrame
        The layer, indexed by uid, with the level fields of the ``address``
        kind (missing ones are treated as empty) and optionally
        ``building_name`` (names such as 星山广场1号楼) and ``address``.
    table : DivisionTable, optional
        Division table (default: the built-in one).
    """

    def __init__(self, layer: pd.DataFrame, *, table: DivisionTable | None = None) -> None:
        self.table = table or division_table()
        layer = _with_levels(layer, self.table)
        self.uids = [str(u) for u in layer.index]
        self.texts = [str(a) for a in layer["address"]] if "address" in layer else [""] * len(layer)
        cols = {c: _column(layer, c) for c in ("road", "number", "building", "unit", "room")}
        self.rooms: dict[tuple[str, ...], int] = {}
        self.buildings: dict[tuple[str, str, str], int] = {}
        numbers: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, (road, num, bld, unit, room) in enumerate(zip(*cols.values(), strict=True)):
            if room:
                self.rooms[(road, num, bld, unit, room)] = i
            else:
                self.buildings.setdefault((road, num, bld), i)
                numbers[(road, num)].append(i)
        self.numbers = dict(numbers)
        self.roads_col, self._numbers_col = cols["road"], cols["number"]
        self._bld = cols["building"]
        self.room_col = cols["room"]
        self._compound = _column(layer, "name")
        self.row_of = {uid: i for i, uid in enumerate(self.uids)}
        self._areas(layer, cols["road"])
        self._names(layer, cols)

    def _areas(self, layer: pd.DataFrame, roads: list[str]) -> None:
        """Roads by street and community; the administrative names the layer covers."""
        self.roads = sorted(set(roads) - {""})
        self.road_set = set(self.roads)
        self.roads_in: dict[str, set[str]] = defaultdict(set)
        for level in ("street", "community"):
            for area, road in zip(_column(layer, level), roads, strict=True):
                if area and road:
                    self.roads_in[area].add(road)
        self.admin = {lvl: set(_column(layer, lvl)) - {""} for lvl in (*_ADMIN, "street")}
        self.communities = set(_column(layer, "community")) - {""}
        self.number_roads: dict[str, set[str]] = defaultdict(set)
        for road, num in self.numbers:
            self.number_roads[num].add(road)
        self.building_roads: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.room_roads: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for road, *rest in self.rooms:
            self.room_roads[tuple(rest)].add(road)
        for road, num, bld in self.buildings:
            if bld:
                self.building_roads[(num, bld)].add(road)

    def _names(self, layer: pd.DataFrame, cols: dict[str, list[str]]) -> None:
        """Buildings by compound name and number (building names first, then compounds),
        city-wide where unambiguous and within each street and community."""
        names = _column(layer, "building_name")
        compounds = _column(layer, "name")
        areas = list(zip(_column(layer, "street"), _column(layer, "community"), strict=True))
        by_name: dict[tuple[str, str, str], set[int]] = defaultdict(set)
        by_compound: dict[tuple[str, str, str], set[int]] = defaultdict(set)
        for i, (bld_name, compound, bld, room) in enumerate(
            zip(names, compounds, cols["building"], cols["room"], strict=True)
        ):
            if room:
                continue
            keys = []
            if bld_name:
                p = parse_address(bld_name, table=self.table)
                keys.append((by_name, p.name or bld_name, p.building or ""))
            if compound and bld:
                keys.append((by_compound, compound, bld))
            for target, name, number in keys:
                for scope in ("", *areas[i]):
                    target[(scope, name, number)].add(i)
        self.names: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for key in by_compound.keys() | by_name.keys():
            rows = by_compound.get(key, set()) | by_name.get(key, set())
            if len(rows) == 1:  # the same building by its own name and by its compound
                self.names[(key[0], key[1])][key[2]] = next(iter(rows))
        self.name_buckets: dict[tuple[str, str], list[str]] = defaultdict(list)
        for (scope, name), blds in self.names.items():
            if scope == "":
                for bld in blds:
                    self.name_buckets[(bld, name[0])].append(name)
                    self.name_buckets[(bld, name[-2:])].append(name)

    def __len__(self) -> int:
        return len(self.uids)

    def match(self, text: str) -> AddressMatch:
        """Match one address as typed.

        Parameters
        ----------
        text : str
            The address.

        Returns
        -------
        AddressMatch
        """
        if not isinstance(text, str) or not text.strip():
            return AddressMatch(str(text or ""), "unmatched", reason="empty address")
        p = parse_address(text, table=self.table)
        outside = self._outside(p)
        if outside:
            return AddressMatch(text, "unmatched", reason=f"outside the layer: {outside}")
        found = self._by_road(text, p) if p.road else None
        if found is None or found.level in ("road", "unmatched") or found.score < 100:
            by_name = self._by_name(text, p)
            if by_name is not None and (found is None or by_name.score >= found.score):
                return by_name
        if found is not None:
            return found
        if p.community and p.community in self.communities:
            return AddressMatch(text, "community", score=100.0, address=p.community)
        return AddressMatch(text, "unmatched", reason=_why(p))

    def _outside(self, p: ParsedAddress) -> str | None:
        """The administrative names the query has and the layer does not cover."""
        wrong = [getattr(p, lvl) for lvl in _ADMIN if getattr(p, lvl)]
        if any(getattr(p, lvl) and getattr(p, lvl) not in self.admin[lvl] for lvl in _ADMIN):
            return "".join(dict.fromkeys(wrong))
        if (
            p.division
            and p.street
            and self.admin["street"]
            and p.street not in self.admin["street"]
        ):
            division = self.table.by_key.get(p.division)
            if division is not None and division.level == "town":
                return "".join(dict.fromkeys([*wrong, p.street]))
        return None

    def _road(self, p: ParsedAddress) -> tuple[str | None, float]:
        road = p.road or ""
        if road in self.road_set:
            return road, 100.0
        pool: set[str] = set()
        for area in (p.community, p.street):
            if area and area in self.roads_in:
                pool = self.roads_in[area]
                break
        cutoff = _ROAD_CUTOFF
        having = self.number_roads.get(p.number or "", set())
        if p.building and (p.number or "", p.building) in self.building_roads:
            having = self.building_roads[(p.number or "", p.building)]
        room_key = (p.number or "", p.building or "", p.unit or "", p.room or "")
        if p.room and room_key in self.room_roads:
            having = self.room_roads[room_key]
        if having:
            narrowed = (pool or self.road_set) & having
            pool, cutoff = (narrowed, _NARROW_CUTOFF) if narrowed else (pool, cutoff)
        choices = sorted(pool) if pool else self.roads
        found = process.extract(road, choices, scorer=fuzz.ratio, score_cutoff=cutoff, limit=3)
        if not found:
            return None, 0.0
        if len(found) > 1 and found[1][1] >= found[0][1]:  # a tie: one typo from two roads
            tied = [str(f[0]) for f in found if f[1] >= found[0][1]]
            named = [r for r in tied if self._compound_agrees(r, p)]
            if len(named) != 1:
                return None, -1.0
            return named[0], float(found[0][1])
        return str(found[0][0]), float(found[0][1])

    def _compound_agrees(self, road: str, p: ParsedAddress) -> bool:
        """Whether the compound at ``road`` and the typed number is the compound typed."""
        rows = self.numbers.get((road, p.number or ""))
        if not p.name or not rows:
            return False
        compound = self._compound[rows[0]]
        return bool(compound) and fuzz.ratio(p.name, compound) >= _NAME_CUTOFF

    def _by_road(self, text: str, p: ParsedAddress) -> AddressMatch | None:
        road, score = self._road(p)
        if road is None:
            why = "several roads are" if score < 0 else "no road is"
            return AddressMatch(text, "unmatched", reason=f"{why} like {p.road} in the layer")
        if not p.number or (road, p.number) not in self.numbers:
            reason = f"no number {p.number} on {road}" if p.number else "no house number"
            return AddressMatch(text, "road", score=score, address=road, reason=reason)
        return self._below_number(text, p, road, p.number, score)

    def _below_number(
        self, text: str, p: ParsedAddress, road: str, number: str, score: float
    ) -> AddressMatch:
        rows = self.numbers[(road, number)]
        compound = self._compound[rows[0]]
        if score < 100 and p.name and compound and fuzz.ratio(p.name, compound) < _NAME_CUTOFF:
            reason = f"{p.name} is not at {road} {number}"
            return AddressMatch(text, "road", score=score, address=road, reason=reason)
        bld = p.building or ""
        if len(rows) == 1 and not bld:
            bld = self._building_of(rows[0])
        if p.room:
            room = self.rooms.get((road, number, bld, p.unit or "", p.room))
            if room is None and not p.unit:
                room = self.rooms.get((road, number, bld, "1", p.room))
            if room is not None:
                return self._answer(text, "room", room, score)
        row = self.buildings.get((road, number, bld))
        if row is not None and (bld or len(rows) == 1):
            return self._answer(text, "building", row, score)
        found = self._answer(text, "house_number", rows[0], score, building=False)
        blds = {self._bld[r] for r in rows} - {""}
        if len(blds) > 1:
            found.candidates = len(blds)
            asked = f"no building {bld}" if bld else "no building number typed"
            found.reason = f"{asked}: {len(blds)} buildings at {road} {number}"
        return found

    def _building_of(self, row: int) -> str:
        return self._bld[row]

    def _by_name(self, text: str, p: ParsedAddress) -> AddressMatch | None:
        if not p.name or not self.names:
            return None
        bld = p.building or ""
        for scope in (p.community, p.street):
            row = self.names.get((scope, p.name), {}).get(bld) if scope else None
            if row is not None:
                return self._named(text, p, row, 100.0)
        known = self.names.get(("", p.name))
        if known is not None:  # a known name: its building or nothing, never a neighbour's
            row = known.get(bld)
            return None if row is None else self._named(text, p, row, 100.0)
        pool = {
            *self.name_buckets.get((bld, p.name[0]), ()),
            *self.name_buckets.get((bld, p.name[-2:]), ()),
        }
        best = process.extractOne(
            p.name, sorted(pool), scorer=fuzz.ratio, score_cutoff=_NAME_CUTOFF
        )
        if best is None:
            return None
        return self._named(text, p, self.names[("", str(best[0]))][bld], float(best[1]))

    def _named(self, text: str, p: ParsedAddress, row: int, score: float) -> AddressMatch:
        if p.room:
            road, number = self._road_number(row)
            bld = self._bld[row]
            room = self.rooms.get((road, number, bld, p.unit or "", p.room))
            if room is not None:
                return self._answer(text, "room", room, score)
        return self._answer(text, "building", row, score)

    def _answer(
        self, text: str, level: str, row: int, score: float, *, building: bool = True
    ) -> AddressMatch:
        return AddressMatch(
            text,
            level,
            uid=self.uids[row],
            score=score,
            address=self.texts[row] or None,
            row=row if building else None,
        )

    def _road_number(self, row: int) -> tuple[str, str]:
        return self.roads_col[row], self._numbers_col[row]


_LEVEL_FIELDS = (
    *("province", "city", "district", "street", "community"),
    *("road", "number", "name", "building", "unit", "room"),
)


def _with_levels(layer: pd.DataFrame, table: DivisionTable) -> pd.DataFrame:
    """The layer with levels parsed from ``address`` where a row has no road.

    A layer delivered as full address texts only (or with some rows so) is
    matched on the levels its texts spell.
    """
    if "address" not in layer:
        return layer
    road = layer["road"] if "road" in layer else pd.Series(None, index=layer.index)
    missing = ~road.map(lambda v: isinstance(v, str) and bool(v.strip())).to_numpy(dtype=bool)
    if not missing.any():
        return layer
    texts = layer["address"].to_numpy()[missing]
    parsed = [parse_address(t if isinstance(t, str) else "", table=table) for t in texts]
    layer = layer.copy()
    for name in _LEVEL_FIELDS:
        if name not in layer:
            layer[name] = None
        values = layer[name].astype(object).to_numpy().copy()
        values[missing] = [getattr(p, name) for p in parsed]
        layer[name] = values
    return layer


def _column(layer: pd.DataFrame, name: str) -> list[str]:
    """A column normalised (each distinct value once: levels repeat over many rows)."""
    if name not in layer:
        return [""] * len(layer)
    seen: dict[Any, str] = {}
    out = []
    for value in layer[name].tolist():
        key = value if isinstance(value, str) else None
        found = seen.get(key)
        if found is None:
            found = seen[key] = _clean(value)
        out.append(found)
    return out


def _why(p: ParsedAddress) -> str:
    if p.street and not (p.road or p.name):
        return f"only the street ({p.street}) is given"
    if p.number and not p.road:
        return "a house number without a road"
    return "no road, house number or building name recognised"
