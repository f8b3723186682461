"""Interactive maps in Jupyter that cope with a million features.

:func:`explore` draws one GeoDataFrame (or several, by name) on an
interactive map. Small frames go to folium (``GeoDataFrame.explore``, with
tooltips); above :data:`LARGE_FEATURES` features in total it switches to
lonboard, which hands the geometries to the browser as GeoArrow and draws
them with deck.gl on the GPU, so a twin's 1,000,000 buildings pan smoothly
where folium would write every feature into the notebook as GeoJSON (hundreds
of megabytes) and stall the browser. Both come with the ``notebooks`` extra
(``pip install 'citytwin[notebooks]'``). :meth:`twin.results.Result.explore`
uses the same switch.

Examples
--------
>>> import geopandas as gpd, shapely
>>> frame = gpd.GeoDataFrame(geometry=[shapely.Point(104.06, 30.66)], crs="OGC:CRS84")
>>> renderer_for(len(frame)), renderer_for(LARGE_FEATURES + 1)
('folium', 'lonboard')
>>> explore(frame).__class__.__name__  # doctest: +SKIP
'Map'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import pandas as pd

from twin.errors import UsageError

__all__ = ["LARGE_FEATURES", "RENDERERS", "explore", "plot", "renderer_for"]

#: Above this many features (all frames together) :func:`explore` draws with lonboard.
LARGE_FEATURES = 50_000
RENDERERS = ("auto", "folium", "lonboard")
_COLOURS = ["red", "blue", "orange", "purple", "green", "gray", "black"]
_RGB = {
    "red": [214, 39, 40],
    "blue": [31, 119, 180],
    "orange": [255, 127, 14],
    "purple": [148, 103, 189],
    "green": [44, 160, 44],
    "gray": [127, 127, 127],
    "black": [20, 20, 20],
}


def renderer_for(n_features: int, renderer: str = "auto") -> str:
    """Which renderer :func:`explore` uses for ``n_features`` features.

    Examples
    --------
    >>> renderer_for(10), renderer_for(10, "lonboard"), renderer_for(10**6)
    ('folium', 'lonboard', 'lonboard')
    """
    if renderer not in RENDERERS:
        raise UsageError(f"renderer {renderer!r}: use one of {', '.join(RENDERERS)}")
    if renderer != "auto":
        return renderer
    return "lonboard" if n_features > LARGE_FEATURES else "folium"


def explore(
    frames: gpd.GeoDataFrame | Mapping[str, gpd.GeoDataFrame],
    *,
    renderer: str = "auto",
    **kwargs: Any,
) -> Any:
    """An interactive map of ``frames``: folium when small, lonboard when large.

    Parameters
    ----------
    frames : GeoDataFrame or mapping of name to GeoDataFrame
        What to draw; empty frames and missing geometries are left out.
    renderer : {"auto", "folium", "lonboard"}, default "auto"
        ``auto`` uses lonboard above :data:`LARGE_FEATURES` features in total.
    **kwargs
        Passed to :meth:`geopandas.GeoDataFrame.explore` (folium) for each frame.

    Returns
    -------
    folium.Map or lonboard.Map

    Raises
    ------
    UsageError
        For an unknown renderer, or when the renderer is not installed.
    """
    named = {"layer": frames} if isinstance(frames, gpd.GeoDataFrame) else dict(frames)
    shown = {
        name: frame[frame.geometry.notna() & ~frame.geometry.is_empty]
        for name, frame in named.items()
        if len(frame)
    }
    total = sum(len(frame) for frame in shown.values())
    if renderer_for(total, renderer) == "lonboard":
        return _lonboard(shown)
    return _folium(shown, **kwargs)


def plot(
    frames: gpd.GeoDataFrame | Mapping[str, gpd.GeoDataFrame], *, ax: Any = None, **kwargs: Any
) -> Any:
    """A static map of ``frames`` (matplotlib), in the colours :func:`explore` uses.

    For reports and printed pages: each non-empty frame is drawn in turn in
    :func:`explore`'s colour for its position, with a legend of the frames' names.

    Parameters
    ----------
    frames : GeoDataFrame or mapping of name to GeoDataFrame
        What to draw; empty frames and missing geometries are left out.
    ax : matplotlib Axes, optional
        Where to draw; a new figure's axes by default.
    **kwargs
        Passed to :meth:`geopandas.GeoDataFrame.plot` for each frame.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> a = gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)], crs=3857)
    >>> b = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (5, 5)])], crs=3857)
    >>> ax = plot({"valves": a, "pipes": b})
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['valves', 'pipes']
    """
    import matplotlib

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(8, 8))
    named = {"layer": frames} if isinstance(frames, gpd.GeoDataFrame) else dict(frames)
    handles = []
    for i, (name, frame) in enumerate(named.items()):
        shown = frame[frame.geometry.notna() & ~frame.geometry.is_empty] if len(frame) else frame
        if shown.empty:
            continue
        colour = _COLOURS[i % len(_COLOURS)]
        shown.plot(ax=ax, color=colour, **kwargs)
        handles.append(matplotlib.patches.Patch(color=colour, label=name))
    if handles:
        ax.legend(handles=handles)
    ax.set_aspect("equal")
    return ax


def _folium(frames: Mapping[str, gpd.GeoDataFrame], **kwargs: Any) -> Any:
    try:
        import folium
    except ImportError:  # pragma: no cover - depends on the environment
        raise UsageError("explore() draws with folium: pip install 'citytwin[notebooks]'") from None
    fmap = None
    for i, (name, frame) in enumerate(frames.items()):
        if frame.empty:
            continue
        options = {"color": _COLOURS[i % len(_COLOURS)], **kwargs}
        fmap = json_safe(frame).explore(m=fmap, name=name, **options)
    if fmap is None:
        fmap = folium.Map(tiles=None)
    folium.LayerControl().add_to(fmap)
    return fmap


def _lonboard(frames: Mapping[str, gpd.GeoDataFrame]) -> Any:
    try:
        import lonboard
    except ImportError:  # pragma: no cover - depends on the environment
        raise UsageError(
            "explore() draws large frames with lonboard: pip install 'citytwin[notebooks]'"
        ) from None
    layers = []
    for i, frame in enumerate(frames.values()):
        if frame.empty:
            continue
        colour = _RGB[_COLOURS[i % len(_COLOURS)]]
        # Only the geometry goes to the browser: a million rows of attributes would not help.
        slim = gpd.GeoDataFrame(geometry=frame.geometry.to_crs("EPSG:4326").reset_index(drop=True))
        family = slim.geom_type.iloc[0]
        if "Point" in family:
            layers.append(lonboard.ScatterplotLayer.from_geopandas(slim, get_fill_color=colour))
        elif "Line" in family:
            layers.append(lonboard.PathLayer.from_geopandas(slim, get_color=colour))
        else:
            layers.append(
                lonboard.PolygonLayer.from_geopandas(
                    slim, get_fill_color=colour, get_line_color=[60, 60, 60], opacity=0.6
                )
            )
    return lonboard.Map(layers=layers)


def json_safe(frame: gpd.GeoDataFrame, *, times: bool = True) -> gpd.GeoDataFrame:
    """Lists, dicts, categories and (with ``times``) times as text, so folium's tooltips
    serialise; with ``times=False`` what a GeoPackage layer can hold (its index a column).

    Examples
    --------
    >>> import shapely
    >>> f = gpd.GeoDataFrame({"a": [[1, 2]]}, geometry=[shapely.Point(0, 0)], crs="EPSG:4326")
    >>> json_safe(f)["a"].iloc[0]
    '1, 2'
    """
    out = frame.reset_index()
    for column in out.columns:
        if column == out.geometry.name:
            continue
        values = out[column]
        if values.dtype == object and values.map(_nested).any():
            out[column] = values.map(_flat)
        elif isinstance(values.dtype, pd.CategoricalDtype) or (
            times and str(values.dtype).startswith("datetime")
        ):
            out[column] = values.astype(str)
    return gpd.GeoDataFrame(out, geometry=frame.geometry.name, crs=frame.crs)


def _nested(value: Any) -> bool:
    return isinstance(value, list | tuple | dict)


def _flat(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return str(value)
    return value
