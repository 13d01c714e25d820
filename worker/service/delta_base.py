"""What every delta job shares (``delta.Deltas`` is one): its options and dependencies, the
state transaction in a span, the transition metrics; and the occasions other than an export:
a project DT deleted (``gone``) and ``state resync``."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol

import structlog

from worker.adapters import tracing
from worker.adapters.metrics import WorkerMetrics
from worker.adapters.state.store import Apply, Committed, StateMoved, StateUnavailable, Store
from worker.core import events, mass_resolve, outbox_rounds
from worker.core.change_events import ChangeEvents
from worker.core.jobs import Job, utc_timestamp
from worker.core.line_compare import LineTransition
from worker.core.lines import BY_NAME, LineBy
from worker.core.mass_resolve import Guard
from worker.core.transitions import (
    Transition,
    deleted,
    resync,
)
from worker.core.validation import Contract
from worker.service import line_gone, progress
from worker.service.line_delta import LineOptions, Lines
from worker.service.line_gone import LineGone, LineGoneWork
from worker.service.line_resync import LineResync

log = structlog.get_logger(__name__)


class FindingsSource(Protocol):
    """DT: its findings list (suppressed included), and its project object (for the guard)."""

    async def findings(self, project_uuid: str) -> list[dict[str, Any]]: ...

    async def project(self, project_uuid: str, *, retry: bool = True) -> dict[str, Any] | None: ...

    async def version(self) -> dict[str, Any]: ...

    async def list_projects(
        self,
        page: int,
        size: int,
        *,
        active_only: bool = False,
        name: str | None = None,
        search: str | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Gone:
    """What a job that found its project gone did: the change events it published (v1, or its
    lines' v2), and the jobs to queue (the lines' new current versions: ``line_gone``)."""

    published: int
    follow: tuple[Job, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class DeltaOptions:
    source: str
    zone: tzinfo
    epss_delta: float | None
    baseline: bool
    clock_skew_tolerance: float = 3600.0  # DTRACK_WORKER_CLOCK_SKEW_TOLERANCE
    guard: Guard = mass_resolve.DEFAULT  # DTRACK_WORKER_MASS_RESOLVE_GUARD and _MIN
    track: str = "project"  # DTRACK_WORKER_TRACK: line moves lines (line_delta) too
    line_by: LineBy = BY_NAME
    carry_triage: bool = True


class DeltaBase:
    def __init__(
        self,
        store: Store,
        dt: FindingsSource,
        contract: Contract,
        metrics: WorkerMetrics,
        options: DeltaOptions,
        *,
        committed: Callable[[Committed], None] = lambda _: None,
    ) -> None:
        self._store = store
        self._dt = dt
        self._contract = contract
        self._metrics = metrics
        self._options = options
        self._committed = committed  # hands the rounds to the outbox relay (Relay.committed)
        by_line = LineOptions(options.source, options.zone, options.line_by,
                              options.carry_triage, options.epss_delta)  # fmt: skip
        self._lines = Lines(store, dt, by_line) if options.track == "line" else None
        self._line_gone = LineGone(store, dt, by_line) if options.track == "line" else None
        self._line_resync = LineResync(store, options.source, self._apply, committed)

    async def gone(self, job: Job, job_ref: dict[str, Any]) -> Gone:
        """DT confirmed the project is gone: its open findings resolve, then project.gone; in
        line mode its lines follow DT (``line_gone``: the SYNC jobs to queue are returned)."""
        for _ in range(line_gone.ATTEMPTS):
            now = time.time()
            lines = line_gone.NOTHING
            try:  # a job moving one of its lines meanwhile (read or commit): plan again
                if self._line_gone is not None:
                    lines = await self._line_gone.plan(job, now)
                return Gone(await self._close(job, job_ref, now, lines), lines.follow)
            except StateMoved:
                continue
        raise StateUnavailable(f"the lines of project {job.project_uuid} moved while it closed")

    async def _close(
        self, job: Job, job_ref: dict[str, Any], now: float, lines: LineGoneWork
    ) -> int:
        opened = await self._store.open_findings(job.project_uuid)
        plan = deleted(opened, now)
        # a line outlives one of its versions: its view is closed, the line follows DT
        published = [] if self._lines is not None else plan.transitions
        when = utc_timestamp_of(now)
        project = {"uuid": job.project_uuid, "name": job.project_name, "version": None}
        changes = ChangeEvents(
            source=self._options.source,
            project=project,
            basis=f"gone {job.job_id}",
            fpf=None,
            time=when,
        )

        def announcement(sequence: int) -> events.Event:
            return events.project_gone(
                source=self._options.source,
                project=project,
                time=when,
                job=job_ref,
                sequence=sequence,
            )

        done = await self._apply(
            Apply(
                project=job.project_uuid,
                name=job.project_name,
                version=None,
                expected_revision=None,  # the lock serializes; resolving twice finds none open
                writes=plan.writes,
                events=lambda first: outbox_rounds.framed(
                    [
                        *(changes.event(t, first + n) for n, t in enumerate(published)),
                        announcement(first + len(published)),
                    ]
                ),
                exported_at=None,
                outcome="gone",
                now=now,
                deleted=True,
                transitions=plan.transitions,
                line=lines.parts,  # every line it closes, in the same transaction
            )
        )
        self._committed(done)
        self._counted([*published, *lines.transitions])
        return len(published) + len(lines.transitions)

    async def resync(self, project_uuid: str, run: str) -> int:
        """``opened`` again for every open finding of the project, from the store; in line
        mode, of the project's lines (finding-change.v2, ``line_resync``)."""
        if self._lines is not None:
            return await self._line_resync.project(project_uuid, run)
        now = time.time()
        transitions = resync(await self._store.open_findings(project_uuid), now)
        when = utc_timestamp_of(now)
        reports = await self._store.projects(project_uuid)
        name, version = (reports[0].name, reports[0].version) if reports else (None, None)
        changes = ChangeEvents(
            source=self._options.source,
            project={"uuid": project_uuid, "name": name, "version": version},
            basis=f"resync {run}",
            fpf=None,
            time=when,
        )
        done = await self._apply(
            Apply(
                project=project_uuid,
                name=None,
                version=None,
                expected_revision=None,
                writes=(),
                events=lambda first: outbox_rounds.framed(
                    [changes.event(t, first + n) for n, t in enumerate(transitions)]
                ),
                exported_at=None,
                outcome="resync",
                now=time.time(),
                deleted=None,  # a project DT deleted stays deleted
            )
        )
        self._committed(done)
        return len(transitions)

    async def _apply(self, work: Apply) -> Committed:
        """The state transaction, in a span; its outbox rows name the span (the relay's
        publish links to it)."""
        with tracing.span(
            "state transaction",
            attributes={
                "dtrack_worker.project.uuid": work.project,
                "dtrack_worker.outcome": work.outcome,
            }
            if tracing.enabled()
            else None,
        ):
            committed = await self._store.apply(
                dataclasses.replace(work, trace_parent=tracing.traceparent())
            )
            tracing.annotate({"dtrack_worker.events": committed.events})
        await progress.applied(len(work.transitions), committed)
        return committed

    def _counted(self, transitions: Sequence[Transition | LineTransition]) -> None:
        """The transitions published (a project's v1, or a line's v2), in the metrics."""
        kinds = Counter(transition.kind for transition in transitions)
        for kind, count in kinds.items():  # labels() once per kind, not per transition
            self._metrics.transitions.labels(kind=kind).inc(count)
        for transition in transitions:
            if transition.resolved_at is not None and transition.kind == "resolved":
                self._metrics.time_to_resolve.labels(severity=transition.severity).observe(
                    max(0.0, transition.resolved_at - transition.opened_at)
                )


def utc_timestamp_of(moment: float) -> str:
    return utc_timestamp(datetime.fromtimestamp(moment, UTC))
