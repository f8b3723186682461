"""Generated Chinese names: roads, compounds, districts, numerals.

Every name is assembled from two syllables drawn from the tables below, so no
real place is named on purpose; the tables carry the pinyin initial of each
syllable so that district abbreviations (the ``JH`` in ``CD-JH-0001``) can be
derived.

Examples
--------
>>> import numpy as np
>>> from twin.sample.names import zh_number, two_syllable_names
>>> zh_number(1), zh_number(12), zh_number(40)
('一', '十二', '四十')
>>> names = two_syllable_names(np.random.default_rng(0), 3)
>>> len(names), all(len(n) == 2 for n in names)
(3, True)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "FIRST",
    "SECOND",
    "abbreviation",
    "two_syllable_names",
    "zh_number",
    "zh_numbers",
]

#: First syllables with the initial of their pinyin.
FIRST: tuple[tuple[str, str], ...] = (
    ("锦", "J"),
    ("科", "K"),
    ("天", "T"),
    ("府", "F"),
    ("蜀", "S"),
    ("玉", "Y"),
    ("青", "Q"),
    ("金", "J"),
    ("红", "H"),
    ("桂", "G"),
    ("望", "W"),
    ("双", "S"),
    ("龙", "L"),
    ("凤", "F"),
    ("文", "W"),
    ("武", "W"),
    ("新", "X"),
    ("永", "Y"),
    ("太", "T"),
    ("长", "C"),
    ("清", "Q"),
    ("石", "S"),
    ("春", "C"),
    ("秋", "Q"),
    ("百", "B"),
    ("花", "H"),
    ("紫", "Z"),
    ("荷", "H"),
    ("柳", "L"),
    ("梓", "Z"),
    ("芙", "F"),
    ("星", "X"),
    ("光", "G"),
    ("福", "F"),
    ("瑞", "R"),
    ("宏", "H"),
    ("明", "M"),
    ("安", "A"),
    ("宁", "N"),
    ("和", "H"),
    ("兴", "X"),
    ("盛", "S"),
    ("沙", "S"),
    ("杉", "S"),
    ("枣", "Z"),
    ("棕", "Z"),
    ("黄", "H"),
    ("白", "B"),
)

#: Second syllables with the initial of their pinyin.
SECOND: tuple[tuple[str, str], ...] = (
    ("华", "H"),
    ("城", "C"),
    ("江", "J"),
    ("阳", "Y"),
    ("丰", "F"),
    ("林", "L"),
    ("源", "Y"),
    ("泉", "Q"),
    ("桥", "Q"),
    ("溪", "X"),
    ("湖", "H"),
    ("山", "S"),
    ("川", "C"),
    ("坪", "P"),
    ("坝", "B"),
    ("岭", "L"),
    ("河", "H"),
    ("池", "C"),
    ("田", "T"),
    ("村", "C"),
    ("湾", "W"),
    ("岸", "A"),
    ("洲", "Z"),
    ("亭", "T"),
    ("台", "T"),
    ("堰", "Y"),
    ("塘", "T"),
    ("苑", "Y"),
    ("庭", "T"),
    ("井", "J"),
    ("峰", "F"),
    ("霞", "X"),
    ("荫", "Y"),
    ("芳", "F"),
    ("沁", "Q"),
    ("瑜", "Y"),
)

_DIGITS = "零一二三四五六七八九"


def zh_number(n: int) -> str:
    """Return ``n`` (1–99) in Chinese numerals, as in road sections (一段, 十二段).

    Parameters
    ----------
    n : int
        A number from 1 to 99.

    Returns
    -------
    str
        The numeral.

    Examples
    --------
    >>> zh_number(10), zh_number(21)
    ('十', '二十一')
    """
    if not 1 <= n <= 99:
        raise ValueError(f"zh_number takes 1..99, not {n}")
    tens, units = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _DIGITS[tens] + "十")
    return head + (_DIGITS[units] if units else "")


def zh_numbers(values: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Return Chinese numerals for an array of numbers from 1 to 99.

    Parameters
    ----------
    values : array_like of int
        Numbers from 1 to 99 (values above 99 are clipped to 99).

    Returns
    -------
    numpy.ndarray
        Unicode strings, same shape as ``values``.

    Examples
    --------
    >>> zh_numbers([1, 2, 11]).tolist()
    ['一', '二', '十一']
    """
    table = np.array([""] + [zh_number(i) for i in range(1, 100)])
    return table[np.clip(np.asarray(values, dtype=np.int64), 1, 99)]


def two_syllable_names(
    rng: np.random.Generator, n: int, *, unique: bool = True
) -> npt.NDArray[np.str_]:
    """Return ``n`` generated two-syllable names (锦华, 科源, …).

    Parameters
    ----------
    rng : numpy.random.Generator
        The random stream.
    n : int
        How many names.
    unique : bool, default True
        Draw without replacement (at most ``len(FIRST) * len(SECOND)`` names).

    Returns
    -------
    numpy.ndarray
        Unicode strings.

    Examples
    --------
    >>> import numpy as np
    >>> names = two_syllable_names(np.random.default_rng(1), 50)
    >>> len(set(names.tolist()))
    50
    """
    total = len(FIRST) * len(SECOND)
    if unique and n > total:
        raise ValueError(f"only {total} unique names can be generated, not {n}")
    codes = rng.choice(total, size=n, replace=not unique)
    first = np.array([c for c, _ in FIRST])
    second = np.array([c for c, _ in SECOND])
    return np.char.add(first[codes // len(SECOND)], second[codes % len(SECOND)])


def abbreviation(name: str) -> str:
    """Return the pinyin initials of a generated name's first two syllables.

    Parameters
    ----------
    name : str
        A name that starts with two syllables from :data:`FIRST` and :data:`SECOND`.

    Returns
    -------
    str
        Two upper-case letters, e.g. ``"JH"`` for 锦华街道.

    Examples
    --------
    >>> abbreviation("锦华街道")
    'JH'
    """
    first = dict(FIRST)
    second = dict(SECOND)
    return first.get(name[0], "X") + second.get(name[1], "X")
