"""`state resync` with DTRACK_WORKER_TRACK=line: for each line the project is a version of,
``opened`` again (finding-change.v2, ``change.resync`` true) for every open finding of the
line's stored state, in the line's sequence, through the outbox (committed with the line's
current project, optimistic on the line's revision: a job moving the line meanwhile makes it
read again). A line is resynced once per run, however many of its versions are named."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from worker.adapters.state.line_queries import LineMove, LinePart, LineReport
from worker.adapters.state.store import Apply, Committed, StateMoved, StateUnavailable, Store
from worker.core import line_state, outbox_rounds
from worker.core.jobs import utc_timestamp
from worker.core.line_change_events import LineChangeEvents
from worker.core.line_compare import LineTransition
from worker.core.line_resync import resync
from worker.core.lines import Line

ATTEMPTS = 4  # a job moving the line meanwhile: read it again this often


class LineResync:
    def __init__(
        self,
        store: Store,
        source: str,
        apply: Callable[[Apply], Awaitable[Committed]],
        committed: Callable[[Committed], None],
    ) -> None:
        self._store = store
        self._source = source
        self._apply = apply
        self._committed = committed
        self._done: set[tuple[str, str]] = set()  # (run, line id)

    async def project(self, project_uuid: str, run: str) -> int:
        """The events published for the lines ``project_uuid`` is a version of."""
        published = 0
        for report in await self._store.lines():
            if (run, report.id) in self._done or not any(
                v.project == project_uuid for v in report.versions
            ):
                continue
            self._done.add((run, report.id))
            published += await self._line(report, run)
        return published

    async def _line(self, report: LineReport, run: str) -> int:
        line = Line(report.source, report.group, report.name, report.track)
        for _ in range(ATTEMPTS):
            stored = await self._store.line(line.id)
            current = stored.current_project
            if current is None:  # never moved: no state, nothing open
                return 0
            try:
                state = line_state.unpack(
                    line, await self._store.line_state(line.id, stored.revision)
                )
            except StateMoved:
                continue
            transitions = resync(state)
            now = time.time()
            events = LineChangeEvents(
                source=self._source,
                line=line,
                project={"uuid": current, "name": line.name, "version": stored.current_version},
                basis=f"resync {run}",
                fpf=None,
                time=utc_timestamp_of(now),
                resync=True,
            )

            def numbered(
                first: int,
                events: LineChangeEvents = events,
                found: list[LineTransition] = transitions,
            ) -> list[outbox_rounds.Round]:
                return outbox_rounds.framed(
                    [events.event(t, first + n) for n, t in enumerate(found)]
                )

            move = LineMove(
                expected_revision=stored.revision,
                current_project=current,
                current_version=stored.current_version,
                state=None,  # the state and counts stand
                open_counts=None,
                events=numbered,
                changed=False,
            )
            try:
                done = await self._apply(
                    Apply(
                        project=current,
                        name=None,
                        version=None,
                        expected_revision=None,
                        writes=(),
                        events=lambda _: [],
                        exported_at=None,
                        outcome="resync",
                        now=now,
                        deleted=None,  # the current version may be one DT deleted
                        line=(LinePart(line, (), move),),
                    )
                )
            except StateMoved:
                continue
            self._committed(done)
            return len(transitions)
        raise StateUnavailable(f"line {line.key} moved {ATTEMPTS} times while it was resynced")


def utc_timestamp_of(moment: float) -> str:
    return utc_timestamp(datetime.fromtimestamp(moment, UTC))
