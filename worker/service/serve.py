"""Running the service: the receiver, the worker, or both in one process (``serve``).

Every mode serves /healthz, /readyz and /metrics on DTRACK_WORKER_LISTEN; the receiver adds
POST /webhook. The aiohttp application owns the lifecycle: the broker connection, the DT
session and the consumer start with it and stop with it (SIGTERM/SIGINT: stop consuming,
drain within DTRACK_WORKER_SHUTDOWN_GRACE, close, exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from worker import __version__
from worker.adapters import schemas
from worker.adapters.broker import Broker
from worker.adapters.dtrack import DtClient
from worker.adapters.listen import listening_socket
from worker.adapters.metrics import ReceiverMetrics, WorkerMetrics
from worker.adapters.state.store import Store
from worker.adapters.timezones import zone
from worker.core import job_budget, topology
from worker.core.config import ReceiverSettings, Settings
from worker.service import checks, collector, filtering, queue_gauges, receiver
from worker.service.analysis_gate import AnalysisGate
from worker.service.backfill import backfill
from worker.service.console import serving as console
from worker.service.consumer import Worker, WorkerOptions
from worker.service.delta import DeltaOptions, Deltas
from worker.service.job_history import JobHistory
from worker.service.projects import Directory
from worker.service.protocol import JsonErrorsRunner
from worker.service.queue_gauges import QueueGauges
from worker.service.reconcile import Reconciler
from worker.service.relay import Relay
from worker.service.state_metrics import StateGauges, refresh_forever
from worker.service.store_space import reclaim_forever

log = structlog.get_logger(__name__)


def build(
    settings: Settings, *, receive: bool = True, work: bool = False
) -> tuple[web.Application, Broker]:
    """The application for the mode; nothing connects until the app starts."""
    registry = CollectorRegistry()
    delays = (settings.receiver.coalesce_seconds,) if receive else ()
    broker = Broker(settings.broker, topology.configured(settings.broker, delays=delays))
    contracts = schemas.load()
    workers: list[Worker] = []
    stores: list[Store] = []  # the worker's state store, once open: /readyz probes it

    def ready() -> bool:
        return broker.ready and all(w.ready for w in workers)

    app = receiver.create_app(
        settings.receiver,
        contracts,
        broker,
        ReceiverMetrics.create(registry),
        webhook_route=receive,
        ready=ready,
        stores=stores,
    )

    async def broker_lifecycle(_: web.Application) -> AsyncIterator[None]:
        await broker.start()
        yield
        await broker.close()

    app.cleanup_ctx.append(broker_lifecycle)
    if work:  # stops before the broker closes
        app.cleanup_ctx.append(_worker(settings, broker, contracts, registry, workers, stores))
    return app, broker


def _worker(
    settings: Settings,
    broker: Broker,
    contracts: schemas.Contracts,
    registry: CollectorRegistry,
    workers: list[Worker],
    stores: list[Store],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The worker's lifecycle: DT client, consumer, reconciler; ``workers`` gets the worker,
    ``stores`` its state store while open."""
    settings.dt.require()  # fail at start, with what to set
    metrics = WorkerMetrics.create(registry)

    def on_fetch(seconds: float, size: int, status: int) -> None:
        metrics.fetch_seconds.observe(seconds)
        metrics.dt_responses.labels(status=str(status)).inc()
        if status == 200:
            metrics.fetch_bytes.observe(size)

    options = WorkerOptions(
        source=settings.dt.event_source,
        zone=zone(settings.dt.timezone),
        max_attempts=settings.worker.max_attempts,
        prefetch=settings.worker.prefetch,
        shutdown_grace=settings.worker.shutdown_grace,
        snapshots=settings.state.snapshots,
        output=filtering.output(settings.output, __version__),
        scope=settings.worker.scope,
        consumer_timeout_ms=job_budget.consumer_timeout_ms(settings),
        # a copy's publish, then the ack, the history row (2 s at most) and the last report
        settle_seconds=settings.broker.publish_timeout + 5.0,
    )

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(filtering.running(options.output, metrics))  # last out
            dt = await stack.enter_async_context(DtClient.open(settings.dt, on_fetch=on_fetch))
            deltas = None
            relay = None
            history = None
            if settings.state.deltas:
                store = await stack.enter_async_context(Store.open(settings.state))
                stores.append(store)
                stack.callback(stores.remove, store)  # before the store closes
                # after the grace, the batches in flight get their confirms' deadline, and a
                # little for the store's deletes
                halt = settings.broker.publish_timeout + 5.0
                relay = Relay(store, broker, metrics, options.output, halt_seconds=halt)
                deltas = Deltas(
                    store,
                    dt,
                    contracts.fpf,
                    metrics,
                    DeltaOptions(
                        source=options.source,
                        zone=options.zone,
                        epss_delta=settings.state.epss_delta,
                        baseline=settings.state.baseline,
                        clock_skew_tolerance=settings.state.clock_skew_tolerance,
                        guard=settings.state.mass_resolve,
                        track=settings.state.track,
                        line_by=settings.state.line_by,
                        carry_triage=settings.state.carry_triage,
                    ),
                    committed=relay.committed,
                )
                await relay.start()
                stack.push_async_callback(relay.stop)  # a start that failed half-way
                gauges = refresh_forever(StateGauges.create(registry), store)
                reclaiming = reclaim_forever(store)
                history = JobHistory(store)
            directory = Directory(dt, settings.worker.project_cache_seconds)
            record = None if deltas is None else store.record_outcome  # `status` shows it
            gate = AnalysisGate(dt, metrics, settings.worker.analysis, record=record)
            running = Worker(
                broker, dt, contracts, metrics, options, deltas, directory, gate, history
            )
            workers.append(running)
            await running.start()
            background = [
                _background(_log_dt_facts(dt, settings.dt.display_url or "")),
                _background(queue_gauges.refresh_forever(QueueGauges.create(registry), broker)),
            ]
            if deltas is not None:
                background += [_background(gauges), _background(reclaiming)]
            reconciler = None
            if (interval := settings.worker.reconcile_interval) is not None:
                reconciler = Reconciler(
                    broker,
                    lambda: backfill(dt, broker, trigger="RECONCILE", scope=settings.worker.scope),
                    interval,
                )
                background.append(_background(_when_ready(broker, reconciler.start)))
            yield
            deadline = asyncio.get_running_loop().time() + settings.worker.shutdown_grace
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if reconciler is not None:
                await reconciler.stop()
            await running.stop()
            if relay is not None:  # the rows of what the drain finished go out, within the grace
                await relay.finish(deadline)

    return lifecycle


def _background(work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task whose failure is logged, never left unretrieved."""

    async def logged() -> None:
        try:
            await work
        except Exception:
            log.exception("service.background_failed")

    return asyncio.create_task(logged())


async def _log_dt_facts(dt: DtClient, display_url: str) -> None:
    """What ``dtrack-worker check`` says about DT, in the log at start (never fatal)."""
    for result in await checks.dt(dt, display_url):
        if result.ok:
            log.info("dt.checked", check=result.name, detail=result.detail)
        else:
            log.warning("dt.check_failed", check=result.name, detail=result.detail, fix=result.fix)


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


def run(settings: Settings, *, receive: bool, work: bool, reuse_port: bool = False) -> None:
    """Serve until SIGTERM or SIGINT, then drain and stop; ConfigError for a bad address.
    ``reuse_port``: one of several processes on the port (``receiver --processes``)."""
    app, _ = build(settings, receive=receive, work=work)
    config = settings.receiver
    sock = listening_socket(config.host, config.port, reuse_port=reuse_port)  # first of all
    if receive and work and (console_sock := console.bind_for_serve(settings)) is not None:
        # its own listener; first in, last out: the worker stops taking jobs and drains
        # before the console stops, not after its shutdown (operators watch the drain on it)
        app.cleanup_ctx.insert(0, console.alongside(settings, console_sock))
    mode = "serve" if receive and work else "receiver" if receive else "worker"
    if receive and config.webhook_token is None and not config.signing_secrets:
        log.warning(
            "receiver.insecure_no_auth",
            message="accepting webhooks WITHOUT a token (--insecure-no-auth)",
        )
    elif receive and config.example_token:
        log.warning(
            "receiver.example_token",
            message="DTRACK_WORKER_WEBHOOK_TOKEN is an example from the docs: anyone who read "
            "them can send webhooks; set a random one (openssl rand -hex 24) here and in DT",
        )
    for variable, weakness in (config.weak_signing_secrets if receive else {}).items():
        log.warning(
            "receiver.weak_signing_secret",
            variable=variable,
            weakness=weakness,
            message=f"{variable} is "
            + (
                "an example from the docs"
                if weakness == "example"
                else "shorter than 16 characters"
            )
            + ": anyone who guesses it can sign webhooks; set a random one (openssl rand -hex 24) "
            "here and in DT",
        )
    log.info(f"{mode}.starting", **_starting_fields(settings, receive=receive, work=work))
    loop = _loop()
    collector.tune_for_service()
    try:
        loop.run_until_complete(_serve(app, sock, settings.worker.shutdown_grace, config))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
        sock.close()
    log.info(f"{mode}.stopped")


def _starting_fields(settings: Settings, *, receive: bool, work: bool) -> dict[str, Any]:
    config, dt = settings.receiver, settings.dt
    fields: dict[str, Any] = {
        "listen": f"{config.host}:{config.port}",
        "broker": settings.broker.display_url,
        "prefix": settings.broker.prefix,
    }
    if receive:
        fields |= {
            "token_header": config.token_header if config.webhook_token else None,
            "signature_header": config.signature_header if config.signing_secrets else None,
            "signing_secrets": len(config.signing_secrets),
            "trigger_groups": sorted(config.trigger_groups),
            "max_body": config.max_body,
            "coalesce_seconds": config.coalesce_seconds,
        }
    if work:
        fields |= {
            "dt_url": dt.display_url,
            "dt_api": f"{dt.display_url}/api/v1",  # the base every request goes to
            "source": dt.event_source,
            "dt_concurrency": dt.concurrency,
            "max_attempts": settings.worker.max_attempts,
            "shutdown_grace_s": settings.worker.shutdown_grace,
        }
    return fields


async def _serve(
    app: web.Application, sock: socket.socket, grace: float, config: ReceiverSettings
) -> None:
    """Run ``app`` on ``sock`` until the first SIGTERM/SIGINT; later signals change nothing."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(name: str) -> None:
        if stop.is_set():
            log.info("signal.ignored", signal=name, message="already stopping")
            return
        log.info("signal.received", signal=name, message="stopping: draining in-flight work")
        stop.set()

    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, on_signal, number.name)
    # the site's own shutdown waits for open requests; the worker drains within its grace
    runner = JsonErrorsRunner(
        app,
        header_timeout=config.header_timeout,
        keepalive_timeout=config.keepalive_timeout,  # aiohttp's default is an hour
        access_log=None,
        handle_signals=False,
        shutdown_timeout=10,
    )
    try:
        # in the try: a part that fails to start (the worker) stops those started before it
        await runner.setup()
        await web.SockSite(runner, sock).start()
        await stop.wait()
    finally:
        await runner.cleanup()
        for number in (signal.SIGTERM, signal.SIGINT):
            # from here to the exit a signal must not kill the process with 143
            loop.remove_signal_handler(number)
            signal.signal(number, signal.SIG_IGN)
