"""Syncs started from the console, followed as ``dtrack-worker sync --wait`` follows them: one
job each, a progress queue of the run's own, worker.service.sync.follow reading it. Each run
keeps its lines for the page and wakes the Server-Sent Events streams that show them live.

With a state store, each run and its log are written to it as they happen (console_runs), so
a restarted console still shows the latest runs; a run that was still going when the console
stopped shows as interrupted (its jobs went on in the workers). Without a store (EMIT=snapshot)
the latest runs live in memory until the console restarts. Once every job settled, the run
waits a little for the relay to publish the events its jobs committed ("published")."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from worker.adapters.amqp import connect_once
from worker.adapters.broker import Broker
from worker.adapters.state import console_activity, console_runs
from worker.adapters.state.console_runs import StoredRun
from worker.adapters.state.store import StateUnavailable, Store
from worker.core import jobs
from worker.core.config import Settings
from worker.service import sync
from worker.service.console.redaction import Scrubber

log = structlog.get_logger(__name__)

MAX_RUNS = 20  # the latest runs listed (and kept in memory)
MAX_FOLLOWED = 2 * MAX_RUNS  # runs followed at once (each a connection to RabbitMQ, 10 minutes)
FOLLOW_SECONDS = 600.0  # as `sync --wait`'s default
READY_SECONDS = 10.0
PUBLISH_SECONDS = 10.0  # after the jobs settled, how long the run waits for the relay
POLL_SECONDS = 0.2
SAVE_SECONDS = 5.0  # when the console stops, how long a run's last lines may take to store
INTERRUPTED = "interrupted: the console stopped before this run ended (its jobs went on)"


class TooManyRuns(Exception):
    """MAX_FOLLOWED runs are followed already: this one is not started (nothing queued)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Settled:
    target: sync.Target
    job_id: str
    step: str

    @property
    def synced(self) -> bool:
        return self.step in sync.SYNCED


@dataclasses.dataclass(frozen=True, slots=True)
class Applied:
    project: str
    sequence: int  # the last the job's transaction used
    events: int


class SyncRun:
    def __init__(
        self, run_id: str, jobs_of_run: dict[str, sync.Target], started_at: datetime | None = None
    ) -> None:
        self.id = run_id.split(":", 1)[1]
        self.run_id = run_id
        self.jobs = jobs_of_run
        self.started_at = started_at or datetime.now(UTC)
        self.lines: list[str] = []
        self.settled: list[Settled] | None = None  # set when the run ends
        self.interrupted = False  # read from the store, ended by a restart of the console
        self.applied: dict[str, Applied] = {}  # by job: what the relay has to publish
        self._changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def summary(self) -> str | None:
        if self.interrupted:
            return INTERRUPTED
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

    def waiter(self) -> asyncio.Event:
        """Set at the next change (take it before looking, so no change is missed)."""
        return self._changed

    async def changed(self, within: float) -> None:
        """Until a line is added or the run ends, or ``within`` seconds."""
        await _wait(self._changed, within)

    @classmethod
    def of(cls, stored: StoredRun) -> SyncRun:
        """A run as the store kept it: ended, or interrupted by a restart."""
        targets = {job: sync.Target(*target) for job, target in stored.targets.items()}
        run = cls(stored.run_id, targets, datetime.fromtimestamp(stored.started_at, UTC))
        run.lines = list(stored.lines)
        if stored.settled is None:
            run.interrupted = True
        else:
            run.settled = [
                Settled(targets[job], job, step)
                for job, step in stored.settled.items()
                if job in targets
            ]
        return run


def _failed(task: asyncio.Task[None]) -> None:
    """A run whose following failed (its connection lost): said, and its exception retrieved."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("console.run_not_followed", error=f"{type(exc).__name__}: {exc}")


async def _wait(event: asyncio.Event, within: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            await event.wait()


class SyncRuns:
    def __init__(self, settings: Settings, broker: Broker, scrub: Scrubber) -> None:
        self._settings = settings
        self._broker = broker
        self._scrub = scrub
        self._runs: OrderedDict[str, SyncRun] = OrderedDict()
        self.store: Store | None = None  # set when the console's store is open
        self.closing = False  # the console stops: live streams end
        # runs still followed, out of the listing (more than MAX_RUNS): shown live by id
        self._evicted: dict[str, SyncRun] = {}

    async def end_streams(self, _: object = None) -> None:
        """For the application's on_shutdown: every live stream ends now, so the server's
        shutdown does not wait for syncs that may take minutes."""
        self.closing = True
        for run in [*self._runs.values(), *self._evicted.values()]:
            run.wake()

    async def get(self, run_id: str) -> SyncRun | None:
        """The run, from memory, else from the store (StateUnavailable: the store failed)."""
        run = self._runs.get(run_id) or self._evicted.get(run_id)
        if run is not None or self.store is None:
            return run
        stored = await self.store.read(console_runs.load_run, f"sync:{run_id}")
        return None if stored is None else SyncRun.of(stored)

    async def latest(self, stored: list[StoredRun] | None = None) -> list[SyncRun]:
        """The latest MAX_RUNS runs, newest first: those of this console's life, and before
        them those the store kept (``stored``: read already)."""
        live = list(reversed(self._runs.values()))
        if self.store is None:
            return live
        if stored is None:
            try:
                stored = await self.store.read(console_runs.latest_runs, MAX_RUNS)
            except StateUnavailable as exc:
                log.warning("console.runs_unreadable", error=str(exc))
                return live
        known = {run.id for run in live}
        found = live + [SyncRun.of(s) for s in stored if s.run_id.split(":", 1)[1] not in known]
        return sorted(found, key=lambda run: run.started_at, reverse=True)[:MAX_RUNS]

    async def start(self, targets: list[sync.Target]) -> SyncRun:
        """One SYNC job per project, queued with the run's progress queue; raises what the
        broker raises when the jobs cannot be queued (then nothing was queued)."""
        self._refuse_past_the_most_followed()
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

        def seen(job: str, step: str, update: dict[str, Any]) -> None:
            if step == "applied" and isinstance(update.get("sequence"), int):
                run.applied[job] = Applied(
                    queued[job].uuid, update["sequence"], int(update.get("outbox", 0))
                )

        async def follow() -> None:
            ending = asyncio.Event()
            saving = asyncio.create_task(self._save(run, ending))
            last: dict[str, str] | None = None
            try:
                async with connection:
                    last = await sync.follow(
                        channel, queue, queued, within=FOLLOW_SECONDS, say=say, seen=seen
                    )
                await self._published(run, last)
                ending.set()
                run.wake()
                # shielded: a stop meanwhile must not cancel the saving (see _store_at_stop)
                if await asyncio.shield(saving):  # every line stored, then how it ended
                    await self._finish_stored(run, last)
                run.finish(last)
            except BaseException:  # the console stops, or the following failed
                await self._store_at_stop(run, ending, saving, last)
                raise

        run.task = asyncio.create_task(follow())
        run.task.add_done_callback(_failed)
        self._runs[run.id] = run
        while len(self._runs) > MAX_RUNS:  # out of memory, not stopped: the store keeps it
            _, old = self._runs.popitem(last=False)
            if old.task is not None and not old.task.done():
                self._evicted[old.id] = old
                old.task.add_done_callback(functools.partial(self._ended, old.id))
        return run

    def _refuse_past_the_most_followed(self) -> None:
        followed = len(self._evicted) + sum(
            run.task is not None and not run.task.done() for run in self._runs.values()
        )
        if followed >= MAX_FOLLOWED:
            raise TooManyRuns(
                f"{followed} sync runs are still followed (at most {MAX_FOLLOWED} at once): "
                "nothing queued; start this one when one of them ended"
            )

    def _ended(self, run_id: str, _: object) -> None:
        self._evicted.pop(run_id, None)

    async def _store_at_stop(
        self,
        run: SyncRun,
        ending: asyncio.Event,
        saving: asyncio.Task[bool],
        last: dict[str, str] | None,
    ) -> None:
        """What the run said before the console stopped (or its following failed) is stored,
        not dropped with it (a store slow to answer: a worker's transaction holds it), and how
        it ended when its jobs had settled; else it shows as interrupted. SAVE_SECONDS at most."""
        ending.set()
        run.wake()
        try:
            async with asyncio.timeout(SAVE_SECONDS):
                if await asyncio.shield(saving) and last is not None:
                    await self._finish_stored(run, last)
        except (TimeoutError, asyncio.CancelledError):
            log.warning("console.run_not_saved", run=run.id, error="the console stopped first")
        finally:
            saving.cancel()

    def _said(self, run: SyncRun) -> Callable[[str], None]:
        return lambda line: run.say(self._scrub(line))

    async def _published(self, run: SyncRun, last: dict[str, str]) -> None:
        """For each job that committed events: "published" once the relay sent them (its
        outbox rows are gone), or how many still wait after PUBLISH_SECONDS."""
        waiting = {job: a for job, a in run.applied.items() if a.events and last[job] == "done"}
        if self.store is None or not waiting:
            return
        deadline = time.monotonic() + PUBLISH_SECONDS
        while waiting:
            for job, applied in list(waiting.items()):
                try:
                    left = await self.store.read(
                        console_activity.unpublished, applied.project, applied.sequence
                    )
                except StateUnavailable:
                    left = -1
                if left == 0:
                    del waiting[job]
                    run.say(f"{run.jobs[job].label}: published: the relay sent its "
                            f"{applied.events} events")  # fmt: skip
                elif time.monotonic() > deadline:
                    del waiting[job]
                    run.say(f"{run.jobs[job].label}: not published yet after "
                            f"{PUBLISH_SECONDS:g} s: its events wait in the outbox for the "
                            "relay (see the overview's outbox lag)")  # fmt: skip
            if waiting:
                await asyncio.sleep(POLL_SECONDS)

    async def _save(self, run: SyncRun, ending: asyncio.Event) -> bool:
        """The run in the store, then each line as it is said, until ``ending`` is set and
        every line is stored: True. A store that fails stops the saving (logged): False, and
        the run goes on in memory."""
        if self.store is None:
            return False
        store, saved = self.store, 0
        targets = {job: (t.uuid, t.name, t.version) for job, t in run.jobs.items()}
        stored = StoredRun(run.run_id, run.started_at.timestamp(), targets, None, None, [])
        try:
            await store.write(console_runs.save_run, stored)
            while True:
                waiter, ended = run.waiter(), ending.is_set()
                lines = run.lines[saved:]
                if lines:
                    await store.write(console_runs.add_lines, run.run_id, saved, lines)
                    saved += len(lines)
                if ended:
                    return True
                await _wait(waiter, 5.0)
        except StateUnavailable as exc:
            log.warning("console.run_not_saved", run=run.id, error=str(exc))
            return False

    async def _finish_stored(self, run: SyncRun, last: dict[str, str]) -> None:
        assert self.store is not None
        synced = sum(step in sync.SYNCED for step in last.values())
        summary = f"sync: {synced} of {len(last)} projects synced"
        try:
            await self.store.write(console_runs.finish_run, run.run_id, summary, last)
        except StateUnavailable as exc:
            log.warning("console.run_not_saved", run=run.id, error=str(exc))

    async def close(self) -> None:
        tasks = [run.task for run in self._runs.values() if run.task is not None]
        tasks += [run.task for run in self._evicted.values() if run.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
