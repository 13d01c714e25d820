"""A line finding's transitions as the store's line history keeps them (table line_history):
what changed, with the old and new values cut short, as compact JSON. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from worker.core.finding_history import changes_json
from worker.core.line_compare import LineTransition


@dataclasses.dataclass(frozen=True, slots=True)
class LineEntry:
    finding: str
    kind: str
    at: float
    opened_at: float
    vulnerability: str
    package: str
    severity: str
    changes: str | None  # {"field": [old, new], ...}, JSON; None when nothing was compared
    reason: str | None
    analysis_lost_in_dt: bool


def entries(transitions: Iterable[LineTransition], now: float) -> list[LineEntry]:
    """One entry per transition; ``now`` dates a `changed` (its transition carries the times of
    the finding's cycle only)."""
    return [
        LineEntry(
            finding=t.finding.id,
            kind=t.kind,
            at=_when(t, now),
            opened_at=t.opened_at,
            vulnerability=t.finding.vulnerability,
            package=t.finding.package.key,
            severity=t.severity,
            changes=changes_json(t.changes) if t.changes else None,
            reason=t.reason,
            analysis_lost_in_dt=t.analysis_lost_in_dt,
        )
        for t in transitions
    ]


def _when(transition: LineTransition, now: float) -> float:
    """Opened and reopened at opened_at, resolved and suppressed at resolved_at (the export's
    time), changed at ``now``."""
    if transition.kind in ("opened", "reopened"):
        return transition.opened_at
    if transition.kind in ("resolved", "suppressed") and transition.resolved_at is not None:
        return transition.resolved_at
    return now
