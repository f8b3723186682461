"""A long-running ingester follows re-imports of the twin's sensor layers, without a restart.

An import replaces the twin file atomically (a new file renamed over the old
one), so the file's identity (device, inode, modification time, size: see
:func:`twin.query.index.file_identity`) changes with every import, and one
``stat`` tells. :class:`SensorWatch` checks it every ``every_s`` seconds, and
sooner (at most every ``miss_gap_s``) when a batch names a sensor the loop does
not know, so the readings of a sensor added by the re-import are accepted from
the first one on. On a change the operations loop is reopened over the same
live store: new sensors are accepted, the readings of removed ones become
``unknown sensor`` dead letters, changed thresholds apply to the next batch.

Examples
--------
>>> watch = SensorWatch("chengdu.twin.gpkg", every_s=5)  # doctest: +SKIP
>>> loop = watch(loop, batch)  # the same loop, or one reopened on the new file  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from twin.query.index import FileIdentity, file_identity
from twin.sensing.loop import OperationsLoop

__all__ = ["SensorWatch"]

log = logging.getLogger(__name__)


@dataclass
class SensorWatch:
    """Reopens an :class:`~twin.sensing.loop.OperationsLoop` when the twin file is re-imported.

    Parameters
    ----------
    twin_path : path-like
        The twin the loop was opened on.
    rules_file : path-like, optional
        The YAML rules the loop was opened with (read again on a reload).
    every_s : float
        Seconds between two routine checks (0: only on an unknown sensor).
    miss_gap_s : float
        Fewest seconds between two checks caused by unknown sensors.
    """

    twin_path: str | os.PathLike[str]
    rules_file: str | os.PathLike[str] | None = None
    every_s: float = 5.0
    miss_gap_s: float = 1.0
    reloads: int = 0
    _identity: FileIdentity | None = field(default=None, repr=False)
    _checked: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.twin_path = Path(self.twin_path)
        self._identity = file_identity(self.twin_path)
        self._checked = time.monotonic()

    def due(self, loop: OperationsLoop, batch: pd.DataFrame | None) -> bool:
        """Whether to look at the file now: time for a routine check, or an unknown sensor."""
        since = time.monotonic() - self._checked
        if self.every_s > 0 and since >= self.every_s:
            return True
        if since < self.miss_gap_s or batch is None or "sensor" not in batch.columns:
            return False
        return bool(loop.registry.resolve(batch["sensor"].astype(str)).isna().any())

    def __call__(self, loop: OperationsLoop, batch: pd.DataFrame | None = None) -> OperationsLoop:
        """``loop``, or a new loop over the same live store when the twin file has changed."""
        if not self.due(loop, batch):
            return loop
        self._checked = time.monotonic()
        try:
            identity = file_identity(self.twin_path)
        except OSError:  # between an unlink and a rename on odd file systems: next time
            return loop
        if identity == self._identity:
            return loop
        fresh = OperationsLoop.open(
            self.twin_path,
            rules_file=self.rules_file,
            with_impact=loop.with_impact,
            store=loop.store,
        )
        self._identity = identity  # read before the open: a newer import is seen next time
        self.reloads += 1
        log.info(
            "twin %s re-imported: %d sensor(s) now (were %d)",
            self.twin_path,
            len(fresh.registry),
            len(loop.registry),
        )
        return fresh
