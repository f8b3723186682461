"""Import specifications: which source feeds which layer, with which fields.

A mapping file describes many layers at once (paths relative to the file)::

    layers:
      buildings:
        source: buildings.geojson
        kind: building
        id: 建筑编码
        fields: {层数: floors, 建筑高度: height_m}
      sensors:
        source: sensors.csv
        kind: sensor
        src_crs: EPSG:4326
        coords: gcj02
        x: 经度
        y: 纬度

Every key but ``source`` and ``kind`` is optional; the keys are the options
of :func:`twin.imports.import_layer` (``set`` gives constant fields).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from twin.errors import UsageError

_LAYER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_RESERVED_PREFIXES = ("twin_", "gpkg_", "rtree_", "sqlite_")


@dataclass
class ImportSpec:
    """Everything an import needs besides the twin: one source, one layer.

    Examples
    --------
    >>> spec = ImportSpec(source="buildings.geojson", layer="buildings", kind="building")
    >>> spec.layer, spec.kind
    ('buildings', 'building')
    """

    source: Path
    layer: str
    kind: str
    id: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    set: dict[str, Any] = field(default_factory=dict)
    source_layer: str | None = None
    encoding: str | None = None
    where: str | None = None
    src_crs: str | None = None
    coords: str | None = None
    x: str | None = None
    y: str | None = None
    wkt: str | None = None
    classification: str | None = None
    strict: bool = False
    allow_removals: bool = False
    local_coords: bool = False
    replace: bool = False
    max_removed_share: float = 0.2

    def options(self) -> dict[str, Any]:
        """The options as a JSON-ready dict (recorded in provenance)."""
        skip = {"source", "layer", "kind", "fields", "max_removed_share"}
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in skip and getattr(self, f.name) not in (None, {}, False)
        }


def check_layer_name(name: str) -> str:
    """Return ``name`` if it can name a layer table, else raise :class:`UsageError`."""
    if not _LAYER_NAME.match(name) or "__" in name or name.startswith(_RESERVED_PREFIXES):
        raise UsageError(
            f"layer name {name!r} is not allowed: use lower-case letters, digits and single "
            "underscores, starting with a letter (e.g. buildings, water_pipes), "
            "and not starting with twin_, gpkg_ or rtree_"
        )
    return name


def parse_pairs(pairs: list[str] | tuple[str, ...], option: str) -> dict[str, str]:
    """Parse ``["层数=floors", ...]`` into ``{"层数": "floors"}``."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"{option} {pair!r} must look like SOURCE_FIELD=twin_field")
        result[key.strip()] = value.strip()
    return result


def read_mapping(path: str | os.PathLike[str]) -> dict[str, ImportSpec]:
    """Read a mapping file into one :class:`ImportSpec` per layer, in file order.

    Examples
    --------
    >>> specs = read_mapping("data/samples/mapping.yaml")
    >>> specs["water_pipes"].kind
    'pipe'
    """
    src = Path(path)
    try:
        doc = yaml.safe_load(src.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"mapping file {src} does not exist") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"mapping file {src} is not valid YAML{where}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), dict):
        raise UsageError(f"mapping file {src} must have a top-level 'layers:' dictionary")
    return {name: _spec_from_entry(src, str(name), entry) for name, entry in doc["layers"].items()}


def _spec_from_entry(mapping_file: Path, layer: str, entry: Any) -> ImportSpec:
    if not isinstance(entry, dict) or "source" not in entry or "kind" not in entry:
        raise UsageError(f"{mapping_file}: layer {layer!r} needs at least 'source' and 'kind'")
    known = {f.name for f in fields(ImportSpec)} - {"layer"}
    unknown = set(entry) - known
    if unknown:
        raise UsageError(
            f"{mapping_file}: layer {layer!r} has unknown keys {sorted(unknown)}; "
            f"allowed: {', '.join(sorted(known))}"
        )
    values = {k: v for k, v in entry.items() if v is not None}
    values["source"] = (mapping_file.parent / str(entry["source"])).resolve()
    values["fields"] = {str(k): str(v) for k, v in (entry.get("fields") or {}).items()}
    values["set"] = dict(entry.get("set") or {})
    return ImportSpec(layer=check_layer_name(layer), **values)
