"""A finding's transitions as the store's change history keeps them (table finding_history):
what changed, with the old and new values, as compact JSON. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import orjson

from worker.core.transitions import Transition

MAX_TEXT = 200  # a value's text is cut here: the history is for reading, the events are whole


@dataclasses.dataclass(slots=True)  # not frozen, never changed after: see tracking.Current
class Entry:
    finding_key: str
    kind: str
    at: float
    severity: str
    changes: str | None  # {"field": [old, new], ...}, JSON; None when nothing was compared
    reason: str | None


def entries(transitions: Iterable[Transition], now: float) -> list[Entry]:
    """One entry per transition (a resync's `opened` again changes nothing: none); ``now``
    dates a `changed` (its transition carries the times of the finding's cycle only)."""
    return [
        Entry(
            finding_key=t.key,
            kind=t.kind,
            at=_when(t, now),
            severity=t.severity,
            changes=changes_json(t.changes) if t.changes else None,
            reason=t.reason,
        )
        for t in transitions
        if not t.resync
    ]


def changes_json(changes: Iterable[tuple[str, Any, Any]]) -> str:
    return orjson.dumps({name: [_short(old), _short(new)] for name, old, new in changes}).decode()


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + "…"
    if isinstance(value, list | tuple):
        return [_short(item) for item in value]
    return value


def _when(transition: Transition, now: float) -> float:
    """Opened and reopened at opened_at, resolved and suppressed at resolved_at (the export's
    time, as the findings table dates them), changed at ``now``."""
    if transition.kind in ("opened", "reopened"):
        return transition.opened_at
    return transition.resolved_at if transition.resolved_at is not None else now
