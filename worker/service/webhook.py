"""POST /webhook: a DT notification in, one durable job per project out.

authenticate -> encoding and size -> read the body (within a deadline) -> decompress -> parse
(UTF-8, else Latin-1) -> validate the envelope -> find the projects -> keep the trigger groups ->
enqueue (all jobs or none) -> answer. Nothing is answered 2xx before RabbitMQ has every job;
DT 5 retries the 503 we answer otherwise, and a repeat of a notification already enqueued is
answered from memory instead of being enqueued twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import http_exceptions, web

from worker.core import content, jobs, notifications, protobuf_notifications, signatures, urls
from worker.core.config import ReceiverSettings
from worker.core.errors import InvalidNotification, InvalidProtobuf, TransientError
from worker.core.scope import OUT, Scope
from worker.service.http import (
    CLIENT_GONE,
    CONTRACTS,
    CORRELATION_ID,
    LOG_FIELDS,
    METRICS,
    OUTCOME,
    QUEUE,
    SETTINGS,
    json_response,
)

RETRY_AFTER_SECONDS = 5
MAX_LOGGED_PROJECTS = 20
MAX_LISTED_JOBS = 1000  # a larger fan-out answers with its count, not every job id
_KNOWN_GROUPS = frozenset(group for rules in notifications.RULES.values() for group in rules)

Answer = dict[str, Any]


class Recent:
    """Notifications enqueued lately, by id, with the answer they got (or are about to get).

    DT 5 retries what timed out or failed; a retry of a notification whose jobs are in RabbitMQ
    gets the first answer again instead of a second set of jobs. Bounded in size and age; one
    per process (a retry that reaches another receiver is enqueued again, and coalesced).
    """

    def __init__(self, *, size: int = 20_000, seconds: float = 3600.0) -> None:
        self._entries: OrderedDict[str, tuple[float, asyncio.Future[Answer | None]]] = OrderedDict()
        self._size, self._seconds = size, seconds

    async def previous(self, notification_id: str) -> Answer | None:
        """The answer that notification got, waiting for it if it is being enqueued now."""
        entry = self._entries.get(notification_id)
        if entry is None or time.monotonic() - entry[0] > self._seconds:
            return None
        return await asyncio.shield(entry[1])

    def begin(self, notification_id: str) -> asyncio.Future[Answer | None]:
        future: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()
        self._entries[notification_id] = (time.monotonic(), future)
        self._entries.move_to_end(notification_id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return future

    def failed(self, notification_id: str, future: asyncio.Future[Answer | None]) -> None:
        future.set_result(None)  # whoever waits enqueues it themselves
        entry = self._entries.get(notification_id)
        if entry is not None and entry[1] is future:
            del self._entries[notification_id]


RECENT = web.AppKey("recent", Recent)
TOKEN_BYTES = web.AppKey("token_bytes", bytes)
SIGNING_KEYS: web.AppKey[tuple[bytes, ...]] = web.AppKey("signing_keys")
# counters' children by (counter, its label values), made once: labels() costs more than inc()
CHILDREN: web.AppKey[dict[tuple[object, ...], Any]] = web.AppKey("counter_children")


def setup(app: web.Application, settings: ReceiverSettings) -> None:
    app[RECENT] = Recent()
    app[CHILDREN] = {}
    if settings.webhook_token is not None:
        app[TOKEN_BYTES] = settings.webhook_token.reveal().encode()
    app[SIGNING_KEYS] = tuple(secret.reveal().encode() for secret in settings.signing_secrets)
    app.router.add_post("/webhook", handle_webhook)


class _Refused(Exception):
    """The request cannot be used: answered with this status, outcome and body."""

    def __init__(self, status: int, outcome: str, body: Answer) -> None:
        super().__init__(outcome)
        self.status, self.outcome, self.body = status, outcome, body


def _authorized(request: web.Request, settings: ReceiverSettings) -> bool:
    if settings.webhook_token is None:  # signed webhooks alone, or --insecure-no-auth
        return True
    # bytes, whatever the header holds: aiohttp keeps undecodable bytes as surrogates
    given = request.headers.get(settings.token_header, "").encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, request.app[TOKEN_BYTES])


def _signature(request: web.Request, settings: ReceiverSettings) -> bytes | None:
    """The digest the signature header carries (checked once the body is read); None when
    webhooks need no signature."""
    if not settings.signing_secrets:
        return None
    header = settings.signature_header
    value = request.headers.get(header)
    if value is None:
        message = f"no {header} header: this receiver takes signed webhooks only (DT 5.2+)"
    else:
        digest = signatures.digest_of(value)
        if digest is not None:
            return digest
        message = f"the {header} header is not an HMAC-SHA256 (sha256= and 64 hex digits)"
    raise _Refused(401, "unauthorized", {"message": message})


def _check_signature(
    request: web.Request, settings: ReceiverSettings, raw: bytes, digest: bytes | None
) -> None:
    if digest is None:
        return
    keys: tuple[bytes, ...] = request.app[SIGNING_KEYS]
    if not signatures.verify(raw, digest, keys):
        message = (
            f"the {settings.signature_header} header does not match the body: another signing "
            "secret than DTRACK_WORKER_WEBHOOK_SIGNING_SECRET, or the body changed on the way"
        )
        raise _Refused(401, "unauthorized", {"message": message})


def _too_large(limit: int) -> _Refused:
    message = f"the body is over {limit} bytes (DTRACK_WORKER_MAX_BODY)"
    return _Refused(413, "too_large", {"message": message})


async def _body(request: web.Request, settings: ReceiverSettings, digest: bytes | None) -> bytes:
    """The body, read within DTRACK_WORKER_BODY_TIMEOUT, its signature checked over the bytes
    as sent (``digest``), then decompressed within MAX_BODY."""
    limit = settings.max_body
    try:
        codings = content.encodings(request.headers.get("Content-Encoding"))
    except content.UnsupportedEncoding as exc:
        body = {"error": "unsupported_encoding", "message": str(exc)}
        raise _Refused(415, "unsupported", body) from None
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    try:
        if request.content.is_eof():  # all there already: the common case, no deadline
            raw = await request.read()
        else:
            async with asyncio.timeout(settings.body_timeout):
                raw = await request.read()
    except TimeoutError:
        raise _Refused(
            408,
            "timeout",
            {
                "message": f"the body did not arrive within {settings.body_timeout:g} s "
                "(DTRACK_WORKER_BODY_TIMEOUT)"
            },
        ) from None
    except web.HTTPRequestEntityTooLarge:  # a chunked body over the limit
        raise _too_large(limit) from None
    except (ConnectionResetError, http_exceptions.ContentLengthError):
        # the client left mid-body (aiohttp's own reset error is a ConnectionResetError too)
        raise _Refused(CLIENT_GONE, "client_gone", {}) from None
    except http_exceptions.HttpProcessingError as exc:  # a malformed chunked body
        raise _Refused(400, "invalid", {"error": "invalid_body", "message": exc.message}) from None
    _check_signature(request, settings, raw, digest)  # over the bytes as sent
    try:
        return content.decoded(raw, codings, limit)
    except content.BodyTooLarge:
        raise _too_large(limit) from None
    except content.CorruptBody as exc:
        raise _Refused(400, "invalid", {"error": "invalid_encoding", "message": str(exc)}) from None


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


async def _routing(
    request: web.Request, settings: ReceiverSettings
) -> tuple[bytes, notifications.Routing]:
    """The body and the notification's routing, or _Refused."""
    if not _authorized(request, settings):
        raise _Refused(
            401,
            "unauthorized",
            {"message": f"missing or wrong token in the {settings.token_header} header"},
        )
    raw = await _body(request, settings, _signature(request, settings))
    if request.content_type in protobuf_notifications.MEDIA_TYPES:  # DT 5.1+ publishProtobuf
        try:
            return raw, protobuf_notifications.route(raw)
        except InvalidNotification as exc:
            error = "invalid_protobuf" if isinstance(exc, InvalidProtobuf) else None
            raise _invalid(exc, error) from None
    try:
        document = _decode(raw)
    except orjson.JSONDecodeError as exc:
        raise _Refused(
            400,
            "invalid",
            {
                "error": "invalid_json",
                "message": "the body is not JSON",
                "problems": [{"pointer": "", "message": str(exc)}],
            },
        ) from None
    return raw, _route(request, document)


def _route(request: web.Request, document: object) -> notifications.Routing:
    try:
        return notifications.route(document, request.app[CONTRACTS].notification)
    except InvalidNotification as exc:
        raise _invalid(exc) from None


def _invalid(exc: InvalidNotification, error: str | None = None) -> _Refused:
    body = {
        "error": error or "invalid_notification",
        "message": exc.args[0],
        "problems": exc.report(),
    }
    return _Refused(400, "invalid", body)


async def handle_webhook(request: web.Request) -> web.Response:
    app, correlation_id = request.app, request[CORRELATION_ID]
    settings, metrics = app[SETTINGS], app[METRICS]
    group = "-"

    def answer(status: int, outcome: str, body: Answer) -> web.Response:
        request[OUTCOME] = outcome
        _child(app, metrics.requests, group, outcome).inc()
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else {}
        body = body | {"status": outcome, "correlation_id": correlation_id}
        return json_response(status, body, **headers)

    try:
        raw, routing = await _routing(request, settings)
    except _Refused as refused:
        return answer(refused.status, refused.outcome, refused.body)
    group = routing.group if routing.group in _KNOWN_GROUPS else "other"
    request[LOG_FIELDS] = {
        "group": routing.group,
        "projects": [p.uuid for p in routing.projects[:MAX_LOGGED_PROJECTS]],
        "project_count": len(routing.projects),
    }
    reason = _ignore_reason(routing, settings)
    if reason is not None:
        return answer(200, "ignored", {"group": routing.group, "reason": reason})
    routing, outside = _in_scope(routing, settings.scope)
    if not routing.projects:
        request[LOG_FIELDS]["out_of_scope"] = outside
        return answer(
            200, "ignored", {"group": routing.group, "reason": "out_of_scope", "detail": outside}
        )

    notification_id = jobs.notification_id(routing, raw)
    recent = app[RECENT]
    previous = await recent.previous(notification_id)
    if previous is not None:
        request[LOG_FIELDS]["duplicate"] = True
        return answer(202, "enqueued", previous | {"duplicate": True})
    batch = jobs.jobs_for(
        routing,
        notification=notification_id,
        accepted_at=datetime.now(UTC),
        correlation_id=correlation_id,
    )
    pending = recent.begin(notification_id)
    started = time.perf_counter()
    try:
        await app[QUEUE].enqueue(batch, delay_seconds=settings.coalesce_seconds)
    except TransientError as exc:
        recent.failed(notification_id, pending)
        shown = urls.redact(str(exc))  # the broker's error may quote its URL
        request[LOG_FIELDS]["error"] = shown
        return answer(
            503,
            "unavailable",
            {
                "message": f"{shown}; nothing was enqueued for sure, send it again",
                "retry_after": RETRY_AFTER_SECONDS,
            },
        )
    except BaseException:
        recent.failed(notification_id, pending)
        raise
    metrics.enqueue_seconds.observe(time.perf_counter() - started)
    _child(app, metrics.jobs, group).inc(len(batch))
    body: Answer = {
        "group": routing.group,
        "notification_id": notification_id,
        "accepted_at": batch[0].accepted_at,
        "job_count": len(batch),
        "jobs": [
            {"job_id": job.job_id, "project_uuid": job.project_uuid}
            for job in batch[:MAX_LISTED_JOBS]
        ],
    }
    pending.set_result(body)
    return answer(202, "enqueued", body)


def _child(app: web.Application, counter: Any, *labels: str) -> Any:
    """``counter.labels(*labels)``, looked up once per process."""
    children = app[CHILDREN]
    key = (counter, *labels)
    child = children.get(key)
    if child is None:
        child = children[key] = counter.labels(*labels)
    return child


def _in_scope(
    routing: notifications.Routing, scope: Scope
) -> tuple[notifications.Routing, str | None]:
    """The routing without the projects the notification shows to be out of scope, and why the
    first of them is; a project it says too little about goes on (the worker decides)."""
    if scope.everything:
        return routing, None
    kept, outside = [], None
    for project in routing.projects:
        verdict, why = scope.decide(project.name, project.version, project.tags)
        if verdict == OUT:
            outside = outside or f"{project.uuid}: {why}"
        else:
            kept.append(project)
    if len(kept) == len(routing.projects):
        return routing, None
    return dataclasses.replace(routing, projects=tuple(kept)), outside


def _ignore_reason(routing: notifications.Routing, settings: ReceiverSettings) -> str | None:
    if routing.group not in settings.trigger_groups:
        return f"{routing.group} is not a trigger group (DTRACK_WORKER_TRIGGER_GROUPS)"
    if not routing.projects:
        return routing.reason or "the notification names no project"
    return None
