"""Serving a PostGIS twin: ``twin serve URL --workers 4`` beside tipg, and a re-import under load.

Set-up (not timed), on each side: a throwaway PostgreSQL cluster
(:class:`twin.store.pgtest.TempCluster`) and the benchmark's buildings twin
copied into it with :func:`twin.store.transfer.copy_twin` (schema ``bench``,
table ``bench.buildings``, primary key ``uid``, GiST index).

``serve-postgis-items``
    Ours: ``twin serve postgresql://…?schema=bench --workers 4``. Peer: tipg
    (FastAPI on PostGIS, ``uvicorn tipg.main:app --workers 4``) serving the same
    table. Both answer the same bbox page of about 100 buildings (the feature
    ids must be equal), loaded by ``wrk`` from another process. Ours also gives
    identify's latency at one connection (goal p50 < 2 ms).

``serve-postgis-reimport``
    Ours only: 4 workers under a ``wrk`` load of bbox pages while an update of
    the buildings is imported (:func:`update_delivery`: 1 % changed, 0.2 %
    removed, 0.2 % added, written once beside the city's buildings). The
    commit's moment is when the bench's own ``LISTEN citytwin`` hears it
    (:class:`CommitClock`: NOTIFY is delivered at the commit), not when
    ``import_layer`` returns. Each worker reports, in ``/health``'s
    ``snapshot``, when it heard the commit and when its new snapshot went into
    force; one thread per worker, on a kept-alive connection to it, asks for a
    building the update changes until that worker serves its new name. Figures
    (:func:`reload_figures`): failed requests (goal 0) and, per worker, the
    NOTIFY's delivery, the update's seconds and the swap's seconds after the
    commit (goal < 2 s), beside the probe's lags from the commit and from
    ``import_layer``'s return (the figure this bench used to print).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.api import CACHE, ensure_wrk, free_port, run_load, stop, wait_until_up

Inputs = dict[str, Path]
WORKERS = 4
CONNECTIONS = 8
TARGET_FEATURES = 100
SCHEMA = "bench"
BUILDING_FIELDS = {"层数": "floors", "建筑高度": "height_m", "建筑名称": "name", "用途": "use"}


# -- set-up ---------------------------------------------------------------------
@contextlib.contextmanager
def postgis_twin(inputs: Inputs) -> Iterator[str]:
    """A throwaway cluster holding the buildings twin in schema ``bench``: its URL."""
    from twin.store.pgtest import TempCluster
    from twin.store.transfer import copy_twin

    with TempCluster() as cluster:
        url = cluster.url(schema=SCHEMA)
        started = time.perf_counter()
        copy_twin(inputs["twin"], url)
        print(
            f"copied the twin into PostGIS in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        yield url


def choose_bbox(twin_gpkg: Path, target: int = TARGET_FEATURES) -> dict[str, Any]:
    """A CRS84 bbox holding about ``target`` buildings, the same ones for ours and tipg (cached).

    Ours intersects the box reprojected edge by edge into the twin CRS; tipg
    intersects the rectangle around its reprojected corners (a little larger).
    A box whose edges fall in streets holds the same buildings either way: the
    first such box near the median building, of 90 to 110 buildings, is taken.
    """
    cache = CACHE / f"pgserve-bbox2-{twin_gpkg.parent.name}-{target}.json"
    if cache.exists():
        return dict(json.loads(cache.read_text()))
    import numpy as np
    import pyogrio
    import pyproj
    import shapely

    frame = pyogrio.read_dataframe(twin_gpkg, layer="buildings", columns=[], use_arrow=True)
    geoms = np.asarray(frame.geometry.array)
    tree = shapely.STRtree(geoms)
    to_lonlat = pyproj.Transformer.from_crs(frame.crs, "OGC:CRS84", always_xy=True)
    to_twin = pyproj.Transformer.from_crs("OGC:CRS84", frame.crs, always_xy=True)

    def hits(bbox: list[float]) -> tuple[set[int], set[int]]:
        x0, y0, x1, y1 = bbox
        edge = max(x1 - x0, y1 - y0) / 64
        exact = shapely.transform(
            shapely.segmentize(shapely.box(x0, y0, x1, y1), edge),
            lambda xy: np.column_stack(to_twin.transform(xy[:, 0], xy[:, 1])),
        )
        corners = shapely.box(*to_twin.transform_bounds(x0, y0, x1, y1))
        return set(tree.query(exact, "intersects")), set(tree.query(corners, "intersects"))

    for step in range(400):
        which = (len(geoms) // 2 + step * 7919) % len(geoms)
        centre = np.array(to_lonlat.transform(*shapely.get_coordinates(geoms[which].centroid)[0]))
        for half in np.linspace(2e-4, 2e-3, 37):
            bbox = [*(centre - half).tolist(), *(centre + half).tolist()]
            ours, theirs = hits(bbox)
            if len(ours) > 110:
                break
            if len(ours) >= 90 and ours == theirs:
                point = shapely.point_on_surface(geoms[which])
                lonlat = to_lonlat.transform(point.x, point.y)
                answer = {"bbox": bbox, "features": len(ours), "point": list(lonlat)}
                cache.write_text(json.dumps(answer))
                return answer
    raise RuntimeError("no bbox of about 100 buildings holds the same ones for ours and tipg")


def _page_query(bbox: list[float]) -> str:
    # 90 to 110 buildings match (see choose_bbox): one page holds them all, on both sides
    return urlencode({"bbox": ",".join(f"{v:.9f}" for v in bbox), "limit": TARGET_FEATURES + 10})


def _ids_digest(page: dict[str, Any]) -> tuple[int, str]:
    ids = sorted(str(f["id"]).removeprefix("buildings.") for f in page["features"])
    return len(ids), hashlib.sha1("\n".join(ids).encode()).hexdigest()[:12]


def settle(pid: int, *, idle_percent: float = 15.0, timeout_s: float = 600) -> float:
    """Seconds until a server and its workers are idle (background preparation done).

    ``twin serve`` prepares each layer for vector tiles in a background thread
    once a worker is up; a load measured meanwhile measures that work too.
    Idle: under ``idle_percent`` of one core in all, two seconds running.
    """
    import psutil

    started = time.perf_counter()
    quiet = 0
    parent = psutil.Process(pid)
    while quiet < 2 and time.perf_counter() - started < timeout_s:
        family = [parent, *parent.children(recursive=True)]
        for member in family:
            member.cpu_percent(None)
        time.sleep(1.0)
        busy = 0.0
        for member in family:
            with contextlib.suppress(psutil.Error):
                busy += member.cpu_percent(None)
        quiet = quiet + 1 if busy < idle_percent else 0
    return time.perf_counter() - started


@contextlib.contextmanager
def serving(command: list[str], health: str, env: dict[str, str]) -> Iterator[tuple[float, int]]:
    """Run a server; yield its start-up seconds (to the first 200 of ``health``) and pid."""
    log = open(os.devnull, "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield wait_until_up(health, process, timeout_s=900), process.pid
    finally:
        stop(process)
        log.close()


def wait_for_workers(base: str, timeout_s: float = 900) -> float:
    """Seconds until every worker answers (distinct ``X-Twin-Worker`` on fresh connections).

    The first worker up answers ``/health`` while the others still load the
    twin; a load started then would measure a machine busy loading.
    """
    import httpx

    started = time.perf_counter()
    seen: set[str] = set()
    while len(seen) < WORKERS:
        if time.perf_counter() - started > timeout_s:
            raise RuntimeError(f"only {len(seen)} of {WORKERS} workers answered in {timeout_s} s")
        with contextlib.suppress(httpx.HTTPError):
            seen.add(httpx.get(base + "/health", timeout=10).headers["x-twin-worker"])
    return time.perf_counter() - started


def _ours_command(url: str, port: int, scratch: Path) -> list[str]:
    twin_cli = str(Path(sys.executable).with_name("twin"))
    command = [twin_cli, "-q", "serve", url, "--port", str(port), "--workers", str(WORKERS)]
    return [*command, "--audit-log", str(scratch / "audit.jsonl"), "--escalate-every", "0"]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TWIN_API_")}


# -- serve-postgis-items ---------------------------------------------------------
def items_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """``twin serve`` with 4 workers on the PostGIS twin: bbox pages, then identify."""
    import httpx

    chosen = choose_bbox(inputs["twin"])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with postgis_twin(inputs) as url:
        command = _ours_command(url, port, scratch)
        with serving(command, base + "/health", _clean_env()) as (first_s, pid):
            startup_s = first_s + wait_for_workers(base)
            settle_s = settle(pid)
            page_url = f"{base}/collections/buildings/items?{_page_query(chosen['bbox'])}"
            n, digest = _ids_digest(httpx.get(page_url, timeout=60).json())
            items = run_load(page_url, connections=CONNECTIONS)
            lon, lat = chosen["point"]
            ident = f"{base}/identify?lon={lon:.9f}&lat={lat:.9f}&geometry=false"
            if httpx.get(ident, timeout=60).status_code != 200:
                raise RuntimeError("identify failed")
            one = run_load(ident, connections=1)
    return {
        "startup_s": round(startup_s, 2),
        "settle_s": round(settle_s, 1),
        "features_per_page": n,
        "page_ids": digest,
        "items_rps": round(items["rps"], 1),
        "ms_per_page": round(1e3 / items["rps"], 3),
        "identify_p50_ms": round(one["p50_ms"], 3),
        "identify_p99_ms": round(one["p99_ms"], 3),
    }


def items_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """tipg (uvicorn, 4 workers) on the same PostGIS table: bbox pages."""
    import httpx

    chosen = choose_bbox(inputs["twin"])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with postgis_twin(inputs) as url:
        database = url.split("?")[0]
        env = {
            **_clean_env(),
            "DATABASE_URL": database,
            "TIPG_DB_SCHEMAS": json.dumps([SCHEMA]),
            "TIPG_DB_EXCLUDE_FUNCTION_SCHEMAS": json.dumps(["public"]),
            "TIPG_MAX_FEATURES_PER_QUERY": "10000",
        }
        command = [sys.executable, "-m", "uvicorn", "tipg.main:app", "--port", str(port)]
        command += ["--workers", str(WORKERS), "--log-level", "error"]
        collection = f"{base}/collections/{SCHEMA}.buildings"
        with serving(command, collection, env) as (startup_s, pid):
            settle_s = settle(pid)
            page_url = f"{collection}/items?{_page_query(chosen['bbox'])}&f=geojson"
            n, digest = _ids_digest(httpx.get(page_url, timeout=60).json())
            items = run_load(page_url, connections=CONNECTIONS)
    return {
        "startup_s": round(startup_s, 2),
        "settle_s": round(settle_s, 1),
        "features_per_page": n,
        "page_ids": digest,
        "items_rps": round(items["rps"], 1),
        "ms_per_page": round(1e3 / items["rps"], 3),
    }


# -- serve-postgis-reimport ------------------------------------------------------
#: Share of the buildings the update delivery changes (height and name), removes and adds.
CHANGED_EVERY, REMOVED_EVERY, ADDED_EVERY = 100, 500, 500


def update_delivery(buildings: Path) -> tuple[Path, dict[str, Any]]:
    """The buildings delivery updated (written once beside it) and a feature it changes.

    Every 100th building gets 3 m more height and a new name (1 %), every 500th is
    removed (0.2 %) and as many new ones are added (a copy of a neighbour moved 2 m,
    with a new id): a real change set, not a re-import of the same file. The probe
    is the first changed building: its uid and its name in the update.
    """
    target = buildings.with_name("buildings-update.gpkg")
    probe_file = buildings.with_name("buildings-update.json")
    lock = buildings.with_name(".buildings-update.lock")
    with open(lock, "w") as held:
        import fcntl

        fcntl.flock(held, fcntl.LOCK_EX)  # one writer; later runs reuse the file
        if not (target.exists() and probe_file.exists()):
            _write_update(buildings, target, probe_file)
    return target, dict(json.loads(probe_file.read_text()))


def _write_update(buildings: Path, target: Path, probe_file: Path) -> None:
    import numpy as np
    import pandas as pd
    import pyogrio

    started = time.perf_counter()
    frame = pyogrio.read_dataframe(buildings, layer="buildings", use_arrow=True)
    row = np.arange(len(frame))
    changed = row % CHANGED_EVERY == 7
    frame.loc[changed, "建筑高度"] = frame.loc[changed, "建筑高度"].fillna(0.0) + 3.0
    frame.loc[changed, "建筑名称"] = "更新" + frame.loc[changed, "建筑编码"].astype(str)
    added = frame[row % ADDED_EVERY == 11].copy()
    added["建筑编码"] = "NEW" + added["建筑编码"].astype(str)
    added["geometry"] = added.geometry.translate(2.0, 2.0)
    update = pd.concat([frame[row % REMOVED_EVERY != 3], added], ignore_index=True)
    tmp = target.with_suffix(".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    pyogrio.write_dataframe(update, tmp, layer="buildings", use_arrow=True)
    first = frame[changed].iloc[0]
    probe = {
        "uid": f"buildings.{first['建筑编码']}",
        "name": str(first["建筑名称"]),
        "changed": int(changed.sum()) - int((changed & (row % REMOVED_EVERY == 3)).sum()),
        "removed": int((row % REMOVED_EVERY == 3).sum()),
        "added": len(added),
    }
    tmp.rename(target)
    probe_file.write_text(json.dumps(probe, ensure_ascii=False))
    print(f"wrote the update delivery in {time.perf_counter() - started:.1f} s", file=sys.stderr)


class CommitClock:
    """When each commit of a PostGIS twin happened: the bench's own ``LISTEN citytwin``.

    PostgreSQL delivers a NOTIFY when its transaction commits; a process of its
    own (the bench's threads, busy importing and probing, would hear it late:
    they share one interpreter lock) notes ``time.time()`` as each notification
    naming the twin's schema arrives.
    """

    def __init__(self, url: str) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.heard: list[float] = []
        self._queue = context.Queue()
        self._ready = context.Event()
        self._stop = context.Event()
        self._process = context.Process(
            target=_note_commits, args=(url, self._ready, self._stop, self._queue), daemon=True
        )

    def start(self, timeout_s: float = 60) -> None:
        """Start listening; returns once ``LISTEN`` holds."""
        self._process.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError(f"the commit clock did not listen within {timeout_s} s")

    def stop(self) -> None:
        self._stop.set()
        self._process.join(timeout=10)

    def first_after(self, moment: float, timeout_s: float = 30) -> float:
        """The first commit heard after ``moment`` (waits for it a while)."""
        import queue

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [when for when in self.heard if when >= moment]
            if found:
                return found[0]
            with contextlib.suppress(queue.Empty):
                self.heard.append(self._queue.get(timeout=0.05))
        raise RuntimeError(f"no commit heard within {timeout_s} s")


def _note_commits(url: str, ready: Any, stopping: Any, heard: Any) -> None:
    """:class:`CommitClock`'s process: the time of every notification naming the twin."""
    from twin.store import PostgisStore
    from twin.store.pglisten import CHANNEL

    store = PostgisStore(url)
    with store.connect(autocommit=True) as con:
        con.execute(f"LISTEN {CHANNEL}".encode())
        ready.set()
        while not stopping.is_set():
            for note in con.notifies(timeout=0.2, stop_after=1):
                if note.payload == store.schema:
                    heard.put(time.time())


def _pin(base: str, worker: int | None, timeout_s: float, taken: set[int]) -> tuple[int, Any]:
    """A kept-alive client whose connection a worker answers: ``worker``, or any not ``taken``.

    Connections that land elsewhere stay open until one lands right, so the
    kernel hands the next one to another worker.
    """
    import httpx

    spare: list[httpx.Client] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            client = httpx.Client(timeout=10)
            answered = int(client.get(base + "/health").headers["x-twin-worker"])
            if answered == worker or (worker is None and answered not in taken):
                return answered, client
            spare.append(client)
    finally:
        for client in spare:
            client.close()
    raise RuntimeError(f"no connection to worker {worker or 'new'} within {timeout_s} s")


#: Pause between two probes of one worker: the probes' own load on the bench and the workers.
PROBE_PAUSE_S = 0.005
#: A probe connection left idle this long is opened again: uvicorn closes kept-alive
#: connections idle for 5 s, and a probe thread starved of the interpreter lock by the
#: import in the same process would otherwise send on a closed connection.
STALE_S = 4.0


class WorkerWatch(threading.Thread):
    """Asks one worker, over its own kept-alive connection and as fast as it answers, for
    the probe building; notes (``time.time()``) when it first answers from each version
    and first serves the probe's new name. Stopped, it reads the worker's ``/health``.

    One thread per worker: a slow answer of one worker delays no other's figures.
    """

    def __init__(self, base: str, probe: dict[str, Any], worker: int, client: Any) -> None:
        super().__init__(daemon=True)
        self.base, self.probe, self.worker, self.client = base, probe, worker, client
        self.first_seen: dict[str, float] = {}
        self.new_data_at: float | None = None
        #: Every answer: (sent, received, version, whether it held the new name).
        self.answers: list[tuple[float, float, str, bool]] = []
        self.failures: list[str] = []
        self.health: dict[str, Any] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        import httpx

        url = f"{self.base}/collections/buildings/items/{self.probe['uid']}"
        asked = time.monotonic()
        while not self.stopping.is_set():
            if time.monotonic() - asked > STALE_S:  # the server may have closed it: reconnect
                self.client.close()
                _, self.client = _pin(self.base, self.worker, 30, set())
            asked, sent = time.monotonic(), time.time()
            try:
                answer = self.client.get(url)
            except httpx.HTTPError as exc:
                self.failures.append(f"worker {self.worker}: {exc!r}")
                continue
            now = time.time()
            if answer.status_code != 200:
                self.failures.append(f"{answer.status_code} {answer.text[:200]}")
                continue
            if int(answer.headers["x-twin-worker"]) != self.worker:  # reconnected elsewhere
                self.client.close()
                _, self.client = _pin(self.base, self.worker, 30, set())
                continue
            version = answer.headers["x-twin-version"]
            self.first_seen.setdefault(version, now)
            new = answer.json()["properties"].get("name") == self.probe["name"]
            self.answers.append((sent, now, version, new))
            if self.new_data_at is None and new:
                self.new_data_at = now
            time.sleep(PROBE_PAUSE_S)
        with contextlib.suppress(httpx.HTTPError):  # no report: its figures stay None
            self.health = dict(self.client.get(self.base + "/health").json())
        self.client.close()


def watch_workers(base: str, probe: dict[str, Any]) -> list[WorkerWatch]:
    """One started :class:`WorkerWatch` per worker."""
    watches: list[WorkerWatch] = []
    while len(watches) < WORKERS:
        worker, client = _pin(base, None, 120, {w.worker for w in watches})
        watches.append(WorkerWatch(base, probe, worker, client))
    for watch in watches:
        watch.start()
    return watches


def reload_figures(
    commit_at: float, returned_at: float, workers: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """Each worker's reload measured from the commit, and the old figure from the import's return.

    ``workers`` maps a worker to its own report (``heard_at``, ``swapped_at``,
    ``update_s`` from ``/health``'s ``snapshot``) and the bench's ``new_data_at``
    (first answer with the probe's new data); all are ``time.time()`` values,
    None when missing. Per worker: ``notify_s`` (heard − commit), ``update_s``,
    ``swap_s`` (swapped − commit), ``probe_s`` (new data seen − commit) and
    ``probe_from_return_s`` (new data seen − ``import_layer`` returned: the lag
    the bench used to print). ``max_reload_lag_s`` is the largest ``swap_s``,
    None unless every worker swapped.

    Examples
    --------
    >>> figures = reload_figures(100.0, 103.0, {7: {"heard_at": 100.002,
    ...     "swapped_at": 101.5, "update_s": 1.498, "new_data_at": 101.51}})
    >>> figures["workers"][0]["swap_s"], figures["import_return_s"]
    (1.5, 3.0)
    """

    def since(moment: float | None, origin: float) -> float | None:
        return None if moment is None else round(moment - origin, 3)

    rows = [
        {
            "worker": worker,
            "notify_s": since(seen.get("heard_at"), commit_at),
            "update_s": seen.get("update_s"),
            "swap_s": since(seen.get("swapped_at"), commit_at),
            "probe_s": since(seen.get("new_data_at"), commit_at),
            "probe_from_return_s": since(seen.get("new_data_at"), returned_at),
        }
        for worker, seen in sorted(workers.items())
    ]

    def largest(key: str) -> float | None:
        values = [row[key] for row in rows]
        return max(values) if rows and None not in values else None

    return {
        "import_return_s": round(returned_at - commit_at, 3),
        "workers": rows,
        "max_reload_lag_s": largest("swap_s"),
        "max_probe_lag_s": largest("probe_s"),
        "max_probe_lag_from_return_s": largest("probe_from_return_s"),
    }


def probe_trace(
    answers: list[tuple[float, float, str, bool]], commit_at: float, version: str
) -> dict[str, Any]:
    """What one worker's probe saw from the commit on: when the new version first
    answered (``version_sent_s``: that request sent, ``version_s``: answered, both
    from the commit), answers of the new version still holding the old name
    (``stale``: a wrong answer, goal 0), and the longest an answer took (``slowest_s``).

    Examples
    --------
    >>> probe_trace([(9.0, 9.5, "1", False), (10.1, 10.2, "1", False),
    ...              (10.2, 11.0, "2", True)], 10.0, "2")
    {'version_sent_s': 0.2, 'version_s': 1.0, 'stale': 0, 'slowest_s': 0.8, 'answers': 2}
    """
    after = [a for a in answers if a[1] >= commit_at]
    fresh = [a for a in after if a[2] == version]
    return {
        "version_sent_s": round(fresh[0][0] - commit_at, 3) if fresh else None,
        "version_s": round(fresh[0][1] - commit_at, 3) if fresh else None,
        "stale": sum(not new for *_, new in fresh),
        "slowest_s": round(max((r - s for s, r, *_ in after), default=0.0), 3),
        "answers": len(after),
    }


def _wrk(url: str, seconds: int) -> subprocess.Popen[str]:
    wrk = ensure_wrk()
    if wrk is None:
        raise RuntimeError("wrk is not installed: run `bash scripts/setup.sh`")
    command = [wrk, "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_totals(wrk_output: str) -> dict[str, int]:
    """Requests wrk completed, its non-2xx answers and its socket errors (all kinds).

    Examples
    --------
    >>> wrk_totals("  9120 requests in 12.01s, 1.2GB read\\n  Socket errors: connect 0, "
    ...            "read 1, write 0, timeout 2\\nRequests/sec: 759.3")
    {'requests': 9120, 'non_2xx': 0, 'socket_errors': 3}
    """
    import re

    totals = {"requests": 0, "non_2xx": 0, "socket_errors": 0}
    if match := re.search(r"(\d+) requests in", wrk_output):
        totals["requests"] = int(match.group(1))
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", wrk_output):
        totals["non_2xx"] = int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", wrk_output
    ):
        totals["socket_errors"] = sum(int(g) for g in match.groups())
    return totals


def reimport_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """Re-import the buildings while 4 workers answer a wrk load; how soon each one reloads.

    The commit's moment is when the bench's own ``LISTEN`` hears it
    (:class:`CommitClock`); each worker reports when it heard the commit and
    swapped its snapshot (``/health``'s ``snapshot``), and a :class:`WorkerWatch`
    per worker checks that it then serves the probe building's new data.
    """
    import re

    import twin

    chosen = choose_bbox(inputs["twin"])
    update, probe = update_delivery(inputs["buildings"])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with postgis_twin(inputs) as url:
        city = twin.Twin.open(url)
        with serving(_ours_command(url, port, scratch), base + "/health", _clean_env()) as (
            _,
            pid,
        ):
            wait_for_workers(base)
            settle(pid)
            before = city.store.version()[-1]
            page_url = f"{base}/collections/buildings/items?{_page_query(chosen['bbox'])}"
            load = _wrk(page_url, 1800)  # stopped (SIGINT: wrk prints its figures) below
            time.sleep(1)
            watches = watch_workers(base, probe)  # pinned under load: busy workers share them
            clock = CommitClock(url)
            clock.start()
            time.sleep(1)
            started_at, started = time.time(), time.monotonic()
            report = city.import_layer(
                update,
                layer="buildings",
                kind="building",
                id="建筑编码",
                fields=BUILDING_FIELDS,
            )
            returned_at, import_s = time.time(), time.monotonic() - started
            commit_at = clock.first_after(started_at)
            after = city.store.version()[-1]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if all(w.new_data_at is not None for w in watches):
                    break
                time.sleep(0.05)
            time.sleep(3)  # the load goes on a little after the last worker swapped
            load.send_signal(signal.SIGINT)
            output, _ = load.communicate(timeout=60)
            for watch in watches:
                watch.stopping.set()
            for watch in watches:
                watch.join()
            clock.stop()
    reports = {
        w.worker: {**(w.health.get("snapshot") or {}), "new_data_at": w.new_data_at}
        for w in watches
    }
    figures = reload_figures(commit_at, returned_at, reports)
    traces = {w.worker: probe_trace(w.answers, commit_at, str(after)) for w in watches}
    for row in figures["workers"]:
        row["update_cpu_s"] = reports[row["worker"]].get("update_cpu_s")
        row["paused_s"] = reports[row["worker"]].get("paused_s")
        row["updates"] = reports[row["worker"]].get("updates")
        row["probe"] = traces[row["worker"]]
    if os.environ.get("BENCH_PROBE_LOG"):  # every answer, for a closer look
        log = {
            w.worker: [[s - commit_at, r - commit_at, v, n] for s, r, v, n in w.answers]
            for w in watches
        }
        Path(os.environ["BENCH_PROBE_LOG"]).write_text(json.dumps(log))
    if (
        figures["max_reload_lag_s"] is not None
    ):  # the whole wait: the import's start to the last swap
        figures["last_swap_from_start_s"] = round(
            commit_at + figures["max_reload_lag_s"] - started_at, 2
        )
    failures = [f for w in watches for f in w.failures]
    totals = wrk_totals(output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    return {
        "workers_seen": len(watches),
        "workers_reloaded": sum(w.new_data_at is not None for w in watches),
        "workers_on_new_version": sorted(
            w.worker
            for w in watches
            if (w.health.get("snapshot") or {}).get("version") == str(after)
        ),
        "versions": f"{before}->{after}",
        "import_s": round(import_s, 2),
        "change_set": f"+{report.added} ~{report.changed} -{report.removed}",
        "failed_requests": totals["non_2xx"] + totals["socket_errors"] + len(failures),
        "failures": failures[:3]
        + [line.strip() for line in output.splitlines() if "error" in line or "Non-2xx" in line],
        **figures,
        "wrk": totals,
        "load_rps": float(rps.group(1)) if rps else None,
    }
