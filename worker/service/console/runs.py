"""Syncs started from the console, followed as ``dtrack-worker sync --wait`` follows them: one
job each, a progress queue of the run's own, worker.service.sync.follow reading it. Each run
keeps its lines for the page and wakes the Server-Sent Events streams that show them live."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from worker.adapters.amqp import connect_once
from worker.adapters.broker import Broker
from worker.core import jobs
from worker.core.config import Settings
from worker.service import sync
from worker.service.console.redaction import Scrubber

MAX_RUNS = 20  # the latest runs stay on their pages; older ones are forgotten
FOLLOW_SECONDS = 600.0  # as `sync --wait`'s default
READY_SECONDS = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class Settled:
    target: sync.Target
    job_id: str
    step: str

    @property
    def synced(self) -> bool:
        return self.step in sync.SYNCED


class SyncRun:
    def __init__(self, run_id: str, jobs_of_run: dict[str, sync.Target]) -> None:
        self.id = run_id.split(":", 1)[1]
        self.run_id = run_id
        self.jobs = jobs_of_run
        self.started_at = datetime.now(UTC)
        self.lines: list[str] = []
        self.settled: list[Settled] | None = None  # set when the run ends
        self._changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def summary(self) -> str | None:
        if self.settled is None:
            return None
        synced = sum(s.synced for s in self.settled)
        return f"sync: {synced} of {len(self.settled)} projects synced"

    def say(self, line: str) -> None:
        self.lines.append(line)
        self.wake()

    def finish(self, last: dict[str, str]) -> None:
        self.settled = [Settled(self.jobs[job], job, step) for job, step in last.items()]
        self.wake()

    def wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, within: float) -> None:
        """Until a line is added or the run ends, or ``within`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._changed.wait()


class SyncRuns:
    def __init__(self, settings: Settings, broker: Broker, scrub: Scrubber) -> None:
        self._settings = settings
        self._broker = broker
        self._scrub = scrub
        self._runs: OrderedDict[str, SyncRun] = OrderedDict()
        self.closing = False  # the console stops: live streams end

    async def end_streams(self, _: object = None) -> None:
        """For the application's on_shutdown: every live stream ends now, so the server's
        shutdown does not wait for syncs that may take minutes."""
        self.closing = True
        for run in self._runs.values():
            run.wake()

    def get(self, run_id: str) -> SyncRun | None:
        return self._runs.get(run_id)

    def latest(self) -> list[SyncRun]:
        return list(reversed(self._runs.values()))

    async def start(self, targets: list[sync.Target]) -> SyncRun:
        """One SYNC job per project, queued with the run's progress queue; raises what the
        broker raises when the jobs cannot be queued (then nothing was queued)."""
        planned = sync.run_for(targets)
        made, queued = planned.jobs, planned.targets
        run = SyncRun(planned.id, planned.targets)
        await self._broker.wait_ready(within=READY_SECONDS)  # connecting since the start
        connection = await connect_once(self._settings.broker)
        try:
            channel = await connection.channel()
            # declared before the jobs go, so that no report is missed; gone with the connection
            queue = await channel.declare_queue(
                f"{self._settings.broker.prefix}.console.{run.id[:8]}", exclusive=True
            )
            await self._broker.enqueue(made, headers={jobs.PROGRESS_HEADER: queue.name})
        except BaseException:
            await connection.close()
            raise
        say = self._said(run)
        for job in made:
            say(f"{queued[job.job_id].label}: queued (job {job.job_id})")

        async def follow() -> None:
            async with connection:
                last = await sync.follow(channel, queue, queued, within=FOLLOW_SECONDS, say=say)
            run.finish(last)

        run.task = asyncio.create_task(follow())
        self._runs[run.id] = run
        while len(self._runs) > MAX_RUNS:
            _, old = self._runs.popitem(last=False)
            if old.task is not None:
                old.task.cancel()
        return run

    def _said(self, run: SyncRun) -> Callable[[str], None]:
        return lambda line: run.say(self._scrub(line))

    async def close(self) -> None:
        tasks = [run.task for run in self._runs.values() if run.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
