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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from worker.adapters import tracing
from worker.adapters.state.store import Apply, StateMoved, StateUnavailable
from worker.core import clock_skew, events, fpf, mass_resolve, outbox_rounds, split
from worker.core.change_events import KINDS, ChangeEvents
from worker.core.dates import epoch
from worker.core.errors import PermanentError
from worker.core.fpf import UNKNOWN, ProjectFacts
from worker.core.jobs import Job
from worker.core.line_compare import Made
from worker.core.mass_resolve import BomFacts, Tally, Unexplained
from worker.core.tracking import Comparison, Seen
from worker.core.transitions import (
    Write,
    detect,
    disappeared,
    needed,
    suppressions_of,
)
from worker.service import collector, progress
from worker.service.analysis_gate import dt_records_analyses
from worker.service.delta_base import DeltaBase, DeltaOptions, FindingsSource, utc_timestamp_of
from worker.service.line_delta import LineWork

__all__ = ["DeltaOptions", "Deltas", "FindingsSource", "utc_timestamp_of"]

log = structlog.get_logger(__name__)

ATTEMPTS = 4  # writers of one project racing each other: compare again this often
_EVENTS = ThreadPoolExecutor(1, thread_name_prefix="events")  # serializes events meanwhile


class Deltas(DeltaBase):
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
        await progress.step(progress.VALIDATING)
        comparison = Comparison(state.priors, options.zone, options.epss_delta)
        make = _Keeping(comparison, keep=self._lines is not None)
        rows = make.rows  # the export's first rows by matrix, for the line
        with tracing.span(
            "validate and normalize", attributes={"dtrack_worker.export.bytes": len(raw)}
        ):
            export, seen = await asyncio.to_thread(
                fpf.read,
                raw,
                self._contract,
                make,
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
        retracted = mode.retracted.union(filter(None, [job.retracted_finding]))
        gone = disappeared(state.priors, (entry.key for entry in seen))
        dt_list = _Listing(self._dt, project_uuid)  # asked once, by the project or the line
        listed = suppressions_of(await dt_list()) if gone else {}
        stored = await self._store.stored(project_uuid, needed(state.priors, seen, gone))
        plan = detect(
            seen,
            stored,
            gone,
            now=epoch(stamp),
            suppressions=listed,
            epss_delta=options.epss_delta,
            retracted=retracted,
        )
        emptied = export.finding_count == 0 and not listed  # DT's hiccup: any project size
        if not mode.force and (emptied or len(gone) >= options.guard.minimum):  # else none
            tally = Tally.of(state.priors, plan.transitions, emptied=emptied)
            await self._guard(project_uuid, tally, last, export)
        silent = mode.silent or (options.baseline and not state.known)
        transitions = [] if silent else plan.transitions
        viewed = transitions  # the project's own view: its history (console), in either track
        line: LineWork | None = None
        if self._lines is not None:  # the line's stream in place of the project's v1 events
            try:
                line = await self._lines.work(
                    export, rows, state, unchanged=not plan.writes and not gone, stamp=stamp,
                    changed={w.key for w in plan.writes} | gone,
                    listed=dt_list, facts=facts, silent=mode.silent, run=asyncio.to_thread,
                    baseline=options.baseline, shared=_made(seen, plan.writes),
                    retracted=retracted,
                )  # fmt: skip
            except StateMoved:  # the line moved while its state was read
                return None
            await self._line_guard(line, mode, last, export)
            transitions = []
            if line.quiet is not None:  # a new version is a new project: the line says (M5)
                silent = line.quiet
        counted: list[str] = [t.kind for t in (transitions if line is None else line.transitions)]
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
                transitions={kind: counted.count(kind) for kind in KINDS},
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
                    line=() if line is None else (line.part,),
                    transitions=viewed,
                    tags=facts.tags,
                )
            )
        except StateMoved:
            return None
        self._counted(transitions if line is None else line.transitions)
        self._committed(done)
        return outcome, len(transitions)

    async def _line_guard(
        self, line: LineWork, mode: _Mode, last: str | None, export: fpf.Export
    ) -> None:
        """The mass-resolve guard on the line's open findings, as on a project's."""
        if line.tally is not None and not mode.force:
            await self._guard(export.project_uuid, line.tally, last, export)

    async def _guard(
        self, project_uuid: str, tally: Tally, last: str | None, export: fpf.Export
    ) -> None:
        """SuspiciousExport when the export would resolve more open findings than the guard
        allows and DT's facts about the project do not explain it."""
        if not self._options.guard.trips(tally):
            return
        try:  # asked only now: an export that trips the guard is rare
            found = await self._dt.project(project_uuid)
            about = BomFacts.of(found, records_analyses=await dt_records_analyses(self._dt))
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


class _Keeping:
    """``fpf.read``'s make: the comparison, keeping the rows by matrix for the line."""

    def __init__(self, comparison: Comparison, *, keep: bool) -> None:
        self._comparison = comparison
        self._keep = keep
        self.rows: dict[str, Any] = {}

    def __call__(self, export: fpf.Export, found: Sequence[Any]) -> list[Seen]:
        if self._keep:
            self.rows.update((row["matrix"], row) for row in found)
        return self._comparison(export, found)


class _Listing:
    """DT's findings list of a project (suppressed included), asked at most once."""

    def __init__(self, dt: FindingsSource, project_uuid: str) -> None:
        self._dt = dt
        self._project = project_uuid
        self._found: list[dict[str, Any]] | None = None

    async def __call__(self) -> list[dict[str, Any]]:
        if self._found is None:
            self._found = await self._dt.findings(self._project)
        return self._found


@dataclasses.dataclass(frozen=True, slots=True)
class _Mode:
    silent: bool  # state baseline: no events
    force: bool  # past the mass-resolve guard
    retracted: frozenset[str] = frozenset()  # findings DT said it retracted (coalesced jobs')


def _made(seen: Sequence[Seen], writes: Sequence[Write]) -> Made:
    """What the project's comparison made of the export's rows (new, changed or back), by
    matrix, for the line's comparison: their parts, and the snapshots written of them."""
    current = {entry.key: entry.current for entry in seen if entry.current is not None}
    return Made(current, {w.key: w.snapshot for w in writes if w.key in current})


def _severities(seen: Sequence[Seen]) -> dict[str, int]:
    """The export's findings by severity, as the snapshot summary counts them."""
    return dict(Counter(entry.severity for entry in seen))
