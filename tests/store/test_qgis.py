"""QGIS opens a PostGIS twin as it is, and finds what it finds in the GeoPackage twin.

Debian's QGIS 3.22 (``python3-qgis``, for ``/usr/bin/python3``, installed by
``scripts/setup.sh``) runs headless (``QT_QPA_PLATFORM=offscreen``) in a
subprocess: each layer of the sample twin is opened with the ``postgres``
provider (the twin copied into the session's throwaway cluster) and with the
``ogr`` provider (the GeoPackage). Both must be valid, with the feature count,
EPSG code and extent the library reports, and the same feature for a uid.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import shapely

import twin
from twin.store.pgtest import TempCluster
from twin.store.transfer import copy_twin

# QGIS starts in a few seconds, and the twin is copied into PostGIS first.
pytestmark = pytest.mark.slow

SYSTEM_PYTHON = "/usr/bin/python3"

# Runs under /usr/bin/python3 with QGIS: argv[1] is the JSON of what to open.
QGIS_SCRIPT = r"""
import json, sys
from qgis.core import QgsApplication, QgsDataSourceUri, QgsFeatureRequest, QgsVectorLayer

job = json.loads(sys.argv[1])
app = QgsApplication([], False)
app.initQgis()
answers = {}
for provider in ("postgres", "ogr"):
    for name, uid in job["layers"].items():
        if provider == "postgres":
            pg = job["postgres"]
            uri = QgsDataSourceUri()
            uri.setConnection(pg["host"], str(pg["port"]), pg["database"], pg["user"], "")
            uri.setDataSource(pg["schema"], name, "geom", "", "uid")
            layer = QgsVectorLayer(uri.uri(False), name, "postgres")
        else:
            layer = QgsVectorLayer(f"{job['gpkg']}|layername={name}", name, "ogr")
        answer = {"valid": layer.isValid()}
        if layer.isValid():
            extent = layer.extent()
            request = QgsFeatureRequest().setFilterExpression(f"\"uid\" = '{uid}'")
            found = [f for f in layer.getFeatures(request)]
            answer.update(
                count=layer.featureCount(),
                epsg=layer.crs().authid(),
                extent=[extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()],
                found=len(found),
                wkt=found[0].geometry().asWkt(6) if found else None,
            )
        answers[f"{provider}:{name}"] = answer
print(json.dumps(answers), flush=True)
import os
os._exit(0)  # QGIS 3.22 may crash in its exit handlers once the answer is out
"""


def _qgis(job: dict[str, object], folder: Path) -> dict[str, dict[str, object]]:
    runtime = folder / "xdg-runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(runtime)}
    done = subprocess.run(
        [SYSTEM_PYTHON, "-c", QGIS_SCRIPT, json.dumps(job)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer: dict[str, dict[str, object]] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_qgis_opens_every_layer_of_the_postgis_twin_as_of_the_geopackage(
    pg_cluster: TempCluster, sample_twin: twin.Twin, tmp_path: Path
) -> None:
    url = pg_cluster.url(schema="qgis_check")
    copy_twin(sample_twin.path, url, overwrite=True)
    reference = {name: sample_twin.layer(name) for name in sample_twin.layers}
    job = {
        "layers": {name: str(frame.index[len(frame) // 2]) for name, frame in reference.items()},
        "postgres": {
            "host": "127.0.0.1",
            "port": pg_cluster.port,
            "database": pg_cluster.database,
            "user": "postgres",
            "schema": "qgis_check",
        },
        "gpkg": str(Path(sample_twin.path)),
    }
    answers = _qgis(job, tmp_path)
    epsg = sample_twin.crs.to_epsg()
    assert epsg is not None
    for name, frame in reference.items():
        uid = job["layers"][name]
        expected_wkt = frame.geometry.loc[uid]
        for provider in ("postgres", "ogr"):
            got = answers[f"{provider}:{name}"]
            where = f"{provider}:{name}"
            assert got["valid"] is True, where
            assert got["count"] == len(frame), where
            assert got["epsg"] == f"EPSG:{epsg}", where
            assert got["extent"] == pytest.approx(list(frame.total_bounds), abs=1e-3), where
            assert got["found"] == 1, where
            seen = shapely.from_wkt(got["wkt"])
            assert shapely.equals_exact(seen, expected_wkt, tolerance=1e-5), where
