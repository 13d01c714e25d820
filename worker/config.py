"""Settings: frozen dataclasses read from an environment mapping. Pure: the CLI passes
``os.environ`` (with ``*_FILE`` secrets already read), tests pass a dict.

Every variable is ``DTRACK_WORKER_*``; docs/configuration.md lists them all.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from worker.errors import ConfigError

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
class Settings:
    broker: BrokerSettings
    receiver: ReceiverSettings
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
            log_level=log_level,
            log_format=log_format,
        )
