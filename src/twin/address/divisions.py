"""Administrative divisions (行政区划): the table the parser reads names against.

The table is written for this project (no copy of another project's data):
every province-level division with its short name, and below them the
divisions the sample and the tests need — Chengdu's districts and counties,
Shanghai's districts with the merged and renamed ones (闸北区 → 静安区,
卢湾区 → 黄浦区, 南汇区 → 浦东新区, 崇明县 → 崇明区), the towns and
sub-districts of 东莞 and 中山 (prefecture-level cities without counties), a
few cities of Guangdong, and autonomous counties (北川羌族自治县 …) whose short
form drops the ethnic part. A twin's standard address layer adds its own
streets and communities at match time (:mod:`twin.address.match`).

Codes are the 6-digit statistical codes for counties and above; towns carry
no code here.

Examples
--------
>>> table = division_table()
>>> [d.name for d in table.lookup("闸北")]
['静安区']
>>> table.get("510104").name, table.chain(table.get("510104"))
('锦江区', ('四川省', '成都市', '锦江区'))
>>> [d.name for d in table.lookup("北川")]
['北川羌族自治县']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["LEVELS", "Division", "DivisionTable", "division_table"]

#: Administrative levels, broadest first.
LEVELS = ("province", "city", "county", "town")

# level | code (or key) | name | parent | extra aliases (former names, space separated)
_TABLE = """
P|11|北京市||
P|12|天津市||
P|13|河北省||
P|14|山西省||
P|15|内蒙古自治区||内蒙
P|21|辽宁省||
P|22|吉林省||
P|23|黑龙江省||
P|31|上海市||沪
P|32|江苏省||
P|33|浙江省||
P|34|安徽省||
P|35|福建省||
P|36|江西省||
P|37|山东省||
P|41|河南省||
P|42|湖北省||
P|43|湖南省||
P|44|广东省||
P|45|广西壮族自治区||
P|46|海南省||
P|50|重庆市||
P|51|四川省||
P|52|贵州省||
P|53|云南省||
P|54|西藏自治区||
P|61|陕西省||
P|62|甘肃省||
P|63|青海省||
P|64|宁夏回族自治区||
P|65|新疆维吾尔自治区||
P|71|台湾省||
P|81|香港特别行政区||
P|82|澳门特别行政区||
C|1101|北京市|11|
C|1201|天津市|12|
C|3101|上海市|31|
C|5001|重庆市|50|
C|1310|廊坊市|13|
C|4205|宜昌市|42|
C|4401|广州市|44|
C|4402|韶关市|44|
C|4403|深圳市|44|
C|4406|佛山市|44|
C|4418|清远市|44|
C|4419|东莞市|44|
C|4420|中山市|44|
C|4604|儋州市|46|
C|5101|成都市|51|蓉城
C|5107|绵阳市|51|
C|5111|乐山市|51|
C|5134|凉山彝族自治州|51|
K|510104|锦江区|5101|
K|510105|青羊区|5101|
K|510106|金牛区|5101|
K|510107|武侯区|5101|
K|510108|成华区|5101|
K|510112|龙泉驿区|5101|龙泉
K|510113|青白江区|5101|
K|510114|新都区|5101|新都县
K|510115|温江区|5101|温江县
K|510116|双流区|5101|双流县
K|510117|郫都区|5101|郫县
K|510118|新津区|5101|新津县
K|510121|金堂县|5101|
K|510129|大邑县|5101|
K|510131|蒲江县|5101|
K|510181|都江堰市|5101|灌县
K|510182|彭州市|5101|
K|510183|邛崃市|5101|
K|510184|崇州市|5101|
K|510185|简阳市|5101|
K|510726|北川羌族自治县|5107|
K|511132|峨边彝族自治县|5111|
K|511133|马边彝族自治县|5111|
K|513422|木里藏族自治县|5134|
K|310101|黄浦区|3101|卢湾区 南市区
K|310104|徐汇区|3101|
K|310105|长宁区|3101|
K|310106|静安区|3101|闸北区
K|310107|普陀区|3101|
K|310109|虹口区|3101|
K|310110|杨浦区|3101|
K|310112|闵行区|3101|
K|310113|宝山区|3101|
K|310114|嘉定区|3101|
K|310115|浦东新区|3101|南汇区 川沙县
K|310116|金山区|3101|
K|310117|松江区|3101|
K|310118|青浦区|3101|
K|310120|奉贤区|3101|
K|310151|崇明区|3101|崇明县
K|440104|越秀区|4401|
K|440106|天河区|4401|
K|440113|番禺区|4401|
K|440232|乳源瑶族自治县|4402|
K|440304|福田区|4403|
K|440305|南山区|4403|
K|440604|禅城区|4406|
K|441825|连山壮族瑶族自治县|4418|
K|441826|连南瑶族自治县|4418|
K|131028|大厂回族自治县|1310|
K|420528|长阳土家族自治县|4205|
T|dg01|莞城街道|4419|
T|dg02|南城街道|4419|
T|dg03|东城街道|4419|
T|dg04|万江街道|4419|
T|dg05|石龙镇|4419|
T|dg06|虎门镇|4419|
T|dg07|长安镇|4419|
T|dg08|厚街镇|4419|
T|dg09|常平镇|4419|
T|dg10|塘厦镇|4419|
T|dg11|凤岗镇|4419|
T|dg12|樟木头镇|4419|
T|zs01|石岐街道|4420|石岐区
T|zs02|东区街道|4420|
T|zs03|西区街道|4420|
T|zs04|南区街道|4420|
T|zs05|小榄镇|4420|
T|zs06|古镇镇|4420|
T|zs07|坦洲镇|4420|
T|zs08|三乡镇|4420|
T|zs09|南头镇|4420|
T|zs10|黄圃镇|4420|
T|dz01|那大镇|4604|
"""

_LEVEL = {"P": "province", "C": "city", "K": "county", "T": "town"}
_SPECIAL_SHORT = {
    "内蒙古自治区": "内蒙古",
    "广西壮族自治区": "广西",
    "西藏自治区": "西藏",
    "宁夏回族自治区": "宁夏",
    "新疆维吾尔自治区": "新疆",
    "香港特别行政区": "香港",
    "澳门特别行政区": "澳门",
    "浦东新区": "浦东",
}
_ETHNIC = re.compile(r"^(.{2,}?)(?:[^族]{1,4}族)+自治[州县旗]$")
_SUFFIX = re.compile(r"^(.{2,}?)(?:省|市|区|县|街道|镇|乡)$")


@dataclass(frozen=True)
class Division:
    """One administrative division."""

    key: str
    name: str
    level: str
    parent: str | None
    aliases: tuple[str, ...] = field(default=(), compare=False)

    @property
    def code(self) -> str | None:
        """The statistical code (counties and above), else None."""
        return self.key if self.key.isdigit() else None


def short_forms(name: str) -> list[str]:
    """Short forms a user types for ``name``: 锦江区 → 锦江, 北川羌族自治县 → 北川.

    Examples
    --------
    >>> short_forms("北川羌族自治县"), short_forms("成都市"), short_forms("郫县")
    (['北川', '北川县'], ['成都'], [])
    """
    if name in _SPECIAL_SHORT:
        return [_SPECIAL_SHORT[name]]
    found = _ETHNIC.match(name)
    if found:  # 北川羌族自治县 → 北川, 北川县
        return [found.group(1), found.group(1) + name[-1]]
    found = _SUFFIX.match(name)
    return [found.group(1)] if found and len(found.group(1)) >= 2 else []


class DivisionTable:
    """Divisions by key, and by every name or alias a user may type."""

    def __init__(self, divisions: list[Division]) -> None:
        self.by_key = {d.key: d for d in divisions}
        self.by_alias: dict[str, list[Division]] = {}
        for d in divisions:
            for alias in (d.name, *d.aliases):
                bucket = self.by_alias.setdefault(alias, [])
                if d not in bucket:
                    bucket.append(d)
        self.max_alias = max(len(a) for a in self.by_alias)
        lengths: dict[str, set[int]] = {}
        for alias in self.by_alias:
            lengths.setdefault(alias[0], set()).add(len(alias))
        #: alias lengths by first character, longest first (the parser tries only these)
        self.lengths = {c: sorted(v, reverse=True) for c, v in lengths.items()}

    def get(self, key: str) -> Division:
        """The division with this key (code)."""
        return self.by_key[key]

    def lookup(self, alias: str) -> list[Division]:
        """Divisions a name or alias may mean (several when ambiguous)."""
        return list(self.by_alias.get(alias, []))

    def parent(self, division: Division) -> Division | None:
        """The parent division, or None for a province."""
        return self.by_key.get(division.parent) if division.parent else None

    def ancestors(self, division: Division) -> list[Division]:
        """The division and its parents, narrowest first."""
        out: list[Division] = []
        current: Division | None = division
        while current is not None:
            out.append(current)
            current = self.parent(current)
        return out

    def chain(self, division: Division) -> tuple[str, ...]:
        """Names from the province down to ``division``."""
        names: list[str] = []
        for d in reversed(self.ancestors(division)):
            if not names or names[-1] != d.name:
                names.append(d.name)
        return tuple(names)

    def is_within(self, child: Division, parent: Division) -> bool:
        """Whether ``parent`` is ``child`` or one of its ancestors."""
        return parent in self.ancestors(child)

    def extended(self, divisions: list[Division]) -> DivisionTable:
        """A new table with ``divisions`` added (a layer's own streets, say)."""
        return DivisionTable([*self.by_key.values(), *divisions])


def _parse_table(text: str) -> list[Division]:
    out = []
    for line in text.strip().splitlines():
        level, key, name, parent, extra = line.split("|")
        aliases = [*short_forms(name), *extra.split()]
        for former in extra.split():
            aliases.extend(short_forms(former))
        out.append(
            Division(key, name, _LEVEL[level], parent or None, tuple(dict.fromkeys(aliases)))
        )
    return out


@lru_cache(maxsize=1)
def division_table() -> DivisionTable:
    """The built-in division table (built once, then cached).

    Examples
    --------
    >>> [d.level for d in division_table().lookup("上海")]
    ['province', 'city']
    """
    return DivisionTable(_parse_table(_TABLE))
