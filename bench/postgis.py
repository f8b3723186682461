"""PostGIS scenarios: an import against ``ogr2ogr -f PostgreSQL``, a build against the GeoPackage's.

``import-postgis``: each side starts its own throwaway cluster
(:class:`twin.store.pgtest.TempCluster`, set-up, not timed) and times only the
load: ours is :meth:`twin.Twin.import_layer` into a ``postgresql://…?schema=``
twin (binary COPY, one transaction, primary key and GiST index built); the
peer is Debian's ``ogr2ogr -f PostgreSQL`` with ``PG_USE_COPY`` and its
default spatial index.

``build-postgis``: ``twin build --force`` on the city twin in PostGIS (copied
in with :func:`twin.store.transfer.copy_twin`, not timed) against the same
build on the GeoPackage twin; both must store the same relation rows."""

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


def build_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """``twin build --force`` on the city twin copied into PostGIS (the copy is set-up)."""
    import twin
    from twin.store.pgtest import TempCluster
    from twin.store.transfer import copy_twin

    with TempCluster() as cluster:
        url = cluster.url(schema="bench")
        copy_twin(inputs["city_twin"], url)
        return timed_build(twin.Twin.open(url))


def build_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """The same build on the GeoPackage twin (copied to scratch first, not timed)."""
    import shutil

    import twin

    shutil.copy(inputs["city_twin"], scratch / "city.gpkg")
    return timed_build(twin.Twin.open(scratch / "city.gpkg"))


def timed_build(city: Any) -> dict[str, Any]:
    """``city.build(force=True)``: its seconds and :func:`build_facts`."""
    started = time.perf_counter()
    report = city.build(force=True)
    seconds = time.perf_counter() - started
    return {"build_s": round(seconds, 2), **build_facts(city, report)}


def build_facts(city: Any, report: Any) -> dict[str, Any]:
    """What both builds must agree on, read back from the store through the library:
    rows and unrelated rows of every stored set, and a digest of the stored
    building -> parcel and sensor -> building rows (uids, shares, distances)."""
    import pandas as pd

    sets = sorted(city.store.relation_sets().values(), key=lambda s: s.key)
    digests = {}
    for relation in ("building_parcel", "sensor_building"):
        rows = city.relations(relation)
        rows = rows.assign(share=rows["share"].round(6), distance_m=rows["distance_m"].round(3))
        digests[relation] = int(pd.util.hash_pandas_object(rows, index=False).sum() % (1 << 61))
    return {
        "relations": len(report.recomputed),
        "rows": {s.key: s.n_rows for s in sets},
        "unrelated": {s.key: s.n_unrelated for s in sets},
        "digests": digests,
    }
