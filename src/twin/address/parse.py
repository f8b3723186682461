"""Split a Chinese address into its levels.

Levels, broadest first: province 省, city 市, county 区/县 (``district`` in the
result), street 街道/镇/乡, community 社区/村, road 路/街/巷/道 (with its
section 段), house number 号/号院/弄, a compound or building name, building
栋/幢/座/号楼, unit 单元, room 室.

Administrative names come from the division table (names, short forms,
former names); each must sit inside the one before it, so a province name
inside a road name is not taken for the province (上海广东路 is 广东路 in
上海). A short form followed by a road suffix (广东路, 锦江路) is a road. The
lower levels are found by pattern. Trailing words that place something near
an address (附近, 对面, 门口, …) are removed and kept in ``near``.

Examples
--------
>>> p = parse_address("上海广东路100号")
>>> p.province, p.city, p.road, p.number
('上海市', '上海市', '广东路', '100')
>>> p = parse_address("成都锦江天亭街道新江社区望岭西路一段25号院芙湖新村3栋2单元301室对面")
>>> p.district, p.street, p.community, p.road, p.number, p.building, p.unit, p.room, p.near
('锦江区', '天亭街道', '新江社区', '望岭西路1段', '25', '3', '2', '301', '对面')
>>> parse_address("广东省东莞市虎门镇人民路8号").street
'虎门镇'
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from twin.address.divisions import Division, DivisionTable, division_table
from twin.address.normalise import normalise

__all__ = ["FIELDS", "ParsedAddress", "parse_address", "parse_addresses"]

#: The levels of a parsed address, broadest first.
FIELDS = (
    "province",
    "city",
    "district",
    "street",
    "community",
    "road",
    "number",
    "name",
    "building",
    "unit",
    "room",
)
_ROAD_SUFFIX = ("路", "街", "巷", "道", "大道", "大街", "弄", "胡同")
_NEAR = re.compile(
    r"(附近|对面|门口|旁边|周边|一带|楼下|隔壁|后面|斜对面|东侧|西侧|南侧|北侧|旁)+$"
)
_STREET = re.compile(r"[^\d路号栋]{2,6}?(?:街道办事处|街道办|街道|镇|乡)")
_COMMUNITY = re.compile(r"[^\d路号栋]{2,6}?(?:社区居委会|社区|村委会|居委会|村)")
_ROAD = re.compile(r"[^\d号栋]{1,10}?(?:大道|路|街|巷|胡同|道)(?:[东西南北中]?\d+段)?")
_NUMBER = re.compile(r"(\d+)(?:[之附-]\d+)?(?:号院|号(?![楼房])|弄)")
_BUILDING = re.compile(r"(\d+|[A-Z])(?:栋|幢|座|号楼|号厂房|号机房|号教学楼|号住院楼|号馆|馆|楼)")
_UNIT = re.compile(r"(\d+)单元")
_ROOM = re.compile(r"(\d+)(?:室|号房|户|号)?$")
_NAME = re.compile(r"[^\d]{2,12}?(?=\d|[A-Z](?:栋|座))")
_LEVEL_INDEX = {"province": 0, "city": 1, "county": 2, "town": 3}


@dataclass
class ParsedAddress:
    """An address split into levels; missing levels are None."""

    text: str
    province: str | None = None
    city: str | None = None
    district: str | None = None
    street: str | None = None
    community: str | None = None
    road: str | None = None
    number: str | None = None
    name: str | None = None
    building: str | None = None
    unit: str | None = None
    room: str | None = None
    near: str | None = None
    rest: str = ""
    division: str | None = None  # key of the narrowest division recognised

    def to_dict(self) -> dict[str, Any]:
        """The levels as a plain dict."""
        return asdict(self)


def _admin(text: str, table: DivisionTable) -> tuple[list[Division], int]:
    """The divisions at the start of ``text``, each within the one before, and where they end."""
    found: list[Division] = []
    pos = 0
    while pos < len(text):
        hit = _next_division(text, pos, found, table)
        if hit is None:
            break
        division, length = hit
        found.append(division)
        pos += length
    return found, pos


def _next_division(
    text: str, pos: int, found: list[Division], table: DivisionTable
) -> tuple[Division, int] | None:
    deepest = found[-1] if found else None
    for length in table.lengths.get(text[pos], ()):
        alias = text[pos : pos + length]
        candidates = table.by_alias.get(alias) if length <= len(text) - pos else None
        if not candidates:
            continue
        after = text[pos + length : pos + length + 2]
        for cand in sorted(candidates, key=lambda d: -_LEVEL_INDEX[d.level]):
            if alias != cand.name and after.startswith(_ROAD_SUFFIX):
                continue  # 广东路, 锦江路: a road named after a place
            if deepest is None:
                if cand.level == "town" and alias != cand.name:
                    continue
                return cand, length
            if cand.name == deepest.name or deepest in table.ancestors(cand)[1:]:
                return cand, length
        return None
    return None


def _levels(found: list[Division], table: DivisionTable) -> dict[str, str | None]:
    out: dict[str, str | None] = {"province": None, "city": None, "district": None, "street": None}
    if not found:
        return out
    names = {"province": "province", "city": "city", "county": "district", "town": "street"}
    for d in table.ancestors(found[-1]):
        out[names[d.level]] = out[names[d.level]] or d.name
    if out["province"] in ("北京市", "天津市", "上海市", "重庆市"):
        out["city"] = out["province"]
    return out


def parse_address(text: str, *, table: DivisionTable | None = None) -> ParsedAddress:
    """Split one address into levels.

    Parameters
    ----------
    text : str
        The address as typed (any width, traditional or simplified, numerals
        in digits or Chinese).
    table : DivisionTable, optional
        Division table (default: the built-in one).

    Returns
    -------
    ParsedAddress

    Examples
    --------
    >>> p = parse_address("闸北区共和新路１２０号")
    >>> p.city, p.district, p.road, p.number
    ('上海市', '静安区', '共和新路', '120')
    """
    table = table or division_table()
    s = normalise(text)
    out = ParsedAddress(text=s)
    near = _NEAR.search(s)
    if near and near.start() > 0:
        out.near, s = near.group(0), s[: near.start()]
    found, pos = _admin(s, table)
    for key, value in _levels(found, table).items():
        setattr(out, key, value)
    out.division = found[-1].key if found else None
    _local(out, s, pos)
    return out


def _local(out: ParsedAddress, s: str, pos: int) -> None:
    """Street, community, road, number, name, building, unit and room from ``s[pos:]``."""
    if out.street is None and (m := _STREET.match(s, pos)):
        out.street, pos = m.group(0), m.end()
    m = _COMMUNITY.match(s, pos)
    if m and not m.group(0).endswith("新村"):
        out.community, pos = m.group(0).removesuffix("居委会").removesuffix("村委会"), m.end()
        if not out.community.endswith(("社区", "村")):
            out.community += "社区"
    if m := _ROAD.match(s, pos):
        out.road, pos = m.group(0), m.end()
    if m := _NUMBER.match(s, pos):
        out.number, pos = m.group(1), m.end()
    if m := _NAME.match(s, pos):
        out.name, pos = m.group(0), m.end()
    if m := _BUILDING.match(s, pos):
        out.building, pos = m.group(1), m.end()
    if m := _UNIT.match(s, pos):
        out.unit, pos = m.group(1), m.end()
    if out.building is not None and (m := _ROOM.match(s, pos)):
        out.room, pos = m.group(1), m.end()
    if out.name is None and out.building is None and pos < len(s) and out.number is None:
        out.name, pos = s[pos:], len(s)
    out.rest = s[pos:]


def parse_addresses(values: Any, *, table: DivisionTable | None = None) -> pd.DataFrame:
    """Parse every address of a Series or list into a DataFrame of levels.

    Parameters
    ----------
    values : Series or iterable of str
        Addresses; missing values give rows of None.
    table : DivisionTable, optional
        Division table (default: the built-in one).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`FIELDS` plus ``near`` and ``rest``, aligned to ``values``.

    Examples
    --------
    >>> frame = parse_addresses(["成都市锦江区杉江街3号", "中山市小榄镇民安路1号"])
    >>> frame["district"].tolist(), frame["street"].tolist(), frame["road"].tolist()
    (['锦江区', None], [None, '小榄镇'], ['杉江街', '民安路'])
    """
    index = values.index if isinstance(values, pd.Series) else None
    rows = [parse_address(v if isinstance(v, str) else "", table=table) for v in values]
    frame = pd.DataFrame([r.to_dict() for r in rows], index=index, dtype=object)
    return frame[[*FIELDS, "near", "rest"]]
