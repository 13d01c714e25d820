"""A job in delta mode: the export against the project's stored state, and the transitions,
their events and the new state committed together (the events wait in the outbox; the relay
publishes them). The job is acked after the commit; a crash anywhere loses nothing.

1. read the project's state in brief (status and fingerprint per finding);
2. read the export against it: unchanged findings are recognised by fingerprint alone;
3. an export older than the last one applied changes nothing (``stale``); a timestamp further
   ahead of this host's clock than the tolerance is replaced by the time the export was
   received, and a stored one is not trusted;
4. when findings disappeared, ask DT once which of them are suppressed;
5. read the full stored state of the findings that changed or left, and detect transitions;
6. an export that would resolve most open findings unexplained by DT's facts is held back
   (``SuspiciousExport``: the job parks; ``GuardPending`` while DT's facts only lag: the
   job is retried) unless forced;
7. commit findings, outbox rows and the project row in one transaction, if no other worker
   wrote the project meanwhile (else start again from 1).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol

import structlog

from worker.adapters import tracing
from worker.adapters.metrics import WorkerMetrics
from worker.adapters.state.store import Apply, Committed, StateMoved, StateUnavailable, Store
from worker.core import clock_skew, events, fpf, mass_resolve, outbox_rounds, split
from worker.core.change_events import KINDS, ChangeEvents
from worker.core.dates import epoch
from worker.core.errors import PermanentError
from worker.core.fpf import UNKNOWN, ProjectFacts
from worker.core.jobs import Job, utc_timestamp
from worker.core.mass_resolve import BomFacts, Guard, Tally, Unexplained
from worker.core.tracking import Comparison, Seen
from worker.core.transitions import (
    Transition,
    deleted,
    detect,
    disappeared,
    needed,
    resync,
    suppressions_of,
)
from worker.core.validation import Contract
from worker.service import collector

log = structlog.get_logger(__name__)

ATTEMPTS = 4  # writers of one project racing each other: compare again this often
_EVENTS = ThreadPoolExecutor(1, thread_name_prefix="events")  # serializes events meanwhile


class FindingsSource(Protocol):
    """DT: its findings list (suppressed included), and its project object (for the guard)."""

    async def findings(self, project_uuid: str) -> list[dict[str, Any]]: ...

    async def project(self, project_uuid: str, *, retry: bool = True) -> dict[str, Any] | None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class DeltaOptions:
    source: str
    zone: tzinfo
    epss_delta: float | None
    baseline: bool
    clock_skew_tolerance: float = 3600.0  # DTRACK_WORKER_CLOCK_SKEW_TOLERANCE
    guard: Guard = mass_resolve.DEFAULT  # DTRACK_WORKER_MASS_RESOLVE_GUARD and _MIN


class Deltas:
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

    async def export(
        self,
        job: Job,
        raw: split.Raw,
        started: float,
        job_ref: dict[str, Any],
        *,
        silent: bool = False,
        force: bool = False,
        facts: ProjectFacts = UNKNOWN,
        release: split.Release = split.keep,
        retracted: frozenset[str] = frozenset(),
    ) -> tuple[str, int]:
        """Apply an export; returns the outcome (done, stale, baseline) and its transitions.

        ``silent``: record the findings without events (``state baseline``); ``force`` (or a
        forced job): apply it even where the mass-resolve guard would raise SuspiciousExport;
        ``facts``: the project's tags and activity, for the events; ``release``: see
        ``fpf.read``; ``retracted``: findings DT said it retracted, besides the job's own."""
        mode = _Mode(silent, force or job.forced, retracted)
        for _ in range(ATTEMPTS):
            with collector.paused():
                outcome = await self._attempt(job, raw, started, job_ref, mode, facts, release)
            if outcome is not None:
                return outcome
            log.info("state.moved", project_uuid=job.project_uuid)
        raise StateUnavailable(
            f"project {job.project_uuid} was written by others {ATTEMPTS} times while this job "
            "compared its export"
        )

    async def _attempt(
        self,
        job: Job,
        raw: split.Raw,
        started: float,
        job_ref: dict[str, Any],
        mode: _Mode,
        facts: ProjectFacts,
        release: split.Release,
    ) -> tuple[str, int] | None:
        """One comparison and commit; None when another writer got there first."""
        options, project_uuid = self._options, job.project_uuid
        received = time.time()  # the host's clock, against DT's timestamps
        state = await self._store.state(project_uuid)
        with tracing.span(
            "validate and normalize", attributes={"dtrack_worker.export.bytes": len(raw)}
        ):
            export, seen = await asyncio.to_thread(
                fpf.read,
                raw,
                self._contract,
                Comparison(state.priors, options.zone, options.epss_delta),
                source=options.source,
                zone=options.zone,
                project=project_uuid,
                release=release,
            )
        tolerance = options.clock_skew_tolerance
        last = clock_skew.stored(state.last_exported_at, received, tolerance)
        stamp = clock_skew.applied(export.exported_at, received, tolerance, last)
        if stamp != export.exported_at:  # a DT clock error: applied, never left to freeze it
            log.warning("state.clock_skew", project_uuid=project_uuid, applied_as=stamp,
                        exported_at=export.exported_at)  # fmt: skip
            self._metrics.clock_skewed.inc()
        if last is not None and epoch(stamp) < epoch(last):
            await self._store.record_outcome(project_uuid, "stale")
            return "stale", 0
        gone = disappeared(state.priors, (entry.key for entry in seen))
        listed = suppressions_of(await self._dt.findings(project_uuid)) if gone else {}
        stored = await self._store.stored(project_uuid, needed(state.priors, seen, gone))
        plan = detect(
            seen,
            stored,
            gone,
            now=epoch(stamp),
            suppressions=listed,
            epss_delta=options.epss_delta,
            retracted=mode.retracted.union(filter(None, [job.retracted_finding])),
        )
        emptied = export.finding_count == 0 and not listed  # DT's hiccup: any project size
        if not mode.force and (emptied or len(gone) >= options.guard.minimum):  # else none
            tally = Tally.of(state.priors, plan.transitions, emptied=emptied)
            await self._guard(project_uuid, tally, last, export)
        silent = mode.silent or (options.baseline and not state.known)
        transitions = [] if silent else plan.transitions
        project = {
            "uuid": export.project_uuid,
            "name": export.project_name,
            "version": export.project_version,
        }
        fpf_ref = {
            "version": export.fpf_version,
            "dt_version": export.dt_version,
            "exported_at": export.exported_at,  # DT's own stamp, even when not trusted
        }
        changes = ChangeEvents(
            source=export.source,
            project=export.project(facts),
            basis=f"export {stamp}",
            fpf=fpf_ref,
            time=stamp,
        )

        def summary(sequence: int) -> events.Event:
            return events.export_summary(
                source=export.source,
                project=project,
                exported_at=stamp,
                fpf=fpf_ref,
                finding_count=export.finding_count,
                severities=_severities(seen),
                repeated_rows=export.repeated_rows,
                duration_ms=(time.perf_counter() - started) * 1e3,
                job=job_ref,
                transitions={kind: sum(t.kind == kind for t in transitions) for kind in KINDS},
                baseline=silent,
                sequence=sequence,
            )

        def numbered(first: int) -> list[outbox_rounds.Round]:
            made = [changes.event(t, first + n) for n, t in enumerate(transitions)]
            made.append(summary(first + len(made)))
            return outbox_rounds.framed(made)

        # Serialized and framed in outbox rounds on a thread of their own while the store
        # writes the findings: the next sequence is known, since the commit happens only if
        # nobody wrote the project since.
        first = state.sequence + 1
        ahead = _EVENTS.submit(numbered, first)
        outcome = "baseline" if silent else "done"
        try:
            done = await self._apply(
                Apply(
                    project=project_uuid,
                    name=export.project_name,
                    version=export.project_version,
                    expected_revision=state.revision,
                    writes=plan.writes,
                    events=lambda at: ahead.result() if at == first else numbered(at),
                    exported_at=stamp,
                    outcome=outcome,
                    now=time.time(),
                    fresh=not state.priors,
                )
            )
        except StateMoved:
            return None
        self._counted(transitions)
        self._committed(done)
        return outcome, len(transitions)

    async def _guard(
        self, project_uuid: str, tally: Tally, last: str | None, export: fpf.Export
    ) -> None:
        """SuspiciousExport when the export would resolve more open findings than the guard
        allows and DT's facts about the project do not explain it."""
        if not self._options.guard.trips(tally):
            return
        try:  # asked only now: an export that trips the guard is rare
            about = BomFacts.of(await self._dt.project(project_uuid))
        except PermanentError as exc:  # the key may not see projects: then nothing explains it
            reason: Unexplained | None = Unexplained(
                f"DT's facts about the project could not be read ({exc})"
            )
        else:
            since = None if last is None else epoch(last)
            reason = mass_resolve.unexplained(
                about, since=since, exported=epoch(export.exported_at)
            )
        if reason is not None:
            refusal = self._options.guard.refusal(tally, reason, project_uuid, export.exported_at)
            if not reason.pending:  # a pending one is retried: its outcome comes then
                await self._store.record_outcome(project_uuid, "suspicious_export")
            raise refusal

    async def gone(self, job: Job, job_ref: dict[str, Any]) -> int:
        """DT confirmed the project is gone: its open findings resolve, then project.gone."""
        opened = await self._store.open_findings(job.project_uuid)
        now = time.time()
        plan = deleted(opened, now)
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
                        *(changes.event(t, first + n) for n, t in enumerate(plan.transitions)),
                        announcement(first + len(plan.transitions)),
                    ]
                ),
                exported_at=None,
                outcome="gone",
                now=now,
                deleted=True,
            )
        )
        self._counted(plan.transitions)
        self._committed(done)
        return len(plan.transitions)

    async def resync(self, project_uuid: str, run: str) -> int:
        """``opened`` again for every open finding of the project, from the store."""
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
        return committed

    def _counted(self, transitions: Sequence[Transition]) -> None:
        kinds = Counter(transition.kind for transition in transitions)
        for kind, count in kinds.items():  # labels() once per kind, not per transition
            self._metrics.transitions.labels(kind=kind).inc(count)
        for transition in transitions:
            if transition.resolved_at is not None and transition.kind == "resolved":
                self._metrics.time_to_resolve.labels(severity=transition.severity).observe(
                    max(0.0, transition.resolved_at - transition.opened_at)
                )


@dataclasses.dataclass(frozen=True, slots=True)
class _Mode:
    silent: bool  # state baseline: no events
    force: bool  # past the mass-resolve guard
    retracted: frozenset[str] = frozenset()  # findings DT said it retracted (coalesced jobs')


def utc_timestamp_of(moment: float) -> str:
    return utc_timestamp(datetime.fromtimestamp(moment, UTC))


def _severities(seen: Sequence[Seen]) -> dict[str, int]:
    """The export's findings by severity, as the snapshot summary counts them."""
    counts: dict[str, int] = {}
    for entry in seen:
        counts[entry.severity] = counts.get(entry.severity, 0) + 1
    return counts
