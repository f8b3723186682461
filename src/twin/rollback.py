"""Rolling a layer back to how it was before one import.

The history already holds every replaced and removed version, so a rollback
reads the layer as it was just before the import and imports that state as a
new change set: nothing is deleted, and the rollback itself can be rolled back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from twin.errors import UsageError

if TYPE_CHECKING:
    from twin.imports import ImportReport
    from twin.model import Twin


def rollback_import(city: Twin, import_id: int) -> ImportReport:
    """Restore the layer import ``import_id`` changed to its state just before it.

    Parameters
    ----------
    city : Twin
        The twin.
    import_id : int
        The import to undo (``twin history`` lists them).

    Returns
    -------
    ImportReport
        The change set of the rollback (itself an import, recorded in provenance).

    Raises
    ------
    UsageError
        No such import, or the import created its layer (nothing to go back to).

    Examples
    --------
    >>> import tempfile, pathlib, geopandas as gpd, shapely, twin
    >>> city = twin.Twin.create(pathlib.Path(tempfile.mkdtemp()) / "c.gpkg", crs="EPSG:4544")
    >>> def deliver(name):
    ...     frame = gpd.GeoDataFrame({"id": ["p1"], "name": [name]},
    ...                              geometry=[shapely.Point(505700, 3392300)], crs="EPSG:4544")
    ...     return city.import_frame(frame, layer="pois", kind="poi", id="id")
    >>> first, second = deliver("old name"), deliver("new name")
    >>> report = rollback_import(city, second.import_id)
    >>> report.source, report.changed, city.layer("pois")["name"].tolist()
    ('rollback of import 2', 1, ['old name'])
    """
    imports = city.imports()
    if import_id not in imports.index:
        listed = ", ".join(str(i) for i in imports.index) or "none"
        raise UsageError(f"no import {import_id}: the twin's imports are {listed}")
    row = imports.loc[import_id]
    layer = str(row["layer"])
    if row["options"].get("raster"):
        raise UsageError(
            f"import {import_id} is a raster import of {layer}: its earlier version is kept "
            f"beside the twin ({layer}@ID.tif, see Twin.imports('{layer}')); "
            "re-import that file to go back"
        )
    if bool(row["initial"]):
        raise UsageError(
            f"import {import_id} created layer {layer}: there is no earlier state to go back to"
        )
    before = pd.Timestamp(str(row["time"])) - pd.Timedelta(milliseconds=1)
    frame = city.layer(layer, as_of=before).reset_index().drop(columns="valid_to", errors="ignore")
    info = city.info(layer)
    return city.import_frame(
        frame,
        layer=layer,
        kind=info.kind,
        source=f"rollback of import {import_id}",
        classification=info.classification,
        allow_removals=True,
        replace=True,
        local_coords=True,  # the twin's own features, already checked when imported
    )
