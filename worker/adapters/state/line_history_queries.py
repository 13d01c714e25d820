"""A line's change history (migration 0008): written with the line's move, in its transaction,
and pruned per line past DTRACK_WORKER_HISTORY_DAYS as it is written (the line's page reads it:
``line_timeline_queries``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from worker.adapters.state import history_queries
from worker.adapters.state.backend import Dialect
from worker.core import line_history
from worker.core.line_compare import LineTransition

COPY_FROM = history_queries.COPY_FROM  # rows: PostgreSQL takes more by COPY
_COLUMNS = (
    "line, finding, kind, at, recorded_at, opened_at, vulnerability, package, severity, changes, "
    "reason, analysis_lost_in_dt"
)
_TYPES = ["text", "text", "text", "float8", "float8", "float8"] + ["text"] * 5 + ["int4"]


def write(
    cursor: Any,
    dialect: Dialect,
    line_id: str,
    transitions: Sequence[LineTransition],
    now: float,
    keep_since: float | None,
) -> None:
    """Within the apply's transaction: the line's transitions, and its rows recorded before the
    retention gone (through line_history_by_line)."""
    if keep_since is not None:
        cursor.execute(
            dialect.sql("DELETE FROM line_history WHERE line = %s AND recorded_at < %s"),
            (line_id, keep_since),
        )
    rows = [
        (line_id, e.finding, e.kind, e.at, now, e.opened_at, e.vulnerability, e.package,
         e.severity, e.changes, e.reason, int(e.analysis_lost_in_dt))
        for e in line_history.entries(transitions, now)
    ]  # fmt: skip
    if dialect.name == "postgresql" and len(rows) >= COPY_FROM:  # a line's first sync
        with cursor.copy(f"COPY line_history ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_TYPES)
            for row in rows:
                copy.write_row(row)
    elif rows:
        marks = ", ".join(["%s"] * 12)
        cursor.executemany(
            dialect.sql(f"INSERT INTO line_history ({_COLUMNS}) VALUES ({marks})"), rows
        )
