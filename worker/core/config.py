"""Settings: frozen dataclasses read from an environment mapping. Pure: the CLI passes
``os.environ`` (with ``*_FILE`` secrets already read), tests pass a dict.

Every variable is ``DTRACK_WORKER_*``; docs/configuration.md lists them all.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from worker.core.errors import ConfigError

PREFIX = "DTRACK_WORKER_"

# Groups that can change a project's findings (reference §1.4), in the v4 spelling.
DEFAULT_TRIGGER_GROUPS = frozenset(
    {
        "BOM_PROCESSED",
        "NEW_VULNERABILITY",
        "NEW_VULNERABLE_DEPENDENCY",
        "PROJECT_AUDIT_CHANGE",
        "VEX_PROCESSED",
        "VULNERABILITY_RETRACTED",
        "PROJECT_VULN_ANALYSIS_COMPLETE",
        "NEW_VULNERABILITIES_SUMMARY",
        "NEW_POLICY_VIOLATIONS_SUMMARY",
    }
)
# Variables whose value may instead be read from the file named by NAME_FILE.
SECRET_VARIABLES = ("WEBHOOK_TOKEN", "DT_API_KEY", "AMQP_URL")


class Secret:
    """A string that never shows up in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def reveal(self) -> str:
        return self._value


def redact_url(url: str) -> str:
    """An AMQP or HTTP URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


class _Env:
    """Typed reads of DTRACK_WORKER_* variables, with errors that name the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str) -> str:
        value = self._environ.get(PREFIX + name, "").strip()
        return value or default

    def optional(self, name: str) -> str | None:
        return self._environ.get(PREFIX + name, "").strip() or None

    def number(self, name: str, default: float, *, minimum: float = 0) -> float:
        raw = self.text(name, "")
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{PREFIX}{name}={raw!r} is not a number") from None
        if value < minimum:
            raise ConfigError(f"{PREFIX}{name}={raw!r} must be at least {minimum:g}")
        return value

    def size(self, name: str, default: int) -> int:
        raw = self.text(name, "")
        if not raw:
            return default
        match = re.fullmatch(r"(\d+)\s*([KMG]i?B?)?", raw, re.IGNORECASE)
        if not match:
            raise ConfigError(f"{PREFIX}{name}={raw!r} is not a size (examples: 1048576, 64MiB)")
        unit = (match.group(2) or "").upper().rstrip("B").rstrip("I")
        return int(match.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[unit]


def _listen(raw: str) -> tuple[str, int]:
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{PREFIX}LISTEN={raw!r} must be HOST:PORT (example: 0.0.0.0:8080)")
    return host.strip("[]"), int(port)


def _groups(raw: str | None) -> frozenset[str]:
    if raw is None:
        return DEFAULT_TRIGGER_GROUPS
    groups = frozenset(
        part.strip().upper().removeprefix("GROUP_") for part in raw.split(",") if part.strip()
    )
    if not groups:
        raise ConfigError(f"{PREFIX}TRIGGER_GROUPS is empty: name at least one group")
    bad = sorted(g for g in groups if not re.fullmatch(r"[A-Z][A-Z0-9_]*", g))
    if bad:
        raise ConfigError(f"{PREFIX}TRIGGER_GROUPS has malformed group names: {', '.join(bad)}")
    return groups


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BrokerSettings:
    url: Secret
    prefix: str
    publish_timeout: float

    @property
    def display_url(self) -> str:
        return redact_url(self.url.reveal())


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReceiverSettings:
    host: str
    port: int
    webhook_token: Secret | None
    token_header: str
    max_body: int
    trigger_groups: frozenset[str]
    coalesce_seconds: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DtSettings:
    """How the workers reach Dependency-Track's REST API."""

    url: str | None  # required by `worker` and `serve`, checked there
    api_key: Secret | None
    connect_timeout: float
    read_timeout: float
    max_export: int
    concurrency: int
    http_attempts: int  # tries per fetch within one job, for 429/5xx/timeouts
    backoff_seconds: float  # first pause between them, doubled each time, with jitter
    source: str | None  # the CloudEvents source; None: the export's meta.baseUrl
    timezone: str  # the DT server's zone, for zone-less DT 4.x dates

    def require(self) -> tuple[str, Secret]:
        if not self.url:
            raise ConfigError(
                f"{PREFIX}DT_URL is not set: the workers fetch exports from Dependency-Track; "
                f"set it to DT's API server (example: {PREFIX}DT_URL=https://dtrack.example.org) "
                f"and {PREFIX}DT_API_KEY (or {PREFIX}DT_API_KEY_FILE) to an API key with "
                "VIEW_VULNERABILITY and VIEW_PORTFOLIO"
            )
        if self.api_key is None:
            raise ConfigError(
                f"{PREFIX}DT_API_KEY is not set (or {PREFIX}DT_API_KEY_FILE): DT answers 401 "
                "without one; use a key with VIEW_VULNERABILITY and VIEW_PORTFOLIO"
            )
        return self.url, self.api_key


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(raw: str | None) -> float | None:
    """``6h``, ``30m``, ``90s``, ``1d`` or plain seconds; unset, ``off`` or ``0``: None."""
    text = (raw or "").strip().lower()
    if text in ("", "off", "0"):
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text)
    if not match:
        raise ConfigError(
            f"{PREFIX}RECONCILE_INTERVAL={raw!r}: use a duration like 6h, 30m or 3600"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds < 1:
        raise ConfigError(f"{PREFIX}RECONCILE_INTERVAL must be at least 1 second")
    return seconds


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    max_attempts: int
    shutdown_grace: float
    prefetch: int
    reconcile_interval: float | None  # seconds; None: no scheduled reconciliation


def _dt_url(raw: str | None) -> str | None:
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{PREFIX}DT_URL={raw!r} must be an http(s) URL")
    return raw.rstrip("/")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    broker: BrokerSettings
    receiver: ReceiverSettings
    dt: DtSettings
    worker: WorkerSettings
    log_level: str
    log_format: str  # "json" or "console"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        env = _Env(environ)
        prefix = env.text("PREFIX", "dtrack")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}", prefix):
            raise ConfigError(f"{PREFIX}PREFIX={prefix!r} may hold letters, digits, '.', '_', '-'")
        token = env.optional("WEBHOOK_TOKEN")
        host, port = _listen(env.text("LISTEN", "0.0.0.0:8080"))
        log_format = env.text("LOG_FORMAT", "json").lower()
        if log_format not in ("json", "console"):
            raise ConfigError(f"{PREFIX}LOG_FORMAT={log_format!r} must be json or console")
        log_level = env.text("LOG_LEVEL", "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(
                f"{PREFIX}LOG_LEVEL={log_level!r} must be DEBUG, INFO, WARNING or ERROR"
            )
        return cls(
            broker=BrokerSettings(
                url=Secret(env.text("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")),
                prefix=prefix,
                publish_timeout=env.number("PUBLISH_TIMEOUT", 5.0, minimum=0.1),
            ),
            receiver=ReceiverSettings(
                host=host,
                port=port,
                webhook_token=Secret(token) if token else None,
                token_header=env.text("WEBHOOK_TOKEN_HEADER", "X-Api-Key"),
                max_body=env.size("MAX_BODY", 64 * 2**20),
                trigger_groups=_groups(env.optional("TRIGGER_GROUPS")),
                coalesce_seconds=env.number("COALESCE_SECONDS", 10.0),
            ),
            dt=DtSettings(
                url=_dt_url(env.optional("DT_URL")),
                api_key=Secret(api_key) if (api_key := env.optional("DT_API_KEY")) else None,
                connect_timeout=env.number("DT_CONNECT_TIMEOUT", 10.0, minimum=0.1),
                read_timeout=env.number("DT_READ_TIMEOUT", 120.0, minimum=0.1),
                max_export=env.size("MAX_EXPORT", 512 * 2**20),
                concurrency=int(env.number("DT_CONCURRENCY", 4, minimum=1)),
                http_attempts=int(env.number("DT_HTTP_ATTEMPTS", 4, minimum=1)),
                backoff_seconds=env.number("DT_BACKOFF_SECONDS", 1.0),
                source=env.optional("SOURCE"),
                timezone=env.text("DT_TIMEZONE", "UTC"),
            ),
            worker=WorkerSettings(
                max_attempts=int(env.number("MAX_ATTEMPTS", 8, minimum=1)),
                shutdown_grace=env.number("SHUTDOWN_GRACE", 30.0),
                prefetch=int(env.number("PREFETCH", 8, minimum=1)),
                reconcile_interval=parse_interval(env.optional("RECONCILE_INTERVAL")),
            ),
            log_level=log_level,
            log_format=log_format,
        )
