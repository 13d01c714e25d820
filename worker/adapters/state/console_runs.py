"""The console's sync runs in the state store (tables sync_runs and sync_run_lines, migration
0007), so that a restarted console still shows them: the latest MAX_RUNS runs, each with at
most MAX_LINES lines of its log."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from worker.adapters.state.backend import Dialect, rollback

MAX_RUNS = 50
MAX_LINES = 5000  # a run of 500 projects says about 4,000


@dataclasses.dataclass(frozen=True, slots=True)
class StoredRun:
    run_id: str  # sync:UUID
    started_at: float
    targets: dict[str, tuple[str, str | None, str | None]]  # job id: uuid, name, version
    summary: str | None
    settled: dict[str, str] | None  # job id: last step, when the run ended
    lines: list[str]


def _transaction(cursor: Any, dialect: Dialect, work: Callable[[], None]) -> None:
    cursor.execute(dialect.begin)
    try:
        work()
        cursor.execute("COMMIT")
    except BaseException:
        rollback(cursor)
        raise


def save_run(cursor: Any, dialect: Dialect, run: StoredRun) -> None:
    """A new run; the runs beyond the latest MAX_RUNS go, with their lines."""
    sql = dialect.sql
    targets = orjson.dumps({job: list(target) for job, target in run.targets.items()}).decode()

    def work() -> None:
        cursor.execute(
            sql("INSERT INTO sync_runs (id, started_at, targets) VALUES (%s, %s, %s)"),
            (run.run_id, run.started_at, targets),
        )
        cursor.execute(
            sql("SELECT id FROM sync_runs ORDER BY started_at DESC, id LIMIT 100 OFFSET %s"),
            (MAX_RUNS,),
        )
        old = [row[0] for row in cursor.fetchall()]
        for table, column in (("sync_run_lines", "run"), ("sync_runs", "id")):
            cursor.executemany(sql(f"DELETE FROM {table} WHERE {column} = %s"), [(o,) for o in old])

    _transaction(cursor, dialect, work)


def add_lines(cursor: Any, dialect: Dialect, run_id: str, first: int, lines: Sequence[str]) -> None:
    """Lines ``first``, ``first + 1``, ... of the run's log (those past MAX_LINES are not kept)."""
    rows = [(run_id, first + n, line) for n, line in enumerate(lines) if first + n < MAX_LINES]
    if not rows:
        return

    def work() -> None:
        cursor.executemany(
            dialect.sql(
                "INSERT INTO sync_run_lines (run, n, line) VALUES (%s, %s, %s) "
                "ON CONFLICT (run, n) DO NOTHING"
            ),
            rows,
        )

    _transaction(cursor, dialect, work)


def finish_run(
    cursor: Any, dialect: Dialect, run_id: str, summary: str, settled: dict[str, str]
) -> None:
    def work() -> None:
        cursor.execute(
            dialect.sql("UPDATE sync_runs SET summary = %s, settled = %s WHERE id = %s"),
            (summary, orjson.dumps(settled).decode(), run_id),
        )

    _transaction(cursor, dialect, work)


def latest_runs(cursor: Any, dialect: Dialect, limit: int) -> list[StoredRun]:
    """The latest runs, newest first, without their lines."""
    cursor.execute(
        dialect.sql(
            "SELECT id, started_at, targets, summary, settled FROM sync_runs "
            "ORDER BY started_at DESC, id LIMIT %s"
        ),
        (max(1, min(limit, MAX_RUNS)),),
    )
    return [_run(row, []) for row in cursor.fetchall()]


def load_run(cursor: Any, dialect: Dialect, run_id: str) -> StoredRun | None:
    cursor.execute(
        dialect.sql(
            "SELECT id, started_at, targets, summary, settled FROM sync_runs WHERE id = %s"
        ),
        (run_id,),
    )
    row = cursor.fetchone()
    if row is None:
        return None
    cursor.execute(
        dialect.sql("SELECT line FROM sync_run_lines WHERE run = %s ORDER BY n LIMIT %s"),
        (run_id, MAX_LINES),
    )
    return _run(row, [line for (line,) in cursor.fetchall()])


def _run(row: Any, lines: list[str]) -> StoredRun:
    run_id, started_at, targets, summary, settled = row
    return StoredRun(
        run_id=run_id,
        started_at=float(started_at),
        targets={job: (t[0], t[1], t[2]) for job, t in orjson.loads(targets).items()},
        summary=summary,
        settled=None if settled is None else orjson.loads(settled),
        lines=lines,
    )
