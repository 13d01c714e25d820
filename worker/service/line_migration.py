"""`dtrack-worker state migrate`, the lines step: a per-project store's projects grouped into
lines, each line's state built from the findings of the version it starts from, written without
an event (docs/state.md, "Moving a store to lines").

* DT asked (DTRACK_WORKER_DT_URL set): every stored name's versions as a job lists them
  (``line_delta.versions_of``: group, tags, ``isLatest``, ``active``, ``lastBomImport``); a line
  starts from DT's current version when the store holds it, else from its version applied last.
  A DT failure stops the step before anything is written (never read as "no versions").
* DT not asked: lines by each stored project's name and version (no group: DT 4.x has none; no
  tags: the store keeps none, so ``name+tag:`` refuses, and those lines are built by their first
  job instead), starting from the version applied last.
* A line that already has a state (a job, or an earlier migration, built it) is left as it is:
  running the step twice changes nothing. A line a job moves meanwhile is left to the job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import tzinfo

from worker.adapters.state.line_migration_queries import ProjectMoved
from worker.adapters.state.line_queries import LineMove, LineMoved, LinePart, VersionFacts
from worker.adapters.state.store import Store
from worker.core import line_state
from worker.core.line_migration import Planned, plan, state_of
from worker.core.lines import LineBy, ProjectVersion
from worker.service.line_delta import VersionsSource, versions_of

ATTEMPTS = 3  # reads of a project a job keeps moving, before its line is left to the jobs


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    source: str  # the events' source: a line's first part, as the jobs make it
    zone: tzinfo
    line_by: LineBy
    dry_run: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one line: ``written`` (or ``would write``), ``kept`` (it had a state),
    or ``left to the jobs`` (a job moved it, or its project, meanwhile)."""

    planned: Planned
    result: str
    findings: int = 0  # the stored DT findings read
    line_findings: int = 0
    open: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Migrated:
    outcomes: list[Outcome]
    refused: str | None = None  # why no line was built (then the jobs build them)
    built: int = 0  # lines that had a state already, their names not asked about again


async def migrate(store: Store, dt: VersionsSource | None, options: Options) -> Migrated:
    # a name whose every stored project is a version of a line with a state is done: DT is not
    # asked about it again (`state migrate` runs at every rollout)
    lines = [line for line in await store.lines() if line.current_project is not None]
    done = {version.project for line in lines for version in line.versions}
    every = await store.stored_projects()
    names = {p.name for p in every if p.uuid not in done}
    projects = [p for p in every if p.name in names]
    if dt is None and options.line_by.mode == "tag" and projects:
        return Migrated(
            [],
            refused=(
                "DTRACK_WORKER_LINE_BY takes the track from project tags, which the store does "
                "not keep, and DT is not asked (DTRACK_WORKER_DT_URL is not set): no line was "
                "built; each line is built by its first job instead, which publishes `opened` "
                "for each of its findings (set DTRACK_WORKER_DT_URL and _API_KEY and run this "
                "again to avoid that)"
            ),
        )
    listed: dict[str, Sequence[ProjectVersion]] | None = None
    if dt is not None:
        listed = {name: await versions_of(dt, name) for name in sorted(names)}
    planned = plan(projects, listed, options.line_by, options.source)
    return Migrated([await _line(store, p, options) for p in planned], built=len(lines))


async def _line(store: Store, planned: Planned, options: Options) -> Outcome:
    for _ in range(ATTEMPTS):
        stored = await store.line(planned.line.id)
        if stored.current_project is not None:  # a line has its state from then on
            return Outcome(planned, "kept")
        start = planned.start
        revision, findings = await store.project_findings(start.uuid)
        state = state_of(planned.line, findings, options.zone, project_version=start.version)
        counts = line_state.counts(state)
        outcome = Outcome(
            planned,
            "would write" if options.dry_run else "written",
            findings=len(findings),
            line_findings=len(state.findings),
            open=sum(counts.values()),
        )
        if options.dry_run:
            return outcome
        versions = [
            VersionFacts(v.uuid, v.version, v.is_latest, v.active, v.last_bom_import)
            for v in planned.versions
        ]
        move = LineMove(
            expected_revision=stored.revision,
            current_project=start.uuid,
            current_version=start.version,
            state=line_state.pack(state),
            open_counts=counts,
            oldest_open_at=line_state.oldest_open(state),
            events=lambda _: [],  # silent: a consumer sees v2 events from the next job on
            changed=False,
        )
        try:
            await store.write_line(LinePart(planned.line, versions, move), start.uuid, revision)
        except ProjectMoved:
            continue  # a job applied an export of it meanwhile: read its findings again
        except LineMoved:
            break  # a job moved the line itself: its state is newer than ours
        return outcome
    return Outcome(planned, "left to the jobs")


def describe(outcome: Outcome) -> str:
    """One line of the command's output for people."""
    planned, line = outcome.planned, outcome.planned.line
    name = "/".join(p for p in (line.group, line.name) if p)
    label = name if line.track is None else f"{name}#{line.track}"
    start = planned.start
    what = {
        "kept": "kept: it has a state already (a job or an earlier migration built it)",
        "left to the jobs": "left to the jobs: a job moved it or its project meanwhile",
    }.get(outcome.result)
    if what is None:
        what = (
            f"{outcome.result} from {start.version or '?'} ({start.uuid}, {planned.because}): "
            f"{outcome.line_findings} line findings, {outcome.open} open, from "
            f"{outcome.findings} stored findings"
        )
    return f"{label} (line {line.id}): {what}"
