"""Running the service: the receiver, the worker, or both in one process (``serve``).

Every mode serves /healthz, /readyz and /metrics on DTRACK_WORKER_LISTEN; the receiver adds
POST /webhook. The aiohttp application owns the lifecycle: the broker connection, the DT
session and the consumer start with it and stop with it (SIGTERM/SIGINT: stop consuming,
drain within DTRACK_WORKER_SHUTDOWN_GRACE, close, exit 0).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from worker.adapters import schemas
from worker.adapters.broker import Broker
from worker.adapters.dtrack import DtClient
from worker.adapters.metrics import ReceiverMetrics, WorkerMetrics
from worker.adapters.timezones import zone
from worker.core import topology
from worker.core.config import Settings
from worker.service import receiver
from worker.service.backfill import backfill
from worker.service.consumer import Worker, WorkerOptions
from worker.service.reconcile import Reconciler

log = structlog.get_logger(__name__)


def build(
    settings: Settings, *, receive: bool = True, work: bool = False
) -> tuple[web.Application, Broker]:
    """The application for the mode; nothing connects until the app starts."""
    registry = CollectorRegistry()
    broker = Broker(settings.broker, topology.build(settings.broker.prefix))
    contracts = schemas.load()
    worker_holder: list[Worker] = []
    if work:
        dt_url, _ = settings.dt.require()  # fail at start, with what to set
        dt_zone = zone(settings.dt.timezone)

    def ready() -> bool:
        return broker.ready and all(w.ready for w in worker_holder)

    app = receiver.create_app(
        settings.receiver,
        contracts,
        broker,
        ReceiverMetrics.create(registry),
        webhook=receive,
        ready=ready,
    )

    async def broker_lifecycle(_: web.Application) -> AsyncIterator[None]:
        await broker.start()
        yield
        await broker.close()

    app.cleanup_ctx.append(broker_lifecycle)
    if work:
        metrics = WorkerMetrics.create(registry)

        def on_fetch(seconds: float, size: int, status: int) -> None:
            metrics.fetch_seconds.observe(seconds)
            metrics.dt_responses.labels(status=str(status)).inc()
            if status == 200:
                metrics.fetch_bytes.observe(size)

        options = WorkerOptions(
            source=settings.dt.source or dt_url,
            zone=dt_zone,
            max_attempts=settings.worker.max_attempts,
            prefetch=settings.worker.prefetch,
            shutdown_grace=settings.worker.shutdown_grace,
        )

        async def worker_lifecycle(_: web.Application) -> AsyncIterator[None]:
            async with DtClient.open(settings.dt, on_fetch=on_fetch) as dt:
                running = Worker(broker, dt, contracts, metrics, options)
                worker_holder.append(running)
                await running.start()
                reconciler = None
                if (interval := settings.worker.reconcile_interval) is not None:
                    reconciler = Reconciler(
                        broker, lambda: backfill(dt, broker, trigger="RECONCILE"), interval
                    )
                    starting = asyncio.create_task(_when_ready(broker, reconciler.start))
                yield
                if reconciler is not None:
                    starting.cancel()
                    await reconciler.stop()
                await running.stop()

        app.cleanup_ctx.append(worker_lifecycle)  # stops before the broker closes
    return app, broker


async def _when_ready(broker: Broker, then: Callable[[], Awaitable[None]]) -> None:
    while not broker.ready:  # noqa: ASYNC110 - the broker connects in its own task
        await asyncio.sleep(0.1)
    await then()


def _loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # not on every platform; asyncio's loop works, only slower
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(settings: Settings, *, receive: bool, work: bool) -> None:
    app, _ = build(settings, receive=receive, work=work)
    config = settings.receiver
    mode = "serve" if receive and work else "receiver" if receive else "worker"
    if receive and config.webhook_token is None:
        log.warning(
            "receiver.insecure_no_auth",
            message="accepting webhooks WITHOUT a token (--insecure-no-auth)",
        )
    log.info(
        f"{mode}.starting",
        listen=f"{config.host}:{config.port}",
        broker=settings.broker.display_url,
        prefix=settings.broker.prefix,
        **(
            {
                "token_header": config.token_header if config.webhook_token else None,
                "trigger_groups": sorted(config.trigger_groups),
                "max_body": config.max_body,
                "coalesce_seconds": config.coalesce_seconds,
            }
            if receive
            else {}
        ),
        **(
            {
                "dt_url": settings.dt.url,
                "dt_concurrency": settings.dt.concurrency,
                "max_attempts": settings.worker.max_attempts,
                "shutdown_grace_s": settings.worker.shutdown_grace,
            }
            if work
            else {}
        ),
    )
    web.run_app(
        app,
        host=config.host,
        port=config.port,
        access_log=None,  # request_context writes one line per request
        print=None,
        shutdown_timeout=10,
        loop=_loop(),
    )
    log.info(f"{mode}.stopped")
