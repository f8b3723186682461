"""Service settings: which twin, keys, audit log, CORS and limits.

Built explicitly (``Settings(twin=...)``) or from ``TWIN_API_*`` environment
variables (:meth:`Settings.from_env`), which is how ``twin serve`` hands them
to every uvicorn worker. Nothing is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from twin.errors import UsageError
from twin.store.postgis import is_url, parse_url

ENV_PREFIX = "TWIN_API_"
KEYS_ENV = "TWIN_API_KEYS"


@dataclass(frozen=True)
class Settings:
    """Everything ``create_app`` needs.

    Parameters
    ----------
    twin : Path or str
        The twin to serve: a GeoPackage path, or a PostGIS twin's URL
        (``postgresql://user@host:port/db?schema=NAME``, kept as text).
    keys_file : Path, optional
        YAML/JSON file of hashed API keys and roles (see :mod:`twin_api.security`).
    keys : str, optional
        Hashed keys inline, ``name:role:sha256hex`` separated by commas (the
        ``TWIN_API_KEYS`` environment variable).
    audit_log : Path, optional
        Where every request that touches restricted data is recorded, one JSON
        line each. Defaults to ``<twin file>.audit.jsonl`` beside the twin, or
        to ``<schema>.audit.jsonl`` in the working folder for a PostGIS twin.
    cors_origins : tuple of str
        Origins allowed by CORS (``"*"`` for any); none by default.
    default_limit, max_limit : int
        Features per page when ``limit`` is not given, and the largest ``limit``.
    max_body_bytes : int
        Largest request body accepted (413 above it).
    poll_s : float
        How often the twin file is checked for a re-import.
    reload_pause_s : float
        The longest a worker stops taking requests while it updates its snapshot
        after an import (:class:`twin_api.preparing.PauseRequests`; 0: never).
    escalate_every_s : float
        How often unacknowledged events are checked against their grade's
        deadline and escalated (0: never, by the service).
    ack_deadlines : str, optional
        Acknowledgement deadlines per grade in minutes, ``"重大=10,一般=60"``
        (over the defaults of :data:`twin.sensing.events.ACK_DEADLINES_MIN`).
    """

    twin: Path | str
    keys_file: Path | None = None
    keys: str | None = None
    audit_log: Path | None = None
    cors_origins: tuple[str, ...] = ()
    default_limit: int = 10
    max_limit: int = 10_000
    max_body_bytes: int = 1_000_000
    poll_s: float = 1.0
    reload_pause_s: float = 1.0
    public_url: str | None = None  # links use it instead of the request's Host header
    allowed_hosts: tuple[str, ...] = ()  # Host names links may echo besides the bound address
    escalate_every_s: float = 30.0
    ack_deadlines: str | None = None

    def __post_init__(self) -> None:
        for name in ("twin", "keys_file", "audit_log"):  # accept str paths too
            value = getattr(self, name)
            if name == "twin" and is_url(value):
                continue  # a PostGIS twin is named by its URL
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if not 1 <= self.default_limit <= self.max_limit:
            raise UsageError(
                f"default limit {self.default_limit} must be between 1 and max limit "
                f"{self.max_limit}"
            )
        if self.poll_s <= 0:
            raise UsageError(f"poll interval {self.poll_s} s must be positive")
        if not 0 <= self.reload_pause_s <= 60:
            raise UsageError(
                f"reload pause {self.reload_pause_s} s must be between 0 (never) and 60 s"
            )
        if self.escalate_every_s < 0:
            raise UsageError(f"escalation interval {self.escalate_every_s} s must be >= 0 (0: off)")
        from twin.sensing.escalation import parse_deadlines

        parse_deadlines(self.ack_deadlines)  # a malformed one fails here, not in a worker
        if self.public_url is not None:
            url = self.public_url.rstrip("/")
            if not url.startswith(("http://", "https://")) or " " in url:
                raise UsageError(
                    f"public URL {self.public_url!r} must start with http:// or https://, "
                    "e.g. https://twin.example.gov.cn/api"
                )
            object.__setattr__(self, "public_url", url)

    @property
    def audit_path(self) -> Path:
        """The audit log file (given, or beside the twin)."""
        if self.audit_log is not None:
            return self.audit_log
        if isinstance(self.twin, str):
            return Path(parse_url(self.twin)[1] + ".audit.jsonl").resolve()
        return self.twin.with_name(self.twin.name + ".audit.jsonl")

    @property
    def remote(self) -> bool:
        """Whether the twin is a PostGIS twin (named by a URL).

        Examples
        --------
        >>> Settings(twin="postgresql://db/cim?schema=chengdu").remote
        True
        """
        return isinstance(self.twin, str)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``TWIN_API_*`` variables; keyword arguments take precedence.

        Variables: ``TWIN_API_TWIN``, ``TWIN_API_KEYS_FILE``, ``TWIN_API_KEYS``,
        ``TWIN_API_AUDIT_LOG``, ``TWIN_API_CORS_ORIGINS`` (comma-separated),
        ``TWIN_API_DEFAULT_LIMIT``, ``TWIN_API_MAX_LIMIT``,
        ``TWIN_API_MAX_BODY_BYTES``, ``TWIN_API_POLL_S``, ``TWIN_API_RELOAD_PAUSE_S``,
        ``TWIN_API_PUBLIC_URL``,
        ``TWIN_API_ESCALATE_EVERY_S``, ``TWIN_API_ACK_DEADLINES``,
        ``TWIN_API_ALLOWED_HOSTS``
        (comma-separated).

        Examples
        --------
        >>> s = Settings.from_env({"TWIN_API_TWIN": "city.gpkg", "TWIN_API_MAX_LIMIT": "500"})
        >>> s.twin.name, s.max_limit
        ('city.gpkg', 500)
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name)
            return value if value else None

        values: dict[str, object] = {}
        if (twin := get("TWIN")) is not None:
            values["twin"] = twin  # a path, or a PostGIS URL
        if (keys_file := get("KEYS_FILE")) is not None:
            values["keys_file"] = Path(keys_file)
        if (keys := get("KEYS")) is not None:
            values["keys"] = keys
        if (audit := get("AUDIT_LOG")) is not None:
            values["audit_log"] = Path(audit)
        if (public_url := get("PUBLIC_URL")) is not None:
            values["public_url"] = public_url
        if (deadlines := get("ACK_DEADLINES")) is not None:
            values["ack_deadlines"] = deadlines
        if (hosts := get("ALLOWED_HOSTS")) is not None:
            values["allowed_hosts"] = tuple(h.strip() for h in hosts.split(",") if h.strip())
        if (origins := get("CORS_ORIGINS")) is not None:
            values["cors_origins"] = tuple(o.strip() for o in origins.split(",") if o.strip())
        for name, convert in (
            ("default_limit", int),
            ("max_limit", int),
            ("max_body_bytes", int),
            ("poll_s", float),
            ("reload_pause_s", float),
            ("escalate_every_s", float),
        ):
            if (text := get(name.upper())) is not None:
                try:
                    values[name] = convert(text)
                except ValueError:
                    raise UsageError(
                        f"{ENV_PREFIX}{name.upper()}={text!r} is not a number"
                    ) from None
        values.update(overrides)
        if "twin" not in values:
            raise UsageError(f"say which twin to serve: set {ENV_PREFIX}TWIN=path/to/city.gpkg")
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The ``TWIN_API_*`` variables that :meth:`from_env` reads back to these settings."""
        env = {
            "TWIN": str(self.twin),
            "CORS_ORIGINS": ",".join(self.cors_origins),
            "ALLOWED_HOSTS": ",".join(self.allowed_hosts),
            "DEFAULT_LIMIT": str(self.default_limit),
            "MAX_LIMIT": str(self.max_limit),
            "MAX_BODY_BYTES": str(self.max_body_bytes),
            "POLL_S": str(self.poll_s),
            "RELOAD_PAUSE_S": str(self.reload_pause_s),
            "ESCALATE_EVERY_S": str(self.escalate_every_s),
        }
        if self.ack_deadlines is not None:
            env["ACK_DEADLINES"] = self.ack_deadlines
        if self.audit_log is not None:
            env["AUDIT_LOG"] = str(self.audit_log)
        if self.keys_file is not None:
            env["KEYS_FILE"] = str(self.keys_file)
        if self.keys is not None:
            env["KEYS"] = self.keys
        if self.public_url is not None:
            env["PUBLIC_URL"] = self.public_url
        return {ENV_PREFIX + k: v for k, v in env.items()}

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]
