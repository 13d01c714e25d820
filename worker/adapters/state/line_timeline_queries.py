"""A line's change history as the console's line page reads it (migration 0008): newest
recorded first, paged, with the mean time to resolve. Apart from ``line_history_queries``, which
the line's write imports: the console's queries import the store's, not the other way round."""

from __future__ import annotations

import dataclasses
from typing import Any

from worker.adapters.state.backend import Dialect
from worker.adapters.state.console_queries import Change, Page, _bounded, _changes


@dataclasses.dataclass(frozen=True, slots=True)
class LineChange:
    change: Change  # finding_key: the package key and the vulnerability
    finding: str
    analysis_lost_in_dt: bool


@dataclasses.dataclass(frozen=True, slots=True)
class LineTimeline:
    page: Page  # of LineChange, newest recorded first
    resolve_seconds: float | None  # the mean, over the kept `resolved` rows (not merged)
    resolved: int


def timeline(cursor: Any, dialect: Dialect, line_id: str, offset: int, limit: int) -> LineTimeline:
    """A page of the line's transitions, and its mean time to resolve (one index range)."""
    offset, limit = _bounded(offset, limit)
    cursor.execute(
        dialect.sql(
            "SELECT at, kind, package, vulnerability, severity, changes, reason, finding, "
            "analysis_lost_in_dt FROM line_history WHERE line = %s "
            "ORDER BY recorded_at DESC, id DESC LIMIT %s OFFSET %s"
        ),
        (line_id, limit + 1, offset),
    )
    rows = cursor.fetchall()
    found = [
        LineChange(
            Change(float(at), kind, f"{package} {vulnerability}", severity, _changes(changes),
                   reason),
            finding,
            bool(lost),
        )
        for at, kind, package, vulnerability, severity, changes, reason, finding, lost
        in rows[:limit]
    ]  # fmt: skip
    cursor.execute(
        dialect.sql(
            "SELECT AVG(at - opened_at), COUNT(*) FROM line_history WHERE line = %s "
            "AND kind = 'resolved' AND COALESCE(reason, '') <> 'merged'"
        ),
        (line_id,),
    )
    mean, count = cursor.fetchone()
    return LineTimeline(
        Page(found, offset, limit, len(rows) > limit),
        None if mean is None else float(mean),
        int(count),
    )
