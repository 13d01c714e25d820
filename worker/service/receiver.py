"""The webhook receiver (aiohttp): DT notification in, one durable job per project out.

POST /webhook: authenticate -> size limit -> decode (UTF-8, else Latin-1) -> parse -> validate
the envelope -> find the projects -> keep the trigger groups -> enqueue -> answer. Nothing is
answered 2xx before RabbitMQ confirmed every job; DT 5 retries the 503 we answer otherwise.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from worker.adapters.metrics import ReceiverMetrics
from worker.adapters.schemas import Contracts
from worker.core import jobs, notifications
from worker.core.config import ReceiverSettings
from worker.core.errors import InvalidNotification, TransientError

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 5
MAX_LOGGED_PROJECTS = 20
_CORRELATION = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
_KNOWN_GROUPS = frozenset(group for rules in notifications.RULES.values() for group in rules)


class JobQueue(Protocol):
    """Where accepted jobs go: broker.Broker in production."""

    @property
    def ready(self) -> bool: ...

    async def enqueue(self, jobs: Sequence[jobs.Job], *, delay_seconds: float = 0) -> None: ...


SETTINGS = web.AppKey("settings", ReceiverSettings)
CONTRACTS = web.AppKey("contracts", Contracts)
QUEUE = web.AppKey("queue", JobQueue)
METRICS = web.AppKey("metrics", ReceiverMetrics)
READY: web.AppKey[Callable[[], bool]] = web.AppKey("ready")
CORRELATION_ID = web.RequestKey("correlation_id", str)
OUTCOME = web.RequestKey("outcome", str)
LOG_FIELDS = web.RequestKey("log_fields", dict[str, Any])

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(status: int, body: dict[str, Any], **headers: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def create_app(
    settings: ReceiverSettings,
    contracts: Contracts,
    queue: JobQueue,
    metrics: ReceiverMetrics,
    *,
    webhook: bool = True,
    ready: Callable[[], bool] | None = None,
) -> web.Application:
    """The service's HTTP application; no I/O happens here (service.py owns the lifecycle).

    ``webhook``: serve POST /webhook (the receiver); ``ready``: what /readyz reports, by
    default the job queue's connection.
    """
    app = web.Application(client_max_size=settings.max_body, middlewares=[request_context])
    app[SETTINGS] = settings
    app[CONTRACTS] = contracts
    app[QUEUE] = queue
    app[METRICS] = metrics
    app[READY] = ready or (lambda: queue.ready)
    metrics.broker_connected.set_function(lambda: 1.0 if queue.ready else 0.0)
    if webhook:
        app.router.add_post("/webhook", handle_webhook)
    app.router.add_get("/healthz", handle_health)
    app.router.add_get("/readyz", handle_ready)
    app.router.add_get("/metrics", handle_metrics)
    return app


def _correlation_id(request: web.Request) -> str:
    for header in ("X-Correlation-Id", "X-Request-Id"):
        value = request.headers.get(header, "")
        if _CORRELATION.fullmatch(value):
            return value
    return str(uuid.uuid4())


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Correlation id in, one log line out; HTTP errors as JSON."""
    structlog.contextvars.clear_contextvars()
    correlation_id = _correlation_id(request)
    request[CORRELATION_ID] = correlation_id
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # 404, 405, and aiohttp's own 413
        status = exc.status
        response = _json(
            status,
            {"status": "error", "message": exc.reason, "correlation_id": correlation_id},
        )
        if status == 413:
            request[OUTCOME] = "too_large"
    response.headers["X-Correlation-Id"] = correlation_id
    line = {
        "correlation_id": correlation_id,  # also bound, but capture_logs and tests see it here
        "method": request.method,
        "path": request.path,
        "status": response.status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if request.path == "/webhook":
        fields = request.get(LOG_FIELDS, {})
        log.info("http.request", **line, **fields, outcome=request.get(OUTCOME))
    else:
        log.debug("http.request", **line)
    return response


async def handle_health(request: web.Request) -> web.Response:
    return _json(200, {"status": "ok"})


async def handle_ready(request: web.Request) -> web.Response:
    broker = "connected" if request.app[QUEUE].ready else "disconnected"
    if request.app[READY]():
        return _json(200, {"status": "ready", "broker": broker})
    return _json(503, {"status": "not ready", "broker": broker})


async def handle_metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _authorized(request: web.Request, settings: ReceiverSettings) -> bool:
    if settings.webhook_token is None:  # only with --insecure-no-auth
        return True
    given = request.headers.get(settings.token_header, "")
    return hmac.compare_digest(given.encode(), settings.webhook_token.reveal().encode())


def _decode(raw: bytes) -> object:
    """JSON from UTF-8, or from Latin-1, which DT before 4.14 sends under the same label."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return orjson.loads(raw.decode("latin-1"))
        raise exc from None


async def handle_webhook(request: web.Request) -> web.Response:
    app, correlation_id = request.app, request[CORRELATION_ID]
    settings, metrics = app[SETTINGS], app[METRICS]

    def answer(status: int, outcome: str, group: str, body: dict[str, Any]) -> web.Response:
        request[OUTCOME] = outcome
        metrics.requests.labels(group=group, outcome=outcome).inc()
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else {}
        return _json(
            status, body | {"status": outcome, "correlation_id": correlation_id}, **headers
        )

    if not _authorized(request, settings):
        return answer(
            401,
            "unauthorized",
            "-",
            {"message": f"missing or wrong token in the {settings.token_header} header"},
        )
    if request.content_length is not None and request.content_length > settings.max_body:
        return answer(
            413,
            "too_large",
            "-",
            {"message": f"the body is over {settings.max_body} bytes (DTRACK_WORKER_MAX_BODY)"},
        )
    raw = await request.read()  # aiohttp refuses (413) a chunked body over client_max_size
    try:
        document = _decode(raw)
    except orjson.JSONDecodeError as exc:
        return answer(
            400,
            "invalid",
            "-",
            {
                "error": "invalid_json",
                "message": "the body is not JSON",
                "problems": [{"pointer": "", "message": str(exc)}],
            },
        )
    try:
        routing = notifications.route(document, app[CONTRACTS].notification)
    except InvalidNotification as exc:
        return answer(
            400,
            "invalid",
            "-",
            {"error": "invalid_notification", "message": exc.args[0], "problems": exc.report()},
        )
    group = routing.group if routing.group in _KNOWN_GROUPS else "other"
    request[LOG_FIELDS] = {
        "group": routing.group,
        "projects": [p.uuid for p in routing.projects[:MAX_LOGGED_PROJECTS]],
        "project_count": len(routing.projects),
    }
    reason = _ignore_reason(routing, settings)
    if reason is not None:
        return answer(200, "ignored", group, {"group": routing.group, "reason": reason})

    notification_id = jobs.notification_id(routing, raw)
    batch = jobs.jobs_for(
        routing,
        notification=notification_id,
        accepted_at=datetime.now(UTC),
        correlation_id=correlation_id,
    )
    started = time.perf_counter()
    try:
        await app[QUEUE].enqueue(batch, delay_seconds=settings.coalesce_seconds)
    except TransientError as exc:
        request[LOG_FIELDS]["error"] = str(exc)
        return answer(
            503,
            "unavailable",
            group,
            {
                "message": f"{exc}; nothing was enqueued for sure, send it again",
                "retry_after": RETRY_AFTER_SECONDS,
            },
        )
    metrics.enqueue_seconds.observe(time.perf_counter() - started)
    metrics.jobs.labels(group=group).inc(len(batch))
    return answer(
        202,
        "enqueued",
        group,
        {
            "group": routing.group,
            "notification_id": notification_id,
            "accepted_at": batch[0].accepted_at,
            "jobs": [{"job_id": job.job_id, "project_uuid": job.project_uuid} for job in batch],
        },
    )


def _ignore_reason(routing: notifications.Routing, settings: ReceiverSettings) -> str | None:
    if routing.group not in settings.trigger_groups:
        return f"{routing.group} is not a trigger group (DTRACK_WORKER_TRIGGER_GROUPS)"
    if not routing.projects:
        return routing.reason or "the notification names no project"
    return None
