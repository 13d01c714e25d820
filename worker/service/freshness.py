"""Coalescing within a worker: which fetch of a project can stand in for a job."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime


class Freshness:
    """Coalescing: which fetch of a project can stand in for a job accepted at a given time.

    A fetch that *started after* a job was accepted saw everything the job's notification
    announced, so the job needs no fetch of its own once that fetch has succeeded. Jobs wait
    for an in-flight fetch that qualifies, and fetch themselves if it fails.
    """

    def __init__(self) -> None:
        self._succeeded: dict[str, datetime] = {}
        self._in_flight: dict[str, tuple[datetime, asyncio.Future[bool]]] = {}

    async def covered(self, project: str, accepted: datetime) -> bool:
        done = self._succeeded.get(project)
        if done is not None and done > accepted:
            return True
        running = self._in_flight.get(project)
        if running is not None and running[0] > accepted:
            return await asyncio.shield(running[1])
        return False

    @contextlib.contextmanager
    def fetching(self, project: str) -> Iterator[None]:
        started = datetime.now(UTC)
        outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._in_flight[project] = (started, outcome)
        succeeded = False
        try:
            yield
            succeeded = True
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
