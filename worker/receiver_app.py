"""Running the receiver: wire settings, contracts, broker and metrics into the aiohttp app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import structlog
from aiohttp import web

from worker import receiver, schemas, topology
from worker.broker import BROKER_ERRORS, Broker, BrokerUnavailable, declare
from worker.config import Settings
from worker.metrics import ReceiverMetrics

log = structlog.get_logger(__name__)


def build(settings: Settings) -> tuple[web.Application, Broker]:
    broker = Broker(settings.broker, topology.build(settings.broker.prefix))
    app = receiver.create_app(settings.receiver, schemas.load(), broker, ReceiverMetrics.create())

    async def broker_lifecycle(_: web.Application) -> AsyncIterator[None]:
        await broker.start()
        yield
        await broker.close()

    app.cleanup_ctx.append(broker_lifecycle)
    return app, broker


def _loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # not on every platform; asyncio's loop works, only slower
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(settings: Settings) -> None:
    app, _ = build(settings)
    config = settings.receiver
    if config.webhook_token is None:
        log.warning(
            "receiver.insecure_no_auth",
            message="accepting webhooks WITHOUT a token (--insecure-no-auth)",
        )
    log.info(
        "receiver.starting",
        listen=f"{config.host}:{config.port}",
        broker=settings.broker.display_url,
        prefix=settings.broker.prefix,
        token_header=config.token_header if config.webhook_token else None,
        trigger_groups=sorted(config.trigger_groups),
        max_body=config.max_body,
        coalesce_seconds=config.coalesce_seconds,
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
    log.info("receiver.stopped")


def declare_topology(settings: Settings, topo: topology.Topology) -> None:
    """Declare ``topo`` once, for ``dtrack-worker topology``; BrokerUnavailable if we cannot."""

    async def main() -> None:
        try:
            connection = await aio_pika.connect(settings.broker.url.reveal(), timeout=10)
            async with connection:
                await declare(await connection.channel(), topo)
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(
                f"cannot declare the topology on {settings.broker.display_url}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    asyncio.run(main())
