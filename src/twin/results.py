"""One protocol for every analysis result.

Every result (a pipe break, a road closure, a cascade, service areas, a
route, a topology check) offers the same things:

- ``summary``: a :class:`Summary` dataclass with :meth:`Summary.to_dict`
  (it is also the dict it used to be: ``summary["buildings"]``);
- its feature tables as GeoDataFrames with their CRS (:meth:`Result.tables`);
- :meth:`Result.to_file`: every non-empty table as one layer of a GeoPackage;
- :meth:`Result.explore`: every table on one interactive map, folium or, for
  large results, lonboard (the ``notebooks`` extra installs both);
- a short ``repr`` and an HTML ``_repr_html_`` for Jupyter.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(eq=False, repr=False)
... class Counts(Summary):
...     pipes: int
...     buildings: int | None = None
>>> s = Counts(pipes=3)
>>> s.to_dict()
{'pipes': 3, 'buildings': None}
>>> s.pipes, s["pipes"], s == {"pipes": 3, "buildings": None}
(3, 3, True)
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import geopandas as gpd
import numpy as np
import pandas as pd

__all__ = ["CheckSummary", "Ranking", "RankingSummary", "Result", "Summary", "as_geoframe"]

_REPR_ITEMS = 4


@dataclass(eq=False, repr=False)
class Summary(dict[str, Any]):
    """Base of every result summary: a dataclass whose fields are also its dict items.

    Subclasses are dataclasses (``@dataclass(eq=False, repr=False)``) whose
    fields are the summary's entries: ``s.buildings`` and ``s["buildings"]``
    read the same value, ``json.dumps(s)`` and ``s == {...}`` work as for the
    dict a summary used to be. Fields listed in ``_omit_if_none`` are left out
    of the dict while None (``population`` when no building carries it).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(eq=False, repr=False)
    ... class S(Summary):
    ...     _omit_if_none: ClassVar[tuple[str, ...]] = ("population",)
    ...     buildings: int = 0
    ...     population: float | None = None
    >>> S(buildings=2).to_dict(), S(2, 7.0).to_dict()
    ({'buildings': 2}, {'buildings': 2, 'population': 7.0})
    >>> s = S(2)
    >>> s.population = 5.0
    >>> s["population"], s
    (5.0, S(buildings=2, population=5.0))
    """

    _omit_if_none: ClassVar[tuple[str, ...]] = ()

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name.startswith("_"):
            return
        if value is None and name in self._omit_if_none:
            self.pop(name, None)
        else:
            dict.__setitem__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """The summary as a plain dict (JSON-ready)."""
        return dict(self)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self.items() if _short(v))
        return f"{type(self).__name__}({items})"


@dataclass(eq=False, repr=False)
class CheckSummary(Summary):
    """A topology check in numbers: the network, its stats (as items) and issue counts.

    Calling it returns itself: ``report.summary()`` (the 0.1 form) still works.

    Examples
    --------
    >>> s = CheckSummary.of("water", {"pipes": 3}, {"dangling_end": 1})
    >>> s == {"network": "water", "pipes": 3, "issues": {"dangling_end": 1}}, s() is s
    (True, True)
    """

    network: str

    @classmethod
    def of(cls, network: str, stats: dict[str, Any], counts: dict[str, int]) -> CheckSummary:
        """The summary of ``network`` with its ``stats`` and issue ``counts``."""
        made = cls(network)
        dict.update(made, stats)
        dict.__setitem__(made, "issues", counts)
        return made

    @property
    def issues(self) -> dict[str, int]:
        """Issue counts by kind."""
        return dict(self["issues"])

    def __call__(self) -> CheckSummary:
        return self


def _short(value: Any) -> bool:
    """Whether a value is small enough for a one-line repr."""
    return not isinstance(value, list | dict | tuple) or len(value) <= 3


def as_geoframe(frame: pd.DataFrame, crs: Any) -> gpd.GeoDataFrame:
    """``frame`` as a GeoDataFrame in ``crs`` (a geometry column of None when it has none).

    Examples
    --------
    >>> t = as_geoframe(pd.DataFrame({"a": [1]}), "EPSG:4544")
    >>> type(t).__name__, t.crs.to_epsg(), bool(t.geometry.isna().all())
    ('GeoDataFrame', 4544, True)
    """
    if isinstance(frame, gpd.GeoDataFrame) and frame.crs is not None:
        return frame
    if isinstance(frame, gpd.GeoDataFrame) or "geometry" in frame.columns:
        return gpd.GeoDataFrame(frame, geometry="geometry", crs=crs)
    return gpd.GeoDataFrame(
        frame, geometry=gpd.GeoSeries([None] * len(frame), index=frame.index), crs=crs
    )


class Result:
    """Mixin giving an analysis result the common protocol.

    A subclass lists its table attributes in ``_tables`` and has a ``summary``.

    Examples
    --------
    >>> r = city.pipe_break("water_pipes.JS000010")
    >>> sorted(r.tables())[:2]
    ['buildings', 'cut_off_pipes']
    >>> len(repr(r)) < 200
    True
    """

    _tables: ClassVar[tuple[str, ...]] = ()
    summary: Any

    def tables(self) -> dict[str, gpd.GeoDataFrame]:
        """The result's feature tables, by name (GeoDataFrames with a CRS)."""
        out = {}
        for name in self._tables:
            table = getattr(self, name)
            if isinstance(table, pd.DataFrame):
                out[name] = table
        return out

    def summary_dict(self) -> dict[str, Any]:
        """The summary as a plain dict."""
        summary = self.summary
        return summary.to_dict() if hasattr(summary, "to_dict") else dict(summary)

    def to_file(self, path: str | os.PathLike[str]) -> Path:
        """Write every non-empty table as one layer of the GeoPackage ``path``.

        An existing file is replaced. Returns the path.

        Examples
        --------
        >>> import tempfile, pathlib, pyogrio
        >>> r = city.pipe_break("water_pipes.JS000010")
        >>> out = r.to_file(pathlib.Path(tempfile.mkdtemp()) / "break.gpkg")
        >>> "valves_to_close" in [n for n, _ in pyogrio.list_layers(out)]
        True
        """
        from twin.explore import json_safe

        target = Path(path)
        target.unlink(missing_ok=True)
        written = 0
        for name, table in self.tables().items():
            if table.empty:
                continue
            json_safe(table, times=False).to_file(
                target, layer=name, driver="GPKG", engine="pyogrio"
            )
            written += 1
        if not written:
            from twin.errors import UsageError

            raise UsageError(f"the result has no features to write to {target}")
        return target

    def plot(self, *, ax: Any = None, **kwargs: Any) -> Any:
        """Every non-empty table on one static matplotlib map, in :meth:`explore`'s colours.

        See :func:`twin.explore.plot`; returns the matplotlib Axes.
        """
        from twin.explore import plot

        return plot(self.tables(), ax=ax, **kwargs)

    def explore(self, *, renderer: str = "auto", **kwargs: Any) -> Any:
        """Every non-empty table on one interactive map (needs the ``notebooks`` extra).

        folium for small results; lonboard above :data:`twin.explore.LARGE_FEATURES`
        features in total (see :func:`twin.explore.explore`). Keyword arguments go to
        :meth:`geopandas.GeoDataFrame.explore` for each table (folium only).
        """
        from twin.explore import explore

        return explore(self.tables(), renderer=renderer, **kwargs)

    def __repr__(self) -> str:
        summary = self.summary_dict()
        items = [(k, v) for k, v in summary.items() if isinstance(v, int | float | str)]
        text = ", ".join(f"{k}={v}" for k, v in items[:_REPR_ITEMS])
        return f"<{type(self).__name__} {text}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
            f"<td>{html.escape(_cell(v))}</td></tr>"
            for k, v in self.summary_dict().items()
        )
        counts = ", ".join(f"{name}: {len(t)}" for name, t in self.tables().items())
        return (
            f"<div><strong>{html.escape(type(self).__name__)}</strong>"
            f"<table>{rows}</table><p>tables: {html.escape(counts)}</p></div>"
        )


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple) and len(value) > 5:
        return f"{', '.join(map(str, value[:5]))}, … ({len(value)})"
    return str(value)


@dataclass(eq=False, repr=False)
class RankingSummary(Summary):
    """A ranking in numbers: how many rows, the top one and its harm.

    Examples
    --------
    >>> RankingSummary(rows=2, top="roads.R1", top_buildings=4).to_dict()
    {'rows': 2, 'top': 'roads.R1', 'top_buildings': 4}
    """

    rows: int
    top: str | int | None = None
    top_buildings: int | None = None


class Ranking(gpd.GeoDataFrame):
    """A ranked table (``rank`` 1 = most harm) that also has the result protocol.

    It is the GeoDataFrame it always was (``.loc``, ``sort_values``, ``to_file``
    and ``explore`` are geopandas'),
    plus ``summary`` (a :class:`RankingSummary`), :meth:`tables` and
    :meth:`summary_dict`. ``_harm`` names the column the top row's
    ``top_buildings`` reads.

    Examples
    --------
    >>> import shapely
    >>> r = Ranking({"rank": [2, 1], "total_buildings": [3, 9]}, index=["S1", "S2"],
    ...             geometry=[shapely.Point(0, 0)] * 2, crs="EPSG:4544")
    >>> r.summary.to_dict(), list(r.tables())
    ({'rows': 2, 'top': 'S2', 'top_buildings': 9}, ['ranking'])
    """

    _harm: ClassVar[str] = "total_buildings"
    _table_name: ClassVar[str] = "ranking"

    @property
    def summary(self) -> RankingSummary:
        """Rows, the top-ranked row's label (uid or segment) and its buildings."""
        if not len(self) or "rank" not in self.columns:
            return RankingSummary(rows=len(self))
        top = self.index[int(np.argmin(self["rank"].to_numpy()))]
        harm = self[self._harm].loc[top] if self._harm in self.columns else None
        label = top.item() if isinstance(top, np.generic) else top
        return RankingSummary(len(self), label, None if harm is None else int(harm))

    def tables(self) -> dict[str, gpd.GeoDataFrame]:
        """The ranking as its one table (a plain GeoDataFrame)."""
        return {self._table_name: gpd.GeoDataFrame(self, copy=False)}

    def summary_dict(self) -> dict[str, Any]:
        """The summary as a plain dict."""
        return self.summary.to_dict()
