"""How the templates show times, ages and durations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def when(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def took(seconds: float | None) -> str:
    """A job's duration: milliseconds below a second, tenths below a minute."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 60 else duration(seconds)


def value(shown: object) -> str:
    """An old or new value of a `changed` transition."""
    if shown is None:
        return "-"
    if isinstance(shown, list):
        return ", ".join(value(item) for item in shown) or "-"
    return str(shown)


def age(epoch: float | None, now: float) -> str:
    return "-" if epoch is None else duration(max(0.0, now - epoch))


ALL: dict[str, Callable[..., Any]] = {
    "when": when,
    "duration": duration,
    "age": age,
    "took": took,
    "value": value,
}
