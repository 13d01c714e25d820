"""What the console reads and acts through, opened with its application and closed with it:
its own broker connection, DT client and state store, and the health checks, refreshed in the
background so that a page never waits on a check's timeout."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from worker.adapters.broker import Broker
from worker.adapters.dtrack import DtClient
from worker.adapters.state.store import Store
from worker.core import topology
from worker.core.config import Settings
from worker.service import checks
from worker.service.console.redaction import Scrubber
from worker.service.console.runs import SyncRuns

log = structlog.get_logger(__name__)

HEALTH_SECONDS = 30.0  # checked this often, and when a page finds the results older than:
STALE_SECONDS = 5.0


@dataclasses.dataclass(slots=True)
class Health:
    results: list[checks.Check] = dataclasses.field(default_factory=list)
    checked_at: float | None = None  # time.time() of the last round
    wanted: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def want_fresh(self, now: float) -> None:
        """Ask for a new round when the last is older than STALE_SECONDS (never waits)."""
        if self.checked_at is None or now - self.checked_at > STALE_SECONDS:
            self.wanted.set()


@dataclasses.dataclass(slots=True)
class Sources:
    settings: Settings
    broker: Broker
    scrub: Scrubber
    runs: SyncRuns
    health: Health
    # one parked-queue operation at a time: each takes every parked message for its duration
    # (as `dtrack-worker parked` does), so a listing would hide them from a replay
    parked_lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    dt: DtClient | None = None  # None: DTRACK_WORKER_DT_URL is not set
    store: Store | None = None  # None: the state store is not used (EMIT=snapshot)


SOURCES = web.AppKey("console_sources", Sources)


def lifecycle(sources: Sources) -> Callable[[web.Application], AsyncIterator[None]]:
    async def run(_: web.Application) -> AsyncIterator[None]:
        settings = sources.settings
        async with contextlib.AsyncExitStack() as stack:
            await sources.broker.start()
            stack.push_async_callback(sources.broker.close)
            if settings.dt.url and settings.dt.api_key:
                sources.dt = await stack.enter_async_context(DtClient.open(settings.dt))
            if settings.state.deltas:
                # the workers migrate; the console only reads
                sources.store = await stack.enter_async_context(
                    Store.open(settings.state, migrate=False)
                )
                sources.runs.store = sources.store  # the sync runs are kept there too
            refresher = asyncio.create_task(_refresh_forever(sources))
            stack.push_async_callback(sources.runs.close)
            yield
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher

    return run


def create(settings: Settings, scrub: Scrubber) -> Sources:
    broker = Broker(settings.broker, topology.configured(settings.broker))
    return Sources(settings, broker, scrub, SyncRuns(settings, broker, scrub), Health())


async def refresh(sources: Sources) -> None:
    settings = sources.settings
    rounds = [checks.broker(settings, sources.broker.topology)]
    if sources.dt is not None:
        rounds.append(checks.dt(sources.dt, settings.dt.display_url or ""))
    results: list[checks.Check] = []
    for found in await asyncio.gather(*rounds):
        results.extend(found)
    if sources.dt is None:
        results.append(
            checks.Check("dt", False, "DTRACK_WORKER_DT_URL or DTRACK_WORKER_DT_API_KEY not set")
        )
    results.append(await checks.state(settings.state))
    sources.health.results = results
    sources.health.checked_at = time.time()


async def _refresh_forever(sources: Sources) -> None:
    while True:
        try:
            await refresh(sources)
        except Exception:  # a check that breaks must not end the refreshing
            log.exception("console.health_failed")
        sources.health.wanted.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HEALTH_SECONDS):
                await sources.health.wanted.wait()
