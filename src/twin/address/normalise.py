"""Normalise Chinese address text before parsing and matching.

Three conversions, applied the same way to the standard layer and to what
users type, so that both meet on one spelling:

- full-width ASCII (０-９, Ａ-Ｚ, ＃) to half-width, letters upper-cased;
- traditional characters to simplified ones (character by character, with the
  zh-cn table that the ``zhconv`` package ships);
- Chinese numerals before a numbering unit (号, 栋, 单元, 室, 段, 楼, 层, 弄,
  巷, 组, 期) or after 第 to digits: 三号 → 3号, 十二栋 → 12栋, 一零三室 → 103室,
  二百零五号 → 205号. Numerals elsewhere stay (一环路 is a name).

Spaces, punctuation and the usual separators are dropped.

Examples
--------
>>> normalise("四川省成都市錦江區 望嶺西路一段 ２５號 三棟二單元一〇三室")
'四川省成都市锦江区望岭西路1段25号3栋2单元103室'
>>> normalise("第十二号")
'12号'
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from importlib import resources

__all__ = ["normalise", "normalise_series", "to_traditional", "zh_to_int"]

_UNITS = "号栋幢座单元室段楼层弄巷组期户"
_NUMERAL = "零〇一二两三四五六七八九十百千"
_NUM_RE = re.compile(rf"第?([{_NUMERAL}]+)(?=[{_UNITS}])|第([{_NUMERAL}]+)")
_NUMERAL_SET = frozenset(_NUMERAL)
_DIGIT = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
_POWER = {"十": 10, "百": 100, "千": 1000}
_DROP = re.compile(r"[\s,，。.、;；:：'\"“”‘’()（）\[\]【】<>《》\-—_/\\|·~`!！?？]+")


def zh_to_int(text: str) -> int:
    """Return the value of a Chinese numeral (一 … 九千九百九十九).

    Digit strings without a power (一零三, 二〇五) are read digit by digit.

    Examples
    --------
    >>> zh_to_int("十二"), zh_to_int("二百零五"), zh_to_int("一零三"), zh_to_int("十")
    (12, 205, 103, 10)
    """
    if not any(c in _POWER for c in text):
        return int("".join(str(_DIGIT[c]) for c in text))
    total, digit = 0, None
    for char in text:
        if char in _POWER:
            total += (1 if digit is None else digit) * _POWER[char]
            digit = None
        else:
            digit = _DIGIT[char]
    return total + (digit or 0)


@lru_cache(maxsize=1)
def _zhconv_tables() -> dict[str, dict[str, str]]:
    """The conversion tables the ``zhconv`` package ships (read here, file closed)."""
    text = resources.files("zhconv").joinpath("zhcdict.json").read_text(encoding="utf-8")
    tables: dict[str, dict[str, str]] = json.loads(text)
    return tables


def _single_chars(*names: str) -> dict[int, str]:
    table: dict[int, str] = {}
    for name in names:
        for key, value in _zhconv_tables()[name].items():
            if len(key) == 1 and len(value) == 1 and key != value:
                table[ord(key)] = value
    return table


@lru_cache(maxsize=1)
def _traditional() -> dict[int, str]:
    return _single_chars("zh2Hant", "zh2TW")


def to_traditional(text: str) -> str:
    """``text`` in traditional characters, character by character (for test data).

    Examples
    --------
    >>> to_traditional("锦江区望岭西路")
    '錦江區望嶺西路'
    """
    return text.translate(_traditional())


@lru_cache(maxsize=1)
def _table() -> dict[int, str]:
    """Full-width → half-width and traditional → simplified, as one translate table."""
    table = _single_chars("zh2Hans", "zh2CN")
    for code in range(0xFF01, 0xFF5F):  # full-width ASCII block
        table[code] = chr(code - 0xFEE0).upper()
    table[0x3000] = " "
    for code in range(ord("a"), ord("z") + 1):
        table[code] = chr(code).upper()
    return table


def _numeral(match: re.Match[str]) -> str:
    text = match.group(1) or match.group(2)
    try:
        return str(zh_to_int(text))
    except KeyError:  # pragma: no cover - the pattern only admits numerals
        return match.group(0)


def normalise(text: str) -> str:
    """Return ``text`` normalised for parsing and matching.

    Parameters
    ----------
    text : str
        An address as typed.

    Returns
    -------
    str
        Half-width, simplified, numerals as digits, no spaces or punctuation.

    Examples
    --------
    >>> normalise("上海市 閘北區 共和新路１２０号")
    '上海市闸北区共和新路120号'
    """
    if not isinstance(text, str):
        return ""
    text = unicodedata.normalize("NFC", text).translate(_table())
    text = _DROP.sub("", text)
    if not _NUMERAL_SET.isdisjoint(text):
        text = _NUM_RE.sub(_numeral, text)
    return text


def normalise_series(values: object) -> list[str]:
    """Normalise every value of an iterable (a Series, a list); missing values give ''.

    Examples
    --------
    >>> normalise_series(["１号", None])
    ['1号', '']
    """
    return [normalise(v) if isinstance(v, str) else "" for v in values]  # type: ignore[attr-defined]
