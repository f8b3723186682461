"""Raster layers of a twin: DEM, DSM, flood depth, population grids.

A raster layer is a Cloud-Optimised GeoTIFF in a folder beside the twin file,
``<twin>.rasters/<layer>.tif``, in the twin's CRS. A manifest in the same
folder (``rasters.json``) records each layer's kind and, for every import, its
provenance (source, checksum, CRS, resampling, time), like the vector imports
in the GeoPackage. Every raster import is also recorded in the twin's own
provenance table (``twin_imports``, the same import-id sequence as vector
imports), so ``twin history TWIN --layer dem`` lists it with its source,
checksum, CRS and cell counts; a re-import counts the cells added, changed and
removed (same grid) like a vector change set. A re-import keeps the replaced
file as ``<layer>@<import_id>.tif`` with its ``valid_to``, so nothing is lost:
the layer's name always holds the current version (what QGIS opens), the
earlier versions keep theirs, as a vector layer's current features stay in the
layer's table and the replaced ones move to its history table.

Why COGs beside the file rather than GeoPackage tiles: GeoPackage 2D gridded
tiles store 16-bit PNG or 32-bit TIFF tiles with a scale/offset per tile and
no native nodata band; a DEM is float, big, and read window by window, which a
tiled, compressed COG does directly (GDAL, QGIS and every web viewer read it),
and a raster is replaced by one atomic rename without rewriting the vector
database.

Examples
--------
>>> import tempfile, pathlib, twin
>>> from twin.raster import import_raster, read_raster
>>> city = twin.Twin.create(pathlib.Path(tempfile.mkdtemp()) / "c.gpkg", crs="EPSG:4544")
>>> report = import_raster(city, "data/samples/dem.tif", layer="dem", kind="dem")
>>> report.kind, report.crs
('dem', 'EPSG:4544')
>>> dem = read_raster(city, "dem")
>>> bool(dem.values.min() > 400)
True
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.warp import calculate_default_transform, reproject

from twin.crs import resolve_crs
from twin.errors import CRSError, LayerNotFoundError, SourceError, UsageError
from twin.mapping import check_layer_name

__all__ = [
    "RASTER_KINDS",
    "Raster",
    "RasterImportReport",
    "import_raster",
    "raster_dir",
    "raster_imports",
    "raster_infos",
    "raster_layers",
    "raster_path",
    "read_raster",
    "store_raster",
    "write_raster",
]

#: Raster kinds and the resampling used to bring them to the twin CRS: elevation
#: surfaces are continuous (bilinear); any other grid may hold classes or counts
#: (nearest keeps every value a value of the source).
RASTER_KINDS: dict[str, Resampling] = {
    "dem": Resampling.bilinear,
    "dsm": Resampling.bilinear,
    "raster": Resampling.nearest,
}
MANIFEST = "rasters.json"
NODATA = -9999.0


@dataclass
class Raster:
    """One band in the twin CRS: values (float64, NaN where nodata), transform, CRS."""

    values: np.ndarray
    transform: Affine
    crs: pyproj.CRS
    name: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.values.shape[0]), int(self.values.shape[1]))

    @property
    def cell_size_m(self) -> float:
        return float(abs(self.transform.a))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of the grid."""
        rows, cols = self.shape
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (cols, rows)
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


@dataclass
class RasterImportReport:
    """Provenance of one raster import."""

    layer: str
    kind: str
    source: str
    source_format: str = ""
    checksum: str = ""
    src_crs: str = ""
    crs: str = ""
    resampling: str = ""
    width: int = 0
    height: int = 0
    cell_size_m: float = 0.0
    nodata_cells: int = 0
    import_id: int = 0
    time: str = ""
    seconds: float = 0.0
    replaced: str | None = None
    cells_added: int = 0
    cells_changed: int = 0
    cells_removed: int = 0
    cells_unchanged: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.layer} ({self.kind}): {self.width} x {self.height} cells of "
            f"{self.cell_size_m:g} m in {self.crs}, {self.nodata_cells} nodata"
        )


def raster_dir(city: Any) -> Path:
    """The folder holding a twin's raster layers: ``<twin file>.rasters``.

    Raises
    ------
    UsageError
        For a twin in PostGIS: its raster layers have no folder beside a file yet.
    """
    if _in_postgis(city):
        raise UsageError(
            "raster layers live beside a GeoPackage twin: import them into a GeoPackage "
            "twin (twin copy moves the vector layers)"
        )
    path = Path(city.path)
    return path.with_name(path.name + ".rasters")


def _in_postgis(city: Any) -> bool:
    return str(getattr(city, "location", "")).startswith(("postgresql://", "postgres://"))


def _manifest(city: Any) -> dict[str, Any]:
    if _in_postgis(city):  # no raster layers yet: see raster_dir
        return {"layers": {}, "imports": []}
    file = raster_dir(city) / MANIFEST
    if not file.exists():
        return {"layers": {}, "imports": []}
    data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return data


def _save_manifest(city: Any, data: dict[str, Any]) -> None:
    folder = raster_dir(city)
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def raster_layers(city: Any) -> dict[str, str]:
    """The twin's raster layers and their kinds."""
    return {name: entry["kind"] for name, entry in _manifest(city)["layers"].items()}


def raster_infos(city: Any) -> list[dict[str, Any]]:
    """One entry per raster layer: name, kind, file, grid size, cell size, CRS, last import."""
    data = _manifest(city)
    by_id = {entry["import_id"]: entry for entry in data["imports"]}
    infos = []
    for name, layer in data["layers"].items():
        last = by_id[layer["import_id"]]
        infos.append(
            {
                "name": name,
                "kind": layer["kind"],
                "file": str(raster_dir(city) / layer["file"]),
                "width": last["width"],
                "height": last["height"],
                "cell_size_m": last["cell_size_m"],
                "crs": last["crs"],
                "last_import_time": last["time"],
                "source": last["source"],
            }
        )
    return infos


def raster_imports(city: Any, layer: str | None = None) -> list[dict[str, Any]]:
    """Provenance of every raster import (of one layer), oldest first."""
    imports = _manifest(city)["imports"]
    return [entry for entry in imports if layer is None or entry["layer"] == layer]


def import_raster(
    city: Any,
    source: str | os.PathLike[str],
    *,
    layer: str,
    kind: str = "raster",
    src_crs: Any = None,
    cell_size_m: float | None = None,
) -> RasterImportReport:
    """Import a raster file as layer ``layer``: reprojected to the twin CRS, stored as a COG.

    Parameters
    ----------
    city : twin.Twin
        The twin (its CRS must be set: import a vector layer first or create it with a CRS).
    source : path-like
        Any raster GDAL reads (GeoTIFF, COG, ASCII grid, …); band 1 is imported.
    layer : str
        The raster layer's name.
    kind : {"dem", "dsm", "raster"}
        Chooses the resampling (bilinear for elevation surfaces, nearest otherwise).
    src_crs : optional
        The source's CRS when the file declares none.
    cell_size_m : float, optional
        Output cell size; by default the source's resolution carried over.

    Raises
    ------
    SourceError, CRSError, UsageError
    """
    started = time.perf_counter()
    if kind not in RASTER_KINDS:
        raise UsageError(f"raster kind must be one of {', '.join(RASTER_KINDS)}, not {kind!r}")
    check_layer_name(layer)
    if layer in city.layers:
        raise UsageError(f"{layer} is a vector layer of this twin: choose another raster name")
    held = raster_layers(city).get(layer)
    if held is not None and held != kind:
        raise UsageError(
            f"raster layer {layer} holds kind {held}: import it with kind='{held}', "
            "or choose another layer name"
        )
    twin_crs = city.crs
    if twin_crs is None:
        raise CRSError(
            "the twin has no CRS yet: create it with crs='EPSG:…' or import a vector layer first"
        )
    path = Path(source)
    raster, source_crs, driver = _read_source(path, src_crs)
    report = RasterImportReport(
        layer=layer,
        kind=kind,
        source=str(path),
        source_format=driver,
        checksum="sha256:" + _sha256(path),
        src_crs=source_crs.to_string(),
        crs=twin_crs.to_string(),
        resampling=RASTER_KINDS[kind].name,
    )
    projected = _reproject(raster, source_crs, twin_crs, RASTER_KINDS[kind], cell_size_m)
    report.height, report.width = projected.shape
    report.cell_size_m = projected.cell_size_m
    report.nodata_cells = int(np.isnan(projected.values).sum())
    _store(city, projected, report)
    report.seconds = time.perf_counter() - started
    return report


def store_raster(
    city: Any, raster: Raster, *, layer: str, kind: str, source: str
) -> RasterImportReport:
    """Store a computed grid (a flood depth, a limit surface) as a raster layer, with provenance.

    ``raster`` must already be in the twin CRS; ``source`` says how it was made.
    """
    if kind not in RASTER_KINDS:
        raise UsageError(f"raster kind must be one of {', '.join(RASTER_KINDS)}, not {kind!r}")
    check_layer_name(layer)
    if city.crs is None or raster.crs is None or not city.crs.equals(raster.crs):
        raise CRSError("store_raster takes a grid in the twin CRS")
    report = RasterImportReport(
        layer=layer,
        kind=kind,
        source=source,
        source_format="computed",
        src_crs=raster.crs.to_string(),
        crs=raster.crs.to_string(),
        resampling="none",
        height=raster.shape[0],
        width=raster.shape[1],
        cell_size_m=raster.cell_size_m,
        nodata_cells=int(np.isnan(raster.values).sum()),
    )
    _store(city, raster, report)
    return report


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_source(path: Path, src_crs: Any) -> tuple[Raster, pyproj.CRS, str]:
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    try:
        with rasterio.open(path) as src:
            values = src.read(1, masked=True).astype("float64").filled(np.nan)
            transform, crs, driver = src.transform, src.crs, str(src.driver)
    except rasterio.errors.RasterioIOError as exc:
        raise SourceError(f"{path} is not a raster GDAL can read: {exc}") from exc
    if src_crs is not None:
        declared = resolve_crs(src_crs)
    elif crs is None:
        raise CRSError(f"{path.name} declares no CRS: say which it is with src_crs='EPSG:…'")
    else:
        declared = pyproj.CRS.from_user_input(crs.to_wkt())
    if transform == Affine.identity():
        raise SourceError(f"{path.name} has no georeferencing (no geotransform)")
    return Raster(values, transform, declared), declared, driver


def _reproject(
    raster: Raster,
    src_crs: pyproj.CRS,
    dst_crs: pyproj.CRS,
    resampling: Resampling,
    cell_size_m: float | None,
) -> Raster:
    if src_crs.equals(dst_crs) and cell_size_m is None:
        return Raster(raster.values, raster.transform, dst_crs)
    rows, cols = raster.shape
    left, bottom, right, top = raster.bounds
    src = rasterio.crs.CRS.from_wkt(src_crs.to_wkt())
    dst = rasterio.crs.CRS.from_wkt(dst_crs.to_wkt())
    kwargs = {"resolution": cell_size_m} if cell_size_m else {}
    transform, width, height = calculate_default_transform(
        src, dst, cols, rows, left, bottom, right, top, **kwargs
    )
    out = np.full((height, width), np.nan)
    reproject(
        raster.values,
        out,
        src_transform=raster.transform,
        src_crs=src,
        src_nodata=np.nan,
        dst_transform=transform,
        dst_crs=dst,
        dst_nodata=np.nan,
        resampling=resampling,
    )
    return Raster(out, transform, dst_crs)


def write_raster(raster: Raster, path: str | os.PathLike[str], *, cog: bool = True) -> Path:
    """Write ``raster`` as a float32 (Cloud-Optimised) GeoTIFF, nodata -9999, atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    rows, cols = raster.shape
    data = np.where(np.isnan(raster.values), NODATA, raster.values).astype("float32")
    profile = {
        "driver": "GTiff",
        "width": cols,
        "height": rows,
        "count": 1,
        "dtype": "float32",
        "crs": rasterio.crs.CRS.from_wkt(raster.crs.to_wkt()),
        "transform": raster.transform,
        "nodata": NODATA,
    }
    tmp = target.with_name(target.name + ".tmp")
    with MemoryFile() as memory:
        with memory.open(**profile) as mem:
            mem.write(data, 1)
        with memory.open() as mem:
            options: dict[str, Any] = {"compress": "DEFLATE"}
            driver = "COG" if cog else "GTiff"
            if cog:
                options.update(predictor="FLOATING_POINT")
            else:
                options.update(tiled=True, predictor=3)
            rasterio.shutil.copy(mem, tmp, driver=driver, **options)
    os.replace(tmp, target)
    return target


def _store(city: Any, raster: Raster, report: RasterImportReport) -> None:
    """Write the COG and record the import, in the twin's provenance and the manifest.

    Runs inside a write transaction of the twin (its lock serialises raster and
    vector imports alike): the new file is staged first; the provenance row, the
    renames and the manifest follow; the twin file commits last. A failure
    before the renames leaves the twin and its rasters as they were.
    """
    folder = raster_dir(city)
    folder.mkdir(exist_ok=True)
    staged = write_raster(raster, folder / f".{report.layer}.{os.getpid()}.tif.new")
    try:
        with city.store.session() as session:
            data = _manifest(city)
            previous = data["layers"].get(report.layer)
            report.import_id = session.next_import_id()
            report.time = _iso_time(session.next_time())
            old = None if previous is None else open_raster(folder / previous["file"])
            _count_cells(report, raster, old)
            target = folder / f"{report.layer}.tif"
            if previous is not None:
                report.replaced = f"{report.layer}@{previous['import_id']}.tif"
            session.record_raster_import(_provenance(report, initial=previous is None))
            if previous is not None:
                kept = folder / f"{report.layer}@{previous['import_id']}.tif"
                os.replace(target, kept)
                for entry in data["imports"]:
                    if entry["import_id"] == previous["import_id"]:
                        entry["valid_to"] = report.time
                        entry["file"] = kept.name
            os.replace(staged, target)
            data["layers"][report.layer] = {
                "kind": report.kind,
                "file": target.name,
                "import_id": report.import_id,
            }
            data["imports"].append({**report.to_dict(), "file": target.name, "valid_to": None})
            _save_manifest(city, data)
    finally:
        staged.unlink(missing_ok=True)


def _iso_time(stamp: Any) -> str:
    """A UTC timestamp as the twin stores import times (ISO 8601, milliseconds)."""
    return str(stamp.strftime("%Y-%m-%dT%H:%M:%S.")) + f"{stamp.microsecond // 1000:03d}Z"


def _count_cells(report: RasterImportReport, new: Raster, old: Raster | None) -> None:
    """The cell change set: on the same grid, cells added / changed / removed / unchanged.

    Values compare as stored (float32). On another grid every old valid cell
    is removed and every new one added.
    """
    now = np.where(np.isnan(new.values), np.nan, new.values.astype("float32"))
    valid = np.isfinite(now)
    if old is None or old.shape != new.shape or not old.transform.almost_equals(new.transform):
        report.cells_added = int(valid.sum())
        report.cells_removed = 0 if old is None else int(np.isfinite(old.values).sum())
        return
    was = np.isfinite(old.values)
    both = valid & was
    same = both & (now == old.values)
    report.cells_added = int((valid & ~was).sum())
    report.cells_removed = int((was & ~valid).sum())
    report.cells_unchanged = int(same.sum())
    report.cells_changed = int(both.sum()) - report.cells_unchanged


def _provenance(report: RasterImportReport, *, initial: bool) -> dict[str, Any]:
    """The import's row of the twin's provenance table (counts in cells)."""
    cells = report.width * report.height
    return {
        "import_id": report.import_id,
        "layer": report.layer,
        "time": report.time,
        "source": report.source,
        "source_format": report.source_format,
        "checksum": report.checksum,
        "src_crs": report.src_crs,
        "options": {
            "raster": True,
            "kind": report.kind,
            "resampling": report.resampling,
            "cell_size_m": report.cell_size_m,
            "width": report.width,
            "height": report.height,
            "file": f"{report.layer}.tif",
        },
        "n_read": cells,
        "n_imported": cells - report.nodata_cells,
        "n_added": report.cells_added,
        "n_changed": report.cells_changed,
        "n_removed": report.cells_removed,
        "n_unchanged": report.cells_unchanged,
        "initial": initial,
        "report": report.to_dict(),
    }


def raster_path(city: Any, layer: str) -> Path:
    """The COG file of a raster layer's current version."""
    data = _manifest(city)
    if layer not in data["layers"]:
        read_raster(city, layer)  # raises the error naming the raster layers
    return raster_dir(city) / data["layers"][layer]["file"]


def read_raster(city: Any, layer: str, *, import_id: int | None = None) -> Raster:
    """A raster layer (or one of its earlier versions, by ``import_id``) as a :class:`Raster`."""
    data = _manifest(city)
    if layer not in data["layers"]:
        known = ", ".join(data["layers"]) or "none"
        raise LayerNotFoundError(
            f"the twin has no raster layer {layer!r} (raster layers: {known}); "
            "import a GeoTIFF as one with kind=dem|dsm|raster"
        )
    file = data["layers"][layer]["file"]
    if import_id is not None:
        match = [e for e in data["imports"] if e["layer"] == layer and e["import_id"] == import_id]
        if not match:
            raise UsageError(f"raster layer {layer} has no import {import_id}")
        file = match[0]["file"]
    return open_raster(raster_dir(city) / file, name=layer)


def open_raster(path: str | os.PathLike[str], *, name: str = "") -> Raster:
    """Read band 1 of a raster file as a :class:`Raster` (nodata as NaN)."""
    try:
        with rasterio.open(path) as src:
            values = src.read(1, masked=True).astype("float64").filled(np.nan)
            if src.crs is None:
                raise CRSError(f"{Path(path).name} declares no CRS")
            crs = pyproj.CRS.from_user_input(src.crs.to_wkt())
            return Raster(values, src.transform, crs, name or Path(path).stem)
    except rasterio.errors.RasterioIOError as exc:
        raise SourceError(f"{path} is not a raster GDAL can read: {exc}") from exc
