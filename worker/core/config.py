"""Settings: frozen dataclasses read from an environment mapping. Pure: the CLI passes
``os.environ`` (with ``*_FILE`` secrets already read), tests pass a dict.

Every variable is ``DTRACK_WORKER_*``; docs/configuration.md lists them all with their ranges.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from urllib.parse import quote

from worker.core import analysis_gate, scope, signatures, urls
from worker.core.analysis_gate import GateSettings, gate_settings
from worker.core.batches import MAX_BATCH
from worker.core.console_settings import ConsoleSettings, console_settings
from worker.core.env import PREFIX, Env, Secret, amqp_urls, http_url
from worker.core.errors import ConfigError
from worker.core.scope import EVERYTHING, Scope
from worker.core.state_settings import EMIT_MODES, UNITS, StateSettings, state_settings

__all__ = ["EMIT_MODES", "PREFIX", "Secret", "Settings", "StateSettings", "redact_url"]

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
SECRET_VARIABLES = (
    "WEBHOOK_TOKEN",
    "WEBHOOK_SIGNING_SECRET",
    "WEBHOOK_SIGNING_SECRET_PREVIOUS",
    "DT_API_KEY",
    "AMQP_URL",
    "STATE_URL",
    "CONSOLE_TOKEN",
)
# Webhook tokens our docs and help show as examples (README's quick start: change-me; the
# receiver's --help: s3cret), and their like: anyone who read them can send webhooks.
EXAMPLE_TOKENS = frozenset({"change-me", "changeme", "s3cret", "secret", "token", "password"})
# an HMAC key is only as strong as it is long: 16 characters, as for the console token
MIN_SIGNING_SECRET = 16
MAX_COALESCE_SECONDS = 3600.0  # a delay queue per value; an hour is far past any useful burst
KIB, MIB, GIB = 2**10, 2**20, 2**30

redact_url = urls.redact


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
    urls: tuple[Secret, ...]  # one per cluster node; connecting tries them in turn
    prefix: str
    publish_timeout: float
    quorum_group_size: int  # initial replicas of each quorum queue, capped by the running nodes
    event_batch: int = 1  # events per message; above 1, CloudEvents batches
    publisher: str = "lean"  # "lean" (worker/adapters/publisher.py) or "aio-pika", its fallback

    @property
    def url(self) -> Secret:
        return self.urls[0]

    @property
    def display_url(self) -> str:
        return ",".join(urls.redact(url.reveal()) for url in self.urls)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReceiverSettings:
    host: str
    port: int
    webhook_token: Secret | None
    token_header: str
    max_body: int
    body_timeout: float  # to read a whole request body
    header_timeout: float = 10.0  # to read a request's line and headers
    keepalive_timeout: float = 75.0  # an idle kept-alive connection is closed after it
    trigger_groups: frozenset[str]
    coalesce_seconds: float
    scope: Scope = EVERYTHING  # projects out of it are answered ignored, never enqueued
    # DT 5.2+ signed webhooks: the current secret, then the previous one during a rotation
    signing_secrets: tuple[Secret, ...] = ()
    signature_header: str = signatures.DT_HEADER

    @property
    def example_token(self) -> bool:
        """The token is one the docs show as an example (warned about at start)."""
        token = self.webhook_token
        return token is not None and token.reveal().strip().lower() in EXAMPLE_TOKENS

    @property
    def weak_signing_secrets(self) -> dict[str, str]:
        """Variable -> ``example`` (a value the docs show) or ``short`` (fewer than
        MIN_SIGNING_SECRET characters), for the secrets warned about at start."""
        names = (f"{PREFIX}WEBHOOK_SIGNING_SECRET", f"{PREFIX}WEBHOOK_SIGNING_SECRET_PREVIOUS")
        weak: dict[str, str] = {}
        for name, secret in zip(names, self.signing_secrets, strict=False):
            value = secret.reveal().strip()
            if value.lower() in EXAMPLE_TOKENS:
                weak[name] = "example"
            elif len(value) < MIN_SIGNING_SECRET:
                weak[name] = "short"
        return weak


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DtSettings:
    """How the workers reach Dependency-Track's REST API."""

    url: str | None  # DT's base, without /api; required by `worker` and `serve`, checked there
    api_key: Secret | None
    connect_timeout: float
    read_timeout: float
    export_timeout: float  # the whole download of one export
    min_rate: int  # bytes per second an export must arrive at, over any 10 s; 0: no minimum
    max_export: int
    concurrency: int
    http_attempts: int  # tries per fetch within one job, for 429/5xx/timeouts
    backoff_seconds: float  # first pause between them, doubled each time, with jitter
    source: str | None  # the CloudEvents source; None: DT's address
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

    @property
    def display_url(self) -> str | None:
        return None if self.url is None else urls.redact(self.url)

    @property
    def event_source(self) -> str:
        """The events' ``source``: the setting, else DT's address, never with credentials."""
        return urls.without_userinfo(self.source or self.url or "dependency-track")


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
    seconds = float(match.group(1)) * UNITS[match.group(2) or "s"]
    if not 1 <= seconds <= 30 * 86400:
        raise ConfigError(f"{PREFIX}RECONCILE_INTERVAL must be between 1 second and 30 days")
    return seconds


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    max_attempts: int
    shutdown_grace: float
    prefetch: int
    reconcile_interval: float | None  # seconds; None: no scheduled reconciliation
    scope: Scope = EVERYTHING  # which projects: every one by default
    project_cache_seconds: float = 300.0  # how long DT's answer about a project is reused
    analysis: GateSettings = analysis_gate.DEFAULT  # the analysis gate (DTRACK_WORKER_ANALYSIS_*)


def _dt_url(raw: str | None) -> str | None:
    """DT's base address: with or without the ``/api`` that some integrations ask for."""
    if raw is None:
        return None
    return http_url("DT_URL", raw).removesuffix("/api")


FORMATS = ("cloudevents", "ocsf")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OutputSettings:
    """How finding events are published: their format, and which (docs/events.md)."""

    format: str  # cloudevents or ocsf
    filter: str | None  # a CEL expression; compiled when a worker starts
    filter_budget: float = 0.1  # seconds the filter may take on one event (the workers')


def output_settings(environ: Mapping[str, str]) -> OutputSettings:
    """DTRACK_WORKER_FORMAT and DTRACK_WORKER_FILTER alone (the offline commands need no more)."""
    return _output(Env(environ))


def _output(env: Env) -> OutputSettings:
    format_ = env.text("FORMAT", "cloudevents").lower()
    if format_ not in FORMATS:
        raise ConfigError(f"{PREFIX}FORMAT={format_!r} must be cloudevents or ocsf")
    expression = env.optional("FILTER")
    return OutputSettings(
        format=format_,
        filter=expression.strip() if expression else None,
        filter_budget=env.integer("FILTER_BUDGET_MS", 100, minimum=1, maximum=10_000) / 1000,
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    broker: BrokerSettings
    receiver: ReceiverSettings
    dt: DtSettings
    worker: WorkerSettings
    state: StateSettings
    output: OutputSettings
    log_level: str
    log_format: str  # "json" or "console"
    console: ConsoleSettings = dataclasses.field(default_factory=lambda: ConsoleSettings())

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret's value: the tokens, keys and signing secrets, and the
        passwords inside the broker, state and DT URLs (decoded, and as written). For the log
        lines' last line of defence, which masks them wherever they show up."""
        found: list[str] = []
        secrets = (self.dt.api_key, self.receiver.webhook_token, self.console.token)
        for secret in (*secrets, *self.receiver.signing_secrets):
            if secret is not None:
                found.append(secret.reveal())
        addresses = [url.reveal() for url in (*self.broker.urls, self.state.url)]
        for address in [*addresses, *([self.dt.url] if self.dt.url else [])]:
            taken = urls.connection_secrets(address)
            for password in (taken.password, taken.sslpassword):
                if password:
                    found.extend({password, quote(password, safe="")})
        return tuple(dict.fromkeys(value for value in found if value.strip()))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        env = Env(environ)
        prefix = env.text("PREFIX", "dtrack")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}", prefix):
            raise ConfigError(f"{PREFIX}PREFIX={prefix!r} may hold letters, digits, '.', '_', '-'")
        log_format = env.text("LOG_FORMAT", "json").lower()
        if log_format not in ("json", "console"):
            raise ConfigError(f"{PREFIX}LOG_FORMAT={log_format!r} must be json or console")
        log_level = env.text("LOG_LEVEL", "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(
                f"{PREFIX}LOG_LEVEL={log_level!r} must be DEBUG, INFO, WARNING or ERROR"
            )
        project_scope = scope.parse(
            env.optional("INCLUDE_TAGS"),
            env.optional("EXCLUDE_TAGS"),
            env.optional("INCLUDE_PROJECTS"),
            env.optional("EXCLUDE_PROJECTS"),
        )
        receiver, console = _receiver(env, project_scope), console_settings(env)
        if console.enabled and (console.host, console.port) == (receiver.host, receiver.port):
            raise ConfigError(
                f"{PREFIX}CONSOLE_LISTEN and {PREFIX}LISTEN are both {receiver.host}:"
                f"{receiver.port}: the console needs a listener of its own (operators reach it, "
                "DT reaches the webhook)"
            )
        return cls(
            broker=BrokerSettings(
                urls=amqp_urls(
                    "AMQP_URL", env.text("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
                ),
                prefix=prefix,
                publish_timeout=env.number("PUBLISH_TIMEOUT", 5.0, minimum=0.1, maximum=300),
                quorum_group_size=env.integer("QUORUM_SIZE", 3, minimum=1, maximum=9),
                event_batch=env.integer("BATCH", 1, minimum=1, maximum=MAX_BATCH),
                publisher=_publisher(env),
            ),
            receiver=receiver,
            dt=_dt(env),
            state=state_settings(env),
            output=_output(env),
            worker=WorkerSettings(
                max_attempts=env.integer("MAX_ATTEMPTS", 8, minimum=1, maximum=100),
                shutdown_grace=env.number("SHUTDOWN_GRACE", 30.0, minimum=0, maximum=3600),
                prefetch=env.integer("PREFETCH", 8, minimum=1, maximum=1000),
                reconcile_interval=parse_interval(env.optional("RECONCILE_INTERVAL")),
                scope=project_scope,
                project_cache_seconds=env.number(
                    "PROJECT_CACHE_SECONDS", 300.0, minimum=0, maximum=86400
                ),
                analysis=gate_settings(env),
            ),
            log_level=log_level,
            log_format=log_format,
            console=console,
        )


def _publisher(env: Env) -> str:
    publisher = env.text("PUBLISHER", "lean").lower()
    if publisher not in ("lean", "aio-pika"):
        raise ConfigError(f"{PREFIX}PUBLISHER={publisher!r} must be lean or aio-pika")
    return publisher


def _signing(env: Env) -> tuple[tuple[Secret, ...], str]:
    current, previous = (
        env.optional("WEBHOOK_SIGNING_SECRET"),
        env.optional("WEBHOOK_SIGNING_SECRET_PREVIOUS"),
    )
    if previous and not current:
        raise ConfigError(
            f"{PREFIX}WEBHOOK_SIGNING_SECRET_PREVIOUS is set without "
            f"{PREFIX}WEBHOOK_SIGNING_SECRET: the previous secret only accompanies a current one "
            "during a rotation"
        )
    header = env.text("WEBHOOK_SIGNATURE_HEADER", signatures.DT_HEADER)
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}", header):  # an RFC 9110 token
        raise ConfigError(
            f"{PREFIX}WEBHOOK_SIGNATURE_HEADER={header!r} is not an HTTP header name "
            f"(DT sends {signatures.DT_HEADER})"
        )
    return tuple(Secret(value) for value in (current, previous) if value), header


def _receiver(env: Env, project_scope: Scope) -> ReceiverSettings:
    token = env.optional("WEBHOOK_TOKEN")
    signing_secrets, signature_header = _signing(env)
    host, port = _listen(env.text("LISTEN", "0.0.0.0:8080"))
    return ReceiverSettings(
        host=host,
        port=port,
        webhook_token=Secret(token) if token else None,
        token_header=env.text("WEBHOOK_TOKEN_HEADER", "X-Api-Key"),
        max_body=env.size("MAX_BODY", 64 * MIB, minimum=KIB, maximum=GIB),
        body_timeout=env.number("BODY_TIMEOUT", 30.0, minimum=0.1, maximum=600),
        header_timeout=env.number("HEADER_TIMEOUT", 10.0, minimum=0.1, maximum=600),
        keepalive_timeout=env.number("KEEPALIVE_TIMEOUT", 75.0, minimum=0.1, maximum=3600),
        trigger_groups=_groups(env.optional("TRIGGER_GROUPS")),
        coalesce_seconds=env.number(
            "COALESCE_SECONDS", 10.0, minimum=0, maximum=MAX_COALESCE_SECONDS
        ),
        scope=project_scope,
        signing_secrets=signing_secrets,
        signature_header=signature_header,
    )


def _dt(env: Env) -> DtSettings:
    return DtSettings(
        url=_dt_url(env.optional("DT_URL")),
        api_key=Secret(api_key) if (api_key := env.optional("DT_API_KEY")) else None,
        connect_timeout=env.number("DT_CONNECT_TIMEOUT", 10.0, minimum=0.1, maximum=300),
        read_timeout=env.number("DT_READ_TIMEOUT", 120.0, minimum=0.1, maximum=3600),
        export_timeout=env.number("DT_EXPORT_TIMEOUT", 600.0, minimum=1, maximum=86400),
        min_rate=env.size("DT_MIN_RATE", 16 * KIB, minimum=0, maximum=GIB),
        max_export=env.size("MAX_EXPORT", 512 * MIB, minimum=KIB, maximum=16 * GIB),
        concurrency=env.integer("DT_CONCURRENCY", 4, minimum=1, maximum=64),
        http_attempts=env.integer("DT_HTTP_ATTEMPTS", 4, minimum=1, maximum=20),
        backoff_seconds=env.number("DT_BACKOFF_SECONDS", 1.0, minimum=0, maximum=300),
        source=env.optional("SOURCE"),
        timezone=env.text("DT_TIMEZONE", "UTC"),
    )
