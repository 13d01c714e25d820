"""Rows an older release wrote (the snapshot as JSON, the tracked fields always) packed as this
release writes them (``packing``): a project at a time, in transactions of at most ``limit``
rows under the project's lock, taken as a job takes it (so no deadlock with jobs, and workers
go on writing meanwhile). ``dtrack-worker state migrate`` runs it after the migrations."""

from __future__ import annotations

from typing import Any

import orjson

from worker.adapters.state import packing
from worker.adapters.state.backend import Dialect, rollback

BATCH = 1000  # rows per transaction: a job of the project waits at most this long


def legacy_projects(cursor: Any, dialect: Dialect) -> list[str]:
    """Projects with rows still in the older form (one pass over the findings)."""
    cursor.execute("SELECT DISTINCT project FROM findings WHERE snapshot <> '' ORDER BY project")
    return [row[0] for row in cursor.fetchall()]


def compact_batch(cursor: Any, dialect: Dialect, project: str, limit: int = BATCH) -> int:
    """Pack up to ``limit`` of the project's older rows in one transaction; returns how many."""
    sql = dialect.sql
    cursor.execute(dialect.begin)
    try:
        if dialect.lock_project:
            cursor.execute(sql(dialect.lock_project), (project,))
        cursor.execute(
            sql("SELECT finding_key, tracked, snapshot FROM findings "
                "WHERE project = %s AND snapshot <> '' LIMIT %s"),
            (project, limit),
        )  # fmt: skip
        rows = []
        for key, tracked, text in cursor.fetchall():
            snapshot = orjson.loads(text)
            fields = packing.tracked_of(tracked, snapshot)
            rows.append(
                (
                    packing.tracked_column(fields, snapshot),
                    packing.pack(key, snapshot),
                    project,
                    key,
                )
            )
        if rows:
            cursor.executemany(
                sql("UPDATE findings SET tracked = %s, snapshot = '', packed = %s "
                    "WHERE project = %s AND finding_key = %s"),
                rows,
            )  # fmt: skip
        cursor.execute("COMMIT")
    except BaseException:
        rollback(cursor)
        raise
    return len(rows)
