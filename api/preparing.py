"""Background preparation of a snapshot on long-lived threads, one per kind of work.

A new snapshot's caches (GeoJSON texts, tile sources) are prepared off the
request path. They used to run on a new thread per snapshot, and pyproj
makes its PROJ transformation anew in every thread that first uses a
``Transformer`` (about 0.3 s each, seconds when four workers reload at once
on a busy machine). A :class:`Worker` keeps one daemon thread for its kind of
work, so that cost is paid once per process, not once per reload.

The work shares the interpreter lock with the event loop, and GEOS holds it
while writing a batch of GeoJSON: a page asked for meanwhile waited behind
it (a million buildings' texts made the first 15 s after start-up about ten
times slower per page). So the work waits for a :class:`Lull` between batches,
a pause in the requests (:class:`NoteRequests` notes each one): under a
steady load the pages keep their own speed (written per request, as before
the texts were ready), and the texts are made in the pauses.

Examples
--------
>>> worker = Worker("twin-example")
>>> job = worker.submit(lambda: None)
>>> job.join(10)
>>> job.is_alive()
False
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator

from starlette.types import ASGIApp, Receive, Scope, Send

from twin.query.urgency import quick_turns

__all__ = ["LULL", "Job", "Lull", "NoteRequests", "PauseRequests", "Worker"]

log = logging.getLogger("twin_api")


class Job:
    """One piece of work handed to a :class:`Worker`; ``join`` waits for it, as for a thread."""

    def __init__(self, work: Callable[[], object]) -> None:
        self.work = work
        self._done = threading.Event()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the work has run (or ``timeout`` seconds)."""
        self._done.wait(timeout)

    def is_alive(self) -> bool:
        """Whether the work is still waiting or running."""
        return not self._done.is_set()

    def run(self) -> None:
        try:
            with _working():  # a request waiting for the interpreter lock gets it soon
                self.work()
        except Exception:  # the requests that need what it prepares report the failure
            log.exception("background preparation failed")
        finally:
            self._done.set()


# Per thread: the quick-turns block of the job it runs (see _working), None while it waits.
_TURNS = threading.local()


@contextlib.contextmanager
def _working() -> Iterator[None]:
    """The block with quick turns (:func:`twin.query.urgency.quick_turns`), handed back
    while the thread waits for a lull (:func:`_waiting`)."""
    _TURNS.block = contextlib.ExitStack()
    _TURNS.block.enter_context(quick_turns())
    try:
        yield
    finally:
        block, _TURNS.block = _TURNS.block, None
        if block is not None:
            block.close()


@contextlib.contextmanager
def _waiting() -> Iterator[None]:
    """The block with this thread's quick turns handed back (if it holds any).

    The switch interval is process-wide: kept short while the thread sleeps,
    each of its wake-ups to look for a pause took the interpreter lock from a
    request under way after 0.5 ms instead of waiting for the event loop to
    let it go (1M twin, identify at 1 connection with preparation running: p50
    0.88 ms with quick turns kept while waiting, 0.78-0.80 without them).
    """
    block = getattr(_TURNS, "block", None)
    if block is None:
        yield
        return
    _TURNS.block = None
    block.close()
    try:
        yield
    finally:
        _TURNS.block = contextlib.ExitStack()
        _TURNS.block.enter_context(quick_turns())


class Worker:
    """A daemon thread started on first use that runs submitted work in order.

    Parameters
    ----------
    name : str
        The thread's name (seen in ``py-spy dump`` and logs).
    setup : callable, optional
        Run once in the thread before any work (e.g. lowering its priority).
    """

    def __init__(self, name: str, setup: Callable[[], object] | None = None) -> None:
        self.name = name
        self.setup = setup
        self._queue: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, work: Callable[[], object]) -> Job:
        """Queue ``work``; the returned :class:`Job` says when it has run."""
        job = Job(work)
        self._queue.put(job)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        return job

    def _run(self) -> None:
        if self.setup is not None:
            self.setup()
        while True:
            self._queue.get().run()


class Lull:
    """When the service last took a request, so background work can wait for a pause.

    Parameters
    ----------
    quiet_s : float, default 0.02
        A pause is this long without a new request.
    patience_s : float, default 1.0
        Under a load with no such pause, :meth:`wait` returns after this long
        anyway, so the work still gets done (slowly: a batch a second at first).
    longest_s : float, default 30.0
        A thread's waits that run out of patience one after the other each last
        twice as long as the one before, up to this long (or the patience
        asked, if longer), until one ends in a pause: a batch after 1, 2, 4, 8 …
        seconds of a load without pauses. Each batch holds the interpreter lock
        for a few milliseconds; a batch a second made a steady stream of
        identify requests about 10 % slower (p50) and its p99 several times longer.

    Examples
    --------
    >>> lull = Lull(quiet_s=0.01)
    >>> lull.wait()  # no request yet: at once
    0.0
    >>> lull.request()
    >>> lull.wait() >= 0.005
    True
    >>> busy = Lull(quiet_s=0.01, patience_s=0.05)
    >>> busy.last_request = time.monotonic() + 60  # requests without a pause
    >>> waits = [busy.wait() for _ in range(3)]  # 0.05, 0.1, then 0.2 s
    >>> waits[0] >= 0.05 and waits[1] >= 0.1 and waits[2] >= 0.2
    True
    """

    def __init__(
        self, quiet_s: float = 0.02, patience_s: float = 1.0, longest_s: float = 30.0
    ) -> None:
        self.quiet_s = quiet_s
        self.patience_s = patience_s
        self.longest_s = longest_s
        self.last_request = float("-inf")  # time.monotonic() of the last request taken
        self._holds = 0  # blocks of held() under way: no lull meanwhile
        self._holding = threading.Lock()
        self._spent = threading.local()  # per thread: waits in a row that ran out of patience

    def request(self) -> None:
        """Note a request taken now (the event loop calls this; a float store is atomic)."""
        self.last_request = time.monotonic()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No lull inside the block, however long without requests: while requests are
        paused for work more urgent than the background's (:class:`PauseRequests`)."""
        with self._holding:
            self._holds += 1
        try:
            yield
        finally:
            with self._holding:
                self._holds -= 1

    def quiet(self, now: float) -> bool:
        """Whether it is a pause at ``now`` (``time.monotonic()``)."""
        return not self._holds and now - self.last_request >= self.quiet_s

    def wait(
        self, patience_s: float | None = None, *, until: Callable[[], bool] | None = None
    ) -> float:
        """Return once no request has come for ``quiet_s``, or the patience has run
        out, or ``until()`` is true (asked every ``quiet_s`` at most); the seconds
        waited (0.0 when it was quiet). The patience is ``patience_s`` (the lull's
        own when None), doubled for each of this thread's waits just before that
        ran out of it (see ``longest_s``)."""
        spent = getattr(self._spent, "count", 0)
        given = self.patience_s if patience_s is None else patience_s
        patience = max(given, min(given * 2**spent, self.longest_s))
        started = now = time.monotonic()
        if self.quiet(now):
            self._spent.count = 0
            return 0.0
        with _waiting():
            ran_out = self._sleep(started, patience, until)
        self._spent.count = min(spent + 1, 32) if ran_out else 0
        return time.monotonic() - started

    def _sleep(self, started: float, patience: float, until: Callable[[], bool] | None) -> bool:
        """Sleep until a pause, ``patience`` after ``started`` or ``until()``; whether
        the patience ran out."""
        now = time.monotonic()
        while not self.quiet(now):
            if now - started >= patience:
                return True
            if until is not None and until():
                return False
            gap = self.quiet_s if self._holds else self.quiet_s - (now - self.last_request)
            left = min(gap, patience - (now - started))
            time.sleep(min(max(left, 0.001), self.quiet_s))
            now = time.monotonic()
        return False


#: The process's requests, as the preparation threads see them.
LULL = Lull()


class PauseRequests:
    """Stop an event loop taking requests while a block runs in another thread, for at
    most ``longest_s`` seconds: a snapshot's update in a service under load.

    Beside a busy event loop, an update got half the interpreter lock at best, and
    every worker of a service shared two cores with its own requests: under a
    saturating load (wrk, 4 workers, 1M buildings) a 0.2 s update took 1.2-2.4 s,
    all the while answering from the old snapshot. Paused, the worker takes no
    new request and answers none under way; they wait in its sockets (and get
    the new snapshot). Background preparation takes no lull from the pause
    (:meth:`Lull.held`).

    Parameters
    ----------
    loop : asyncio.AbstractEventLoop
        The event loop to pause (the service's, running in another thread).
    longest_s : float
        The longest pause; the block then goes on beside the requests. 0: never pause.
    lull : Lull, default :data:`LULL`
        Where background preparation looks for a pause in the requests.

    Examples
    --------
    >>> import asyncio, threading
    >>> loop = asyncio.new_event_loop()
    >>> threading.Thread(target=loop.run_forever, daemon=True).start()
    >>> pause, ran = PauseRequests(loop, longest_s=5), []
    >>> with pause():
    ...     _ = loop.call_soon_threadsafe(ran.append, "a request")
    ...     time.sleep(0.05)
    ...     ran  # not taken while paused
    []
    >>> time.sleep(0.05); ran
    ['a request']
    >>> _ = loop.call_soon_threadsafe(loop.stop)
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, longest_s: float, lull: Lull = LULL
    ) -> None:
        self.loop = loop
        self.longest_s = longest_s
        self.lull = lull
        #: How long the last pause held the loop (seconds; None before one).
        self.last_s: float | None = None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if self.longest_s <= 0 or self.loop.is_closed():
            yield
            return
        resume = threading.Event()
        with self.lull.held():
            with contextlib.suppress(RuntimeError):  # a loop closed meanwhile: none to pause
                self.loop.call_soon_threadsafe(self._hold, resume)
            try:
                yield
            finally:
                resume.set()

    def _hold(self, resume: threading.Event) -> None:
        """The loop's callback: wait (without the interpreter lock) until resumed."""
        started = time.monotonic()
        resume.wait(self.longest_s)
        self.last_s = time.monotonic() - started


class NoteRequests:
    """ASGI middleware: note each HTTP request in a :class:`Lull` (:data:`LULL` by default)."""

    def __init__(self, app: ASGIApp, *, lull: Lull = LULL) -> None:
        self.app = app
        self.lull = lull

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.lull.request()
        await self.app(scope, receive, send)
