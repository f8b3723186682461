"""Reports of the import pipeline, shared by the pipeline and the store.

:class:`ImportReport` (with its :class:`Rejection` rows) is what an import
returns and what the store records in ``twin_imports``; it lives here so that
neither the store depends on the import pipeline nor the other way round.

Examples
--------
>>> report = ImportReport(layer="pois", kind="poi", source="pois.csv", read=3, imported=2)
>>> print(report.summary)
pois: read 3, imported 2, repaired 0, rejected 0 (added 0, changed 0, removed 0)
>>> report.summary.imported, report.summary.to_dict()["read"]
(2, 3)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from twin.results import Summary

__all__ = ["MAX_STORED_REJECTIONS", "ImportReport", "ImportSummary", "Rejection"]

#: At most this many rejections are stored with an import's provenance.
MAX_STORED_REJECTIONS = 10_000


@dataclass
class Rejection:
    """One source feature that was not imported, and why.

    Examples
    --------
    >>> Rejection(row=3, source_id="B7", reason="empty geometry").reason
    'empty geometry'
    """

    row: int  # 1-based position in the source
    source_id: str | None
    reason: str


@dataclass(eq=False, repr=False)
class ImportSummary(Summary):
    """An import in the counts an analyst checks first (also a dict).

    ``str()`` is the one line the CLI prints. Calling it returns that line too:
    ``report.summary()``, the 0.1 form, still works (a deprecated alias).

    Examples
    --------
    >>> s = ImportSummary("parcels", read=812, imported=810, repaired=3, rejected=2)
    >>> str(s)
    'parcels: read 812, imported 810, repaired 3, rejected 2 (added 0, changed 0, removed 0)'
    >>> s() == str(s), s["rejected"], s.to_dict()["added"]
    (True, 2, 0)
    """

    layer: str
    read: int = 0
    imported: int = 0
    repaired: int = 0
    rejected: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0

    def __str__(self) -> str:
        return (
            f"{self.layer}: read {self.read}, imported {self.imported}, "
            f"repaired {self.repaired}, rejected {self.rejected} "
            f"(added {self.added}, changed {self.changed}, removed {self.removed})"
        )

    def __call__(self) -> str:
        return str(self)


@dataclass
class ImportReport:
    """What an import read, repaired, rejected and changed.

    Examples
    --------
    >>> report = city.imports("buildings")["report"].iloc[-1]
    >>> report["imported"] == len(city.layer("buildings"))
    True
    """

    layer: str
    kind: str
    source: str
    source_format: str = ""
    encoding: str | None = None
    checksum: str = ""
    src_crs: str | None = None
    crs: str | None = None
    classification: str = ""
    read: int = 0
    imported: int = 0
    repaired: int = 0
    rejected: int = 0
    duplicates: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    import_id: int | None = None
    time: str | None = None
    seconds: float = 0.0
    rejections: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self, *, max_rejections: int | None = None) -> dict[str, Any]:
        """The report as a JSON-ready dict (``rejections`` capped if asked)."""
        data = asdict(self)
        if max_rejections is not None and len(self.rejections) > max_rejections:
            data["rejections"] = data["rejections"][:max_rejections]
            data["rejections_truncated"] = len(self.rejections) - max_rejections
        return data

    @property
    def summary(self) -> ImportSummary:
        """The counts an analyst checks first; ``print(report.summary)`` gives one line."""
        return ImportSummary(
            self.layer,
            read=self.read,
            imported=self.imported,
            repaired=self.repaired,
            rejected=self.rejected,
            added=self.added,
            changed=self.changed,
            removed=self.removed,
        )
