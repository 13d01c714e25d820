"""HTTP requests too malformed to reach a handler (bad header bytes, broken framing): answered
in JSON like every other request, and logged as one warning line instead of a traceback.

aiohttp answers those itself, in plain text, and logs each with a traceback at error level:
anyone on the network could fill the logs. Its request handler's ``handle_error`` is the one
place they pass; the runner below builds the server with a handler that overrides it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_request import BaseRequest

from worker.service.http import json_response

log = structlog.get_logger(__name__)


class _JsonErrors(web.RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        reason = (message or (str(exc) if exc else "") or "malformed request").strip()
        log.warning(
            "http.malformed",
            status=status,
            error=type(exc).__name__ if exc else None,
            message=reason.splitlines()[0][:200] if reason else None,
        )
        if request.writer.output_size > 0:  # an answer is half sent: nothing more can go
            raise ConnectionError("the answer was sent already")
        outcome = "error" if status >= 500 else "invalid"
        response = json_response(
            status, {"status": outcome, "error": "malformed_request", "message": reason[:300]}
        )
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> web.RequestHandler:
        return _JsonErrors(self, loop=self._loop, **self._kwargs)


class JsonErrorsRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer malformed requests in JSON."""

    async def _make_server(self) -> web.Server:
        default = await super()._make_server()
        kwargs: dict[str, Any] = dict(default._kwargs)
        return _Server(
            default.request_handler,
            request_factory=default.request_factory,
            handler_cancellation=default.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **kwargs,
        )
