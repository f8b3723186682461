"""``twin serve``: the twin's HTTP API (OGC API Features, one-map queries) under uvicorn."""

from __future__ import annotations

import os
import secrets
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

import typer

from twin.analyses import Twin
from twin.cli._common import State, TwinArg, err
from twin.errors import TwinError
from twin.store import PostgisStore, is_url

#: How long a worker may take to answer uvicorn's health ping (loading a twin included).
WORKER_PING_S = 120


def serve(
    twin_path: TwinArg,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[
        int, typer.Option(help="Worker processes (each loads the twin once).", min=1)
    ] = 1,
    keys_file: Annotated[
        Path | None,
        typer.Option(
            "--keys-file",
            help="YAML/JSON file of hashed API keys and roles (else TWIN_API_KEYS_FILE); "
            "more keys in TWIN_API_KEYS as name:role:sha256hex.",
        ),
    ] = None,
    audit_log: Annotated[
        Path | None,
        typer.Option(
            "--audit-log",
            help="Where requests touching restricted data are logged "
            "(default: TWIN.audit.jsonl beside the twin).",
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="An origin browsers may call from (repeatable; '*')."),
    ] = None,
    max_limit: Annotated[
        int, typer.Option("--max-limit", help="Most features one items page returns.", min=1)
    ] = 10_000,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The URL clients reach the service at (behind a proxy): links use it "
            "instead of the request's Host header.",
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="A Host name links may use besides the bound address and localhost "
            "(repeatable); other Host headers are not echoed into links.",
        ),
    ] = None,
    escalate_every: Annotated[
        float,
        typer.Option(
            "--escalate-every",
            help="Seconds between two checks for unacknowledged events past their grade's "
            "deadline (0: no escalation by the service).",
            min=0,
        ),
    ] = 30.0,
    ack_deadlines: Annotated[
        str | None,
        typer.Option(
            "--ack-deadlines",
            help="Acknowledgement deadlines in minutes per grade, e.g. '重大=10,一般=60' "
            "(defaults: 特别重大 5, 重大 15, 较大 30, 一般 120).",
        ),
    ] = None,
) -> None:
    """Serve the twin over HTTP: OGC API Features, city one-map queries, impact analysis.

    The twin is loaded and indexed once per worker; a re-import into the file is
    picked up while serving. TWIN may be a PostGIS twin's URL: each worker then
    reloads when an import commits (LISTEN/NOTIFY), and answers 503 while the
    database is unreachable. Without an API key only public layers exist.

    Events not acknowledged within their grade's deadline are escalated by the
    service itself (one worker at a time), and the change is sent on /events/stream.

    Example: [bold]twin serve chengdu.twin.gpkg --port 8000 --keys-file keys.yaml[/bold]

    Example: [bold]twin serve 'postgresql://twin@db/cim?schema=chengdu' --workers 4[/bold]
    """
    import uvicorn

    from twin_api import Settings, create_app
    from twin_api.app import ANNOUNCE_ENV

    name: str | Path = serving_url(twin_path) if is_url(twin_path) else Path(twin_path).resolve()
    # A missing twin or database is a one-line error, before uvicorn starts.
    opened = _open_for_serving(name, twin_path)
    shown = opened.location if is_url(twin_path) else twin_path  # no password shown
    if isinstance(opened.store, PostgisStore):
        opened.store.close()  # the workers open their own connections
    base = Settings.from_env(twin=name)
    settings = base.with_(
        keys_file=keys_file if keys_file is not None else base.keys_file,
        audit_log=audit_log if audit_log is not None else base.audit_log,
        cors_origins=tuple(cors_origin) if cors_origin else base.cors_origins,
        max_limit=max_limit,
        public_url=public_url if public_url is not None else base.public_url,
        allowed_hosts=tuple(allowed_host) if allowed_host else base.allowed_hosts,
        escalate_every_s=escalate_every,
        ack_deadlines=ack_deadlines if ack_deadlines is not None else base.ack_deadlines,
    )
    os.environ.update(settings.to_env())
    announce = f"serving {shown} on http://{host}:{port} (audit log {settings.audit_path})"
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning" if State.verbosity < 0 else "info",
        "access_log": State.verbosity > 0,
    }
    if workers == 1:
        # Load and index the twin here, so a twin damaged inside fails before "serving".
        app = create_app(settings)
        err.print(announce)
        uvicorn.run(app, **options)
        return
    # Each worker loads the twin itself and announces once it has (see create_app_from_env).
    os.environ[ANNOUNCE_ENV] = announce
    # One secret for every worker's events-stream tokens (a token from one opens any).
    from twin_api.streamtoken import SECRET_ENV

    os.environ.setdefault(SECRET_ENV, secrets.token_hex(32))
    # A worker loading a large twin on a busy machine may not answer uvicorn's pings for
    # a while; its 5 s default would kill and respawn it over and over.
    uvicorn.run(
        "twin_api.app:create_app_from_env",
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=WORKER_PING_S,
        **options,
    )


def _open_for_serving(name: str | Path, given: str) -> Twin:
    """Open the twin once to check it; errors name the URL as given, not with our timeouts."""
    try:
        return Twin.open(name)
    except TwinError as exc:
        if isinstance(name, str) and exc.args and isinstance(exc.args[0], str):
            ours, theirs = PostgisStore(name).location, PostgisStore(given).location
            exc.args = (exc.args[0].replace(ours, theirs), *exc.args[1:])
        raise


def serving_url(url: str, *, connect_timeout_s: int = 3, statement_timeout_ms: int = 15_000) -> str:
    """``url`` with the timeouts a service needs, unless it sets them itself.

    A request must fail fast (503) while the database is unreachable, never
    hang: connections give up after ``connect_timeout_s`` and statements after
    ``statement_timeout_ms``.

    Examples
    --------
    >>> serving_url("postgresql://db/cim?schema=x")
    'postgresql://db/cim?schema=x&connect_timeout=3&options=-c%20statement_timeout%3D15000'
    >>> serving_url("postgresql://db/cim?schema=x&connect_timeout=9")
    'postgresql://db/cim?schema=x&connect_timeout=9&options=-c%20statement_timeout%3D15000'
    """
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    keys = {k for k, _ in query}
    if "connect_timeout" not in keys:
        query.append(("connect_timeout", str(connect_timeout_s)))
    if "options" not in keys:
        query.append(("options", f"-c statement_timeout={statement_timeout_ms}"))
    rest = urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
    return urllib.parse.urlunsplit(parts._replace(query=rest))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
