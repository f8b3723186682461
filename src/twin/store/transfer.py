"""``twin copy``: move a twin between a GeoPackage and PostGIS, history and relations included.

Every layer with its history table, and every bookkeeping table (layers,
imports, change sets, relation sets and rows, builds) is copied as it is, in
one write transaction on the destination: the copy is the same twin, with the
same uids, versions, valid-from / valid-to stamps, import ids and relations.

Examples
--------
>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "copy.gpkg"
>>> report = copy_twin(sample_twin_path, target)
>>> report.layers["buildings"] == len(city.layer("buildings")), report.relations > 0
(True, True)
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from twin.errors import TwinExistsError
from twin.store import GpkgStore, PostgisStore, open_store
from twin.store.files import history_table

__all__ = ["BOOKKEEPING", "CopyReport", "copy_twin"]

#: The bookkeeping tables a copy carries over, in the order they are written.
BOOKKEEPING = ("twin_layers", "twin_imports", "twin_changes")
_RELATIONS = ("twin_relation_sets", "twin_relations", "twin_builds")


@dataclass
class CopyReport:
    """What a copy moved: features per layer, history rows per layer, relation rows."""

    source: str
    target: str
    layers: dict[str, int] = field(default_factory=dict)
    history: dict[str, int] = field(default_factory=dict)
    imports: int = 0
    relations: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def copy_twin(
    source: str | os.PathLike[str], target: str | os.PathLike[str], *, overwrite: bool = False
) -> CopyReport:
    """Copy the twin ``source`` to ``target`` (each a GeoPackage path or a PostGIS URL).

    Parameters
    ----------
    source, target : str or path-like
        ``city.twin.gpkg`` or ``postgresql://user@host:5432/db?schema=chengdu``.
    overwrite : bool, default False
        Replace a twin already at ``target``.

    Returns
    -------
    CopyReport
    """
    src, dst = open_store(source), open_store(target)
    src.require()
    if _exists(dst) and not overwrite:
        raise TwinExistsError(f"{_name(dst)} exists: pass overwrite=True to replace it")
    report = CopyReport(source=_name(src), target=_name(dst))
    dst.create(src.meta())
    tables = src.tables()
    with dst.session() as session:
        for name in src.layer_rows()["name"]:
            frame = src.read_table(name)
            session.write_table(name, frame)
            report.layers[name] = len(frame)
            if history_table(name) in tables:
                old = src.read_table(history_table(name))
                session.append_history(name, old)
                report.history[name] = len(old)
        for table in BOOKKEEPING:
            rows = src.table_rows(table)
            session.replace_rows(table, rows)
            report.imports = len(rows) if table == "twin_imports" else report.imports
        if "twin_relation_sets" in tables:
            session.prepare_relations()
            for table in _RELATIONS:
                rows = src.table_rows(table)
                session.replace_rows(table, rows)
                report.relations = len(rows) if table == "twin_relations" else report.relations
    return report


def _exists(store: GpkgStore | PostgisStore) -> bool:
    return store.exists() if isinstance(store, PostgisStore) else store.path.exists()


def _name(store: GpkgStore | PostgisStore) -> str:
    return store.location if isinstance(store, PostgisStore) else str(store.path)
