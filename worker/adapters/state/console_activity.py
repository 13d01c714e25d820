"""What the console's overview and a sync run's page read from the state store: the jobs that
settled (job_history), the outbox, the latest sync runs; bounded, by their indexes."""

from __future__ import annotations

import dataclasses
from typing import Any

from worker.adapters.state import console_runs, outbox_queries
from worker.adapters.state.backend import Dialect
from worker.adapters.state.console_queries import MAX_PAGE

RECENT_SECONDS = 300.0  # "jobs per minute" counts the jobs settled in the last five minutes


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """A settled job, from job_history."""

    job_id: str
    project: str
    name: str | None
    version: str | None
    kind: str
    run_id: str | None
    attempt: int
    outcome: str
    reason: str | None
    started_at: float
    finished_at: float
    transitions: int | None
    events: int | None

    @property
    def seconds(self) -> float:
        return max(0.0, self.finished_at - self.started_at)

    @property
    def run(self) -> str | None:
        """The console's id of the sync run (its page's), if a sync run queued the job."""
        return self.run_id.split(":", 1)[1] if self.run_id and ":" in self.run_id else None


_JOB_COLUMNS = (
    "job_id, project, name, version, kind, run_id, attempt, outcome, reason, started_at, "
    "finished_at, transitions, events"
)


def jobs_of_run(cursor: Any, dialect: Dialect, run_id: str, limit: int) -> list[Job]:
    """The settled jobs a sync run queued, as the job history has them (job_history_run)."""
    cursor.execute(
        dialect.sql(
            f"SELECT {_JOB_COLUMNS} FROM job_history WHERE run_id = %s "
            "ORDER BY finished_at, id LIMIT %s"
        ),
        (run_id, max(1, min(limit, MAX_PAGE))),
    )
    return [Job(*row) for row in cursor.fetchall()]


@dataclasses.dataclass(frozen=True, slots=True)
class Activity:
    recent: list[Job]  # the latest settled jobs, newest first
    settled_recently: int  # jobs settled within RECENT_SECONDS
    projects: int


def activity(cursor: Any, dialect: Dialect, now: float, limit: int) -> Activity:
    """The jobs that settled last, and how many within RECENT_SECONDS (job_history_finished)."""
    cursor.execute(
        dialect.sql(
            f"SELECT {_JOB_COLUMNS} FROM job_history ORDER BY finished_at DESC, id DESC LIMIT %s"
        ),
        (max(1, min(limit, MAX_PAGE)),),
    )
    recent = [Job(*row) for row in cursor.fetchall()]
    cursor.execute(
        dialect.sql("SELECT COUNT(*) FROM job_history WHERE finished_at >= %s"),
        (now - RECENT_SECONDS,),
    )
    (settled,) = cursor.fetchone()
    cursor.execute("SELECT COUNT(*) FROM projects WHERE deleted_at IS NULL")
    (count,) = cursor.fetchone()
    return Activity(recent, int(settled), int(count))


def unpublished(cursor: Any, dialect: Dialect, project: str, up_to: int) -> int:
    """The project's outbox rows up to sequence ``up_to`` the relay has not published yet
    (outbox_project: project, sequence)."""
    cursor.execute(
        dialect.sql("SELECT COUNT(*) FROM outbox WHERE project = %s AND sequence <= %s"),
        (project, up_to),
    )
    (count,) = cursor.fetchone()
    return int(count)


@dataclasses.dataclass(frozen=True, slots=True)
class Figures:
    """What the overview reads from the store, in one unit of work (one trip to the store's
    thread: under load, each trip costs more than these indexed queries)."""

    outbox: tuple[int, float | None]
    activity: Activity
    runs: list[console_runs.StoredRun]


def figures(cursor: Any, dialect: Dialect, now: float, limit: int, runs: int) -> Figures:
    return Figures(
        outbox_queries.outbox_depth(cursor, dialect),
        activity(cursor, dialect, now, limit),
        console_runs.latest_runs(cursor, dialect, runs),
    )
