"""Coalescing within a worker: which fetch of a project can stand in for a job, and the
findings DT said it retracted that such a fetch must label (its own job's and those of the
jobs it stands in for)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime

from worker.core.jobs import Job

MAX_RETRACTIONS = 50_000  # noted and not yet fetched, over all projects: beyond, the oldest go


@dataclasses.dataclass(frozen=True, slots=True)
class Fetch:
    """One fetch of a project's export, as ``Freshness.fetching`` gives it."""

    project: str
    started: datetime
    _owner: Freshness

    def retracted(self) -> frozenset[str]:
        """The findings retraction jobs of the project named, noted by now: the export this
        fetch read resolves those it no longer holds as ``retracted_by_dt``."""
        return frozenset(self._owner._retractions.get(self.project, {}))


class Freshness:
    """Coalescing: which fetch of a project can stand in for a job accepted at a given time.

    A fetch that *started after* a job was accepted saw everything the job's notification
    announced, so the job needs no fetch of its own once that fetch has succeeded. Jobs wait
    for an in-flight fetch that qualifies, and fetch themselves if it fails.
    """

    def __init__(self) -> None:
        self._succeeded: dict[str, datetime] = {}
        self._in_flight: dict[str, tuple[datetime, asyncio.Future[bool]]] = {}
        # project -> finding key -> when the retraction job naming it was accepted
        self._retractions: dict[str, dict[str, datetime]] = {}
        self._noted = 0

    async def covers(self, job: Job, *, since: datetime | None = None) -> bool:
        """``covered`` for a job; a finding it says DT retracted is noted first, for the fetch
        that stands in for it (or its own) to label. ``since``: only a fetch started after
        then as well (DT's analysis of the job's BOM upload was seen done then)."""
        accepted = datetime.fromisoformat(job.accepted_at)
        if job.retracted_finding is not None:
            self._note(job.project_uuid, job.retracted_finding, accepted)
        return await self.covered(job.project_uuid, max(accepted, since or accepted))

    def _note(self, project: str, key: str, accepted: datetime) -> None:
        keys = self._retractions.setdefault(project, {})
        if key not in keys:
            self._noted += 1
        keys[key] = max(accepted, keys.get(key, accepted))
        if self._noted > MAX_RETRACTIONS:  # bounded memory: the oldest half goes
            noted = sorted(
                (at, name, finding)
                for name, found in self._retractions.items()
                for finding, at in found.items()
            )
            for _, name, finding in noted[: MAX_RETRACTIONS // 2]:
                self._forget(name, finding)

    def _forget(self, project: str, key: str) -> None:
        keys = self._retractions.get(project, {})
        if keys.pop(key, None) is not None:
            self._noted -= 1
        if not keys:
            self._retractions.pop(project, None)

    async def covered(self, project: str, accepted: datetime) -> bool:
        done = self._succeeded.get(project)
        if done is not None and done > accepted:
            return True
        running = self._in_flight.get(project)
        if running is not None and running[0] > accepted:
            return await asyncio.shield(running[1])
        return False

    @contextlib.contextmanager
    def fetching(self, project: str) -> Iterator[Fetch]:
        started = datetime.now(UTC)
        outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._in_flight[project] = (started, outcome)
        succeeded = False
        try:
            yield Fetch(project, started, self)
            succeeded = True
            # the retractions accepted before it started are done with: this export was taken
            # after DT sent them; later ones wait for a fetch that started after them
            for key, accepted in list(self._retractions.get(project, {}).items()):
                if accepted <= started:
                    self._forget(project, key)
        finally:
            if self._in_flight.get(project, (None, None))[1] is outcome:
                del self._in_flight[project]
            outcome.set_result(succeeded)
            previous = self._succeeded.get(project)
            if succeeded and (previous is None or started > previous):
                self._succeeded[project] = started
            if len(self._succeeded) > 50_000:  # bounded memory: forget the oldest half
                for key in sorted(self._succeeded, key=self._succeeded.__getitem__)[:25_000]:
                    del self._succeeded[key]
