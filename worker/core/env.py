"""Typed reads of ``DTRACK_WORKER_*`` variables from a mapping, and the Secret type. Pure.

Every value is checked where it is read: a number is finite and within its documented range,
a size has a unit we know, a URL parses. Errors name the variable and never show a secret.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from urllib.parse import SplitResult, urlsplit

from worker.core import urls
from worker.core.errors import ConfigError

PREFIX = "DTRACK_WORKER_"


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


_SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


def format_size(size: float) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor:g}{unit}"
    return f"{size:g}"


class Env:
    """The ``DTRACK_WORKER_*`` variables of one environment mapping."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str) -> str:
        value = self._environ.get(PREFIX + name, "").strip()
        return value or default

    def optional(self, name: str) -> str | None:
        return self._environ.get(PREFIX + name, "").strip() or None

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        """A finite number in [minimum, maximum]; ``nan``, ``inf`` and ``1e400`` are refused."""
        raw = self.text(name, "")
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{PREFIX}{name}={raw!r} is not a number") from None
        return self._within(name, raw, value, minimum, maximum, f"{minimum:g}", f"{maximum:g}")

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        raw = self.text(name, "")
        if not raw:
            return default
        if not re.fullmatch(r"[+-]?\d+", raw):
            raise ConfigError(f"{PREFIX}{name}={raw!r} is not a whole number")
        value = self._within(name, raw, int(raw), minimum, maximum, str(minimum), str(maximum))
        return int(value)

    def size(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        """Bytes: ``1048576``, ``512KiB``, ``64MiB``, ``1GiB`` (K/M/G are powers of 1024)."""
        raw = self.text(name, "")
        if not raw:
            return default
        match = re.fullmatch(r"(\d+)\s*([KMG]i?B?)?", raw, re.IGNORECASE)
        if not match:
            raise ConfigError(f"{PREFIX}{name}={raw!r} is not a size (examples: 1048576, 64MiB)")
        unit = (match.group(2) or "").upper().rstrip("B").rstrip("I")
        value = int(match.group(1)) * _SIZE_UNITS[unit]
        shown = (format_size(minimum), format_size(maximum))
        return int(self._within(name, raw, value, minimum, maximum, *shown))

    @staticmethod
    def _within(
        name: str, raw: str, value: float, low: float, high: float, low_text: str, high_text: str
    ) -> float:
        if not math.isfinite(value) or not low <= value <= high:
            raise ConfigError(f"{PREFIX}{name}={raw!r} must be between {low_text} and {high_text}")
        return value


def http_url(name: str, raw: str) -> str:
    """An http(s) URL with a host and a valid port, without a trailing slash."""
    parts = _split(name, raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{PREFIX}{name}={urls.redact(raw, url=True)!r} must be an http(s) URL such as "
            "https://dtrack.example.org"
        )
    return raw.rstrip("/")


def postgresql_url(name: str, raw: str) -> str:
    """A ``postgresql://`` URL whose host part parses. Its passwords may hold any character:
    they are taken out before the driver sees the URL (``urls.connection_secrets``)."""
    plain = urls.connection_secrets(raw).url
    shown = urls.redact(raw, url=True)
    parts = _split(name, "http://" + plain.removeprefix("postgresql://"), shown)
    if not parts.hostname:
        raise ConfigError(
            f"{PREFIX}{name}={shown!r} names no host: postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    return raw


# a comma starts the next node only before a scheme: a password may hold commas
_NEXT_URL = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.\-]*:)")


def amqp_urls(name: str, raw: str) -> tuple[Secret, ...]:
    """One AMQP URL, or several separated by commas (the nodes of a cluster)."""
    found = []
    for part in (piece.strip() for piece in _NEXT_URL.split(raw)):
        if not part:
            continue
        parts = _split(name, part)
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise ConfigError(
                f"{PREFIX}{name}: {urls.redact(part, url=True)!r} is not an AMQP URL "
                "(amqp://USER:PASSWORD@HOST:PORT/VHOST)"
            )
        found.append(Secret(part))
    if not found:
        raise ConfigError(f"{PREFIX}{name} names no URL")
    return tuple(found)


def _split(name: str, raw: str, shown: str | None = None) -> SplitResult:
    """``raw`` parsed; ``shown``: how errors show it (``raw`` without its password)."""
    shown = urls.redact(raw, url=True) if shown is None else shown
    if any(character.isspace() for character in raw):
        raise ConfigError(f"{PREFIX}{name}={shown!r} contains white space")
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}={shown!r} is not a valid URL") from None
    return parts
