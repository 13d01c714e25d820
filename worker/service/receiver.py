"""The service's HTTP side (aiohttp): the webhook, health, readiness and metrics.

Every answer is JSON, and every request to /webhook is one ``http.request`` log line with its
outcome. Bodies are read as sent (no automatic decompression), so the webhook decides what an
encoding means; see ``worker.service.webhook``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from worker.adapters import tracing
from worker.adapters.metrics import ReceiverMetrics
from worker.adapters.schemas import Contracts
from worker.adapters.state.store import Store
from worker.core import ids
from worker.core.config import ReceiverSettings
from worker.service import webhook
from worker.service.http import (
    CLIENT_GONE,
    CONTRACTS,
    CORRELATION_ID,
    LOG_FIELDS,
    METRICS,
    OUTCOME,
    QUEUE,
    READY,
    SETTINGS,
    STORES,
    JobQueue,
    json_response,
)

log = structlog.get_logger(__name__)

_CORRELATION = re.compile(r"[A-Za-z0-9._:/-]{1,128}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    settings: ReceiverSettings,
    contracts: Contracts,
    queue: JobQueue,
    metrics: ReceiverMetrics,
    *,
    webhook_route: bool = True,
    ready: Callable[[], bool] | None = None,
    stores: Sequence[Store] = (),
) -> web.Application:
    """The service's HTTP application; no I/O happens here (serve.py owns the lifecycle).

    ``webhook_route``: serve POST /webhook (the receiver); ``ready``: what /readyz reports, by
    default the job queue's connection; ``stores``: state stores that must take writes too
    (the worker's, once open).
    """
    traced = tracing.server_middleware("/webhook")  # outermost: the log line is in the span
    app = web.Application(
        client_max_size=settings.max_body,
        middlewares=[request_context] if traced is None else [traced, request_context],
        handler_args={"auto_decompress": False},  # the webhook decompresses, within limits
    )
    app[SETTINGS] = settings
    app[CONTRACTS] = contracts
    app[QUEUE] = queue
    app[METRICS] = metrics
    app[READY] = ready or (lambda: queue.ready)
    app[STORES] = stores
    metrics.broker_connected.set_function(lambda: 1.0 if queue.ready else 0.0)
    if webhook_route:
        webhook.setup(app, settings)
    app.router.add_get("/healthz", handle_health)
    app.router.add_get("/readyz", handle_ready)
    app.router.add_get("/metrics", handle_metrics)
    return app


def _correlation_id(request: web.Request) -> str:
    for header in ("X-Correlation-Id", "X-Request-Id"):
        value = request.headers.get(header, "")
        if _CORRELATION.fullmatch(value):
            return value
    # uuid4 reads os.urandom: a system call per request; an id needs no cryptographic bits
    return ids.uuid4_text(random.getrandbits(128))


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Correlation id in, one log line out; every answer JSON, even for a bug."""
    structlog.contextvars.clear_contextvars()
    correlation_id = _correlation_id(request)
    request[CORRELATION_ID] = correlation_id
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    started = time.perf_counter()
    try:
        response = await handler(request)
    except asyncio.CancelledError:  # the client left and the server cancels its handler
        _log_request(request, CLIENT_GONE, started, outcome="client_gone")
        raise
    except web.HTTPException as exc:  # 404, 405
        response = json_response(
            exc.status,
            {"status": "error", "message": exc.reason, "correlation_id": correlation_id},
        )
    except Exception:
        log.exception("http.unexpected_error", path=request.path)
        request[OUTCOME] = "error"
        response = json_response(
            500,
            {"status": "error", "message": "internal error", "correlation_id": correlation_id},
        )
    response.headers["X-Correlation-Id"] = correlation_id
    if response.status in (408, CLIENT_GONE):
        response.force_close()  # a client that is slow or gone gets no second request
    _log_request(request, response.status, started, outcome=request.get(OUTCOME))
    return response


def _log_request(request: web.Request, status: int, started: float, *, outcome: str | None) -> None:
    """One line per request: info for the webhook, debug for health and metrics."""
    webhook = request.path == "/webhook"
    if not log.is_enabled_for(logging.INFO if webhook else logging.DEBUG):
        return  # nothing to build for a line nobody writes
    line = {
        "correlation_id": request[CORRELATION_ID],  # bound too; capture_logs sees it here
        "method": request.method,
        "path": request.path,
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if webhook:
        log.info("http.request", **line, **request.get(LOG_FIELDS, {}), outcome=outcome)
    else:
        log.debug("http.request", **line)


async def handle_health(request: web.Request) -> web.Response:
    return json_response(200, {"status": "ok"})


async def handle_ready(request: web.Request) -> web.Response:
    facts = {"broker": "connected" if request.app[QUEUE].ready else "disconnected"}
    ready = request.app[READY]()
    for store in request.app[STORES]:  # a write probe, cached briefly: see Store.usable
        usable = await store.usable()
        facts["state"] = usable.category  # no token here: the detail is in the log
        ready = ready and usable.ok
    if ready:
        return json_response(200, {"status": "ready", **facts})
    return json_response(503, {"status": "not ready", **facts})


async def handle_metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
