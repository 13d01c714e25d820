"""What the receiver's handlers share: the application's keys, and JSON answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson
from aiohttp import web

from worker.adapters.metrics import ReceiverMetrics
from worker.adapters.schemas import Contracts
from worker.adapters.state.store import Store
from worker.core.config import ReceiverSettings
from worker.core.jobs import Job


class JobQueue(Protocol):
    """Where accepted jobs go: broker.Broker in production."""

    @property
    def ready(self) -> bool: ...

    async def enqueue(self, jobs: Sequence[Job], *, delay_seconds: float = 0) -> None: ...


SETTINGS = web.AppKey("settings", ReceiverSettings)
CONTRACTS = web.AppKey("contracts", Contracts)
QUEUE = web.AppKey("queue", JobQueue)
METRICS = web.AppKey("metrics", ReceiverMetrics)
READY: web.AppKey[Callable[[], bool]] = web.AppKey("ready")
STORES: web.AppKey[Sequence[Store]] = web.AppKey("stores")  # /readyz asks each: takes writes?
CORRELATION_ID = web.RequestKey("correlation_id", str)
OUTCOME = web.RequestKey("outcome", str)
LOG_FIELDS = web.RequestKey("log_fields", dict[str, Any])
CLIENT_GONE = 499  # the client left before the answer (nginx's code; never sent)


def json_response(status: int, body: dict[str, Any], **headers: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )
