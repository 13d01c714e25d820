"""A project DT deleted, on the lines it is a version of (DTRACK_WORKER_TRACK=line; docs/lines.md,
"A version DT deletes"). ``DeltaBase.gone`` commits what this plans with the project's view's
close, in one transaction:

* every line it is a version of forgets it (its ``line_versions`` rows go);
* a line whose current version it was (or whose current version DT deleted before: the
  version it was to follow may be this one) is listed from DT again
  (``line_delta.versions_of``: a failure is a retry, never data), without it:
  * no version of the line left: every open line finding resolves, ``project_deleted``, on
    the line's own sequence (``core.line_gone``);
  * versions left: a SYNC job of the line's current version (``lines.current``) is queued, and
    the line moves with its export as with any switch; never without one. None active: the
    line stands.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from worker.adapters.state import line_queries
from worker.adapters.state.line_queries import LineMove, LinePart, StoredLine
from worker.adapters.state.store import Store
from worker.core import line_gone, line_state, outbox_rounds
from worker.core.jobs import Job, job_id, utc_timestamp
from worker.core.line_change_events import LineChangeEvents
from worker.core.line_compare import LineTransition
from worker.core.lines import Line, ProjectVersion, current, line_of
from worker.service.line_delta import LineOptions, VersionsSource, versions_of

ATTEMPTS = 4  # a job moving the line meanwhile: plan again this often


@dataclasses.dataclass(frozen=True, slots=True)
class LineGoneWork:
    """What a deleted project does to its lines: the parts to commit with the view's close, in
    its transaction (each forgets the project in every line; each with a move closes its line),
    the v2 transitions they publish, and the SYNC jobs to queue once they are committed."""

    parts: tuple[LinePart, ...] = ()
    transitions: tuple[LineTransition, ...] = ()
    follow: tuple[Job, ...] = ()


NOTHING = LineGoneWork()


class LineGone:
    def __init__(self, store: Store, dt: VersionsSource, options: LineOptions) -> None:
        self._store = store
        self._dt = dt
        self._options = options

    async def plan(self, job: Job, now: float) -> LineGoneWork:
        """The lines of ``job``'s project, DT having confirmed it is gone."""
        project = job.project_uuid
        parts: list[LinePart] = []
        transitions: list[LineTransition] = []
        follow: list[Job] = []
        held_lines = await self._store.read(
            line_queries.holding, project, self._options.source, job.project_name
        )
        listed: dict[str, list[ProjectVersion]] = {}  # DT's versions by name, listed once
        for held in held_lines:
            line, move = held.line, None
            stored = await self._store.line(line.id)
            if held.adrift:  # its current version is this one, or was deleted before
                left = await self._versions(line, project, listed)
                head = current(left)
                if head is not None:
                    follow.append(_sync(job, head, now))
                elif not left:
                    move, closed = await self._closed(line, stored, job, now)
                    transitions += closed
            parts.append(LinePart(line, (), move, forget=project))
        # the parts go with the view's close: one forgets the project in every line; the
        # others are there to close their lines (more than one: LINE_BY changed since)
        moving = [p for p in parts if p.move is not None]
        kept = moving or parts[:1]
        return LineGoneWork(tuple(kept), tuple(transitions), tuple(follow))

    async def _versions(
        self, line: Line, gone: str, listed: dict[str, list[ProjectVersion]]
    ) -> list[ProjectVersion]:
        """The line's versions DT lists now, but the one it deleted; DT asked once per name
        in a plan (``listed``: the lines of one name, by LINE_BY's tracks or changed since)."""
        if line.name not in listed:
            listed[line.name] = await versions_of(self._dt, line.name)
        options = self._options
        return [
            v
            for v in listed[line.name]
            if v.uuid != gone and line_of(v, options.line_by, line.source) == line
        ]

    async def _closed(
        self, line: Line, stored: StoredLine, job: Job, now: float
    ) -> tuple[LineMove | None, list[LineTransition]]:
        """Every version gone: the line's open findings resolved (StateMoved: it moved since)."""
        state = line_state.unpack(line, await self._store.line_state(line.id, stored.revision))
        closed = line_gone.deleted(state, now)
        if not closed.transitions:  # nothing open: the line stands
            return None, []
        when = utc_timestamp(datetime.fromtimestamp(now, UTC))
        # the deleted version the line stands on (this job's, or one deleted before)
        project, version = stored.current_project or job.project_uuid, stored.current_version
        events = LineChangeEvents(
            source=self._options.source,
            line=line,
            project={"uuid": project, "name": line.name, "version": version},
            basis=f"gone {job.job_id}",
            fpf=None,
            time=when,
        )
        found = closed.transitions

        def numbered(first: int) -> list[outbox_rounds.Round]:
            return outbox_rounds.framed([events.event(t, first + n) for n, t in enumerate(found)])

        move = LineMove(
            expected_revision=stored.revision,
            current_project=project,  # as it was: status says it is deleted
            current_version=stored.current_version,
            state=line_state.pack(closed.state),
            open_counts={},
            events=numbered,
            changed=True,
            transitions=found,
            oldest_open_at=None,
        )
        return move, found


def _sync(job: Job, head: ProjectVersion, now: float) -> Job:
    """The SYNC job of the line's new current version, as `sync` queues one; the same job id
    for every attempt of ``job``."""
    run = f"gone:{job.job_id}"
    return Job(
        job_id=job_id(run, head.uuid),
        project_uuid=head.uuid,
        project_name=head.name,
        trigger="SYNC",
        notification_id=run,
        accepted_at=utc_timestamp(datetime.fromtimestamp(now, UTC)),
        correlation_id=job.correlation_id,
    )
