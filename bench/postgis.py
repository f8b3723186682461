"""PostGIS scenarios: importing buildings into a PostGIS twin against ``ogr2ogr -f PostgreSQL``.

Each side starts its own throwaway cluster (:class:`twin.store.pgtest.TempCluster`,
set-up, not timed) and times only the load: ours is
:meth:`twin.Twin.import_layer` into a ``postgresql://…?schema=`` twin (COPY,
one transaction, primary key and GiST index built); the peer is Debian's
``ogr2ogr -f PostgreSQL`` with ``PG_USE_COPY`` and its default spatial index.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

Inputs = dict[str, Path]
BUILDING_FIELDS = {"层数": "floors", "建筑高度": "height_m", "建筑名称": "name", "用途": "use"}


def import_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    import twin
    from twin.store.pgtest import TempCluster

    with TempCluster() as cluster:
        city = twin.Twin.create(cluster.url(schema="bench"), crs="EPSG:4544")
        started = time.perf_counter()
        report = city.import_layer(
            inputs["buildings"],
            layer="buildings",
            kind="building",
            id="建筑编码",
            fields=BUILDING_FIELDS,
        )
        seconds = time.perf_counter() - started
        count = city.store.rows("SELECT count(*) FROM buildings")[0][0]
    return {"features": int(count), "imported": report.imported, "import_s": seconds}


def import_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    import psycopg

    from twin.store.pgtest import TempCluster

    with TempCluster() as cluster:
        target = f"PG:host=127.0.0.1 port={cluster.port} user=postgres dbname={cluster.database}"
        started = time.perf_counter()
        command = ["ogr2ogr", "-f", "PostgreSQL", target, str(inputs["buildings"])]
        command += ["-nln", "buildings", "-lco", "GEOMETRY_NAME=geom", "-t_srs", "EPSG:4544"]
        subprocess.run(
            [*command, "--config", "PG_USE_COPY", "YES"],
            check=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - started
        with psycopg.connect(cluster.url()) as con:
            count = con.execute("SELECT count(*) FROM buildings").fetchone()[0]  # type: ignore[index]
    return {"features": int(count), "import_s": seconds}
