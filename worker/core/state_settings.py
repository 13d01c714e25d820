"""The state store's settings (DTRACK_WORKER_STATE_*, EMIT, BASELINE, TRACK_EPSS, the clock-skew
tolerance and the mass-resolve guard): read from an environment mapping. Pure."""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import parse_qs, urlsplit

from worker.core import lines, mass_resolve, urls
from worker.core.env import PREFIX, Env, Secret, postgresql_url
from worker.core.errors import ConfigError
from worker.core.mass_resolve import Guard

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

EMIT_MODES = ("delta", "snapshot", "both")
TRACKS = ("line", "project")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StateSettings:
    """The finding state store, and what the workers publish."""

    url: Secret  # sqlite:///PATH or postgresql://...
    emit: str  # delta, snapshot or both
    baseline: bool  # a project's first export records its findings without events
    epss_delta: float | None  # EPSS is tracked when it moves at least this much
    # an export's meta.timestamp further ahead of this host's clock is not trusted (seconds)
    clock_skew_tolerance: float = 3600.0
    # an export resolving more than a share of a project's open findings (and at least a
    # minimum), unexplained by DT's facts, is parked (suspicious_export)
    mass_resolve: Guard = mass_resolve.DEFAULT
    # the change stream: per line (finding-change.v2, docs/lines.md) or per DT project (v1)
    track: str = "line"
    line_by: lines.LineBy = lines.BY_NAME  # DTRACK_WORKER_LINE_BY
    # a line finding suppressed in DT stays suppressed when DT lost the analysis with its rows
    carry_triage: bool = True
    # the console's job and finding history is kept this many days (DTRACK_WORKER_HISTORY_DAYS)
    history_days: int = 90

    @property
    def kind(self) -> str:
        return "sqlite" if self.url.reveal().startswith("sqlite:") else "postgresql"

    @property
    def display_url(self) -> str:
        return urls.redact(self.url.reveal())

    @property
    def deltas(self) -> bool:
        return self.emit in ("delta", "both")

    @property
    def snapshots(self) -> bool:
        return self.emit in ("snapshot", "both")


def state_settings(env: Env) -> StateSettings:
    directory = env.text("STATE_DIR", "./state")
    url = env.text("STATE_URL", f"sqlite:///{directory.rstrip('/')}/dtrack-worker.sqlite3")
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        postgresql_url("STATE_URL", url)  # parses, or says
        parts = urlsplit(urls.connection_secrets(url).url)
        if not parts.path.strip("/") and not parse_qs(parts.query).get("dbname"):
            shown = urls.redact(url, url=True)
            raise ConfigError(
                f"{PREFIX}STATE_URL={shown!r} names no database: add it, as in "
                "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (PostgreSQL would take the one "
                "named after the user, `postgres` for postgres, and the store would go there)"
            )
    elif not url.startswith("sqlite:///") or len(url) <= len("sqlite:///"):
        shown = urls.redact(url, url=True)
        raise ConfigError(
            f"{PREFIX}STATE_URL={shown!r} must be sqlite:///PATH (one host) or "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (several hosts)"
        )
    emit = env.text("EMIT", "delta").lower()
    if emit not in EMIT_MODES:
        raise ConfigError(f"{PREFIX}EMIT={emit!r} must be delta, snapshot or both")
    baseline = env.text("BASELINE", "false").lower()
    if baseline not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{PREFIX}BASELINE={baseline!r} must be true or false")
    epss = env.text("TRACK_EPSS", "off").lower()
    epss_delta = (
        None
        if epss in ("off", "false", "no", "")
        else env.number("TRACK_EPSS", 0.1, minimum=0.001, maximum=1)
    )
    track = env.text("TRACK", "line").strip().lower()
    if track not in TRACKS:
        raise ConfigError(
            f"{PREFIX}TRACK={track!r} must be line (one stream per project line, "
            "finding-change.v2) or project (one stream per DT project, finding-change.v1)"
        )
    carry = env.text("CARRY_TRIAGE", "true").strip().lower()
    if carry not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{PREFIX}CARRY_TRIAGE={carry!r} must be true or false")
    return StateSettings(
        url=Secret(url),
        emit=emit,
        baseline=baseline in ("true", "1", "yes"),
        epss_delta=epss_delta,
        clock_skew_tolerance=duration(
            "CLOCK_SKEW_TOLERANCE", env.optional("CLOCK_SKEW_TOLERANCE"), 3600.0, 0, 7 * 86400
        ),
        mass_resolve=Guard(
            share=share("MASS_RESOLVE_GUARD", env.text("MASS_RESOLVE_GUARD", "90%")),
            minimum=env.integer("MASS_RESOLVE_MIN", 5, minimum=1, maximum=1_000_000),
        ),
        track=track,
        line_by=lines.parse_line_by(env.optional("LINE_BY")),
        carry_triage=carry in ("true", "1", "yes"),
        history_days=env.integer("HISTORY_DAYS", 90, minimum=1, maximum=3650),
    )


def duration(name: str, raw: str | None, default: float, low: float, high: float) -> float:
    """``1h``, ``30m``, ``90s``, ``1d`` or plain seconds, within [low, high] seconds."""
    if raw is None:
        return default
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", raw.strip().lower())
    if not match:
        raise ConfigError(f"{PREFIX}{name}={raw!r}: use a duration like 1h, 30m or 3600")
    seconds = float(match.group(1)) * UNITS[match.group(2) or "s"]
    if not low <= seconds <= high:
        raise ConfigError(f"{PREFIX}{name}={raw!r} must be between {low:g} s and {high:g} s")
    return seconds


def share(name: str, raw: str) -> float | None:
    """A percentage (``90%`` or ``90``) as a share; ``off``: None."""
    text = raw.strip().lower()
    if text in ("off", "false", "no"):
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%?", text)
    if not match or not 1 <= float(match.group(1)) < 100:
        raise ConfigError(
            f"{PREFIX}{name}={raw!r} must be a percentage from 1% to below 100% (e.g. 90%), or off"
        )
    return float(match.group(1)) / 100
