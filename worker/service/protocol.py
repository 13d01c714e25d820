"""HTTP requests too malformed to reach a handler (bad header bytes, broken framing): answered
in JSON like every other request, and logged as one warning line instead of a traceback. And
requests whose headers never finish: closed after DTRACK_WORKER_HEADER_TIMEOUT.

aiohttp answers malformed requests itself, in plain text, and logs each with a traceback at
error level: anyone on the network could fill the logs. Its request handler's ``handle_error``
is the one place they pass; the runner below builds the server with a handler that overrides it.

aiohttp has no timeout for a request's line and headers: a connection that sends nothing, or
half a header, is held until its keep-alive timeout (3630 s by default) runs out. The handler
below times them: from the connection's start for its first request, from the first byte
after the previous request's body for each later one. An idle kept-alive connection is left
to aiohttp's keep-alive timeout, which the runners set from DTRACK_WORKER_KEEPALIVE_TIMEOUT.
When the headers are not all there in time, it answers 408 in JSON and closes the connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import structlog
from aiohttp import web
from aiohttp.web_request import BaseRequest

from worker.service.http import json_response

log = structlog.get_logger(__name__)

DEFAULT_KEEPALIVE_TIMEOUT = 75.0  # DTRACK_WORKER_KEEPALIVE_TIMEOUT's default (nginx's)


class _JsonErrors(web.RequestHandler):
    def __init__(self, manager: web.Server, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._last_body: Any = None  # the body of the last request parsed (a StreamReader)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._time_headers()  # the first request's, from the connection's start

    def data_received(self, data: bytes) -> None:
        # bytes after the last request's body (or the first ones) begin the next request
        after_last = self._last_body is None or self._last_body.is_eof()
        parsed = len(self._messages)
        super().data_received(data)
        if len(self._messages) > parsed:  # a request's headers are all here
            self._last_body = self._messages[-1][1]
            self._stop_timer()
        elif after_last and self._header_timer is None:
            self._time_headers()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def _time_headers(self) -> None:
        self._header_timer = self._loop.call_later(self._header_timeout, self._headers_late)

    def _stop_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        transport = self.transport
        if transport is None or self._messages:  # closed, or they came as the timer fired
            return
        waiter = self._waiter
        if waiter is None or waiter.done():  # the previous request is still being answered
            self._time_headers()  # (pipelined): its answer first, then this one's turn
            return
        log.warning(
            "http.header_timeout",
            peer=str(transport.get_extra_info("peername")),
            seconds=self._header_timeout,
        )
        body = orjson.dumps(
            {
                "status": "timeout",
                "error": "header_timeout",
                "message": f"the request line and headers did not arrive within "
                f"{self._header_timeout:g} s (DTRACK_WORKER_HEADER_TIMEOUT)",
            }
        )
        transport.write(
            b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        self.force_close()

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
    header_timeout = 10.0

    def __call__(self) -> web.RequestHandler:
        return _JsonErrors(
            self, loop=self._loop, header_timeout=self.header_timeout, **self._kwargs
        )


class JsonErrorsRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer malformed requests in JSON, and close those
    whose headers do not arrive within ``header_timeout`` seconds."""

    def __init__(self, app: web.Application, *, header_timeout: float, **kwargs: Any) -> None:
        # never aiohttp's hour, even for a runner built without the setting
        kwargs.setdefault("keepalive_timeout", DEFAULT_KEEPALIVE_TIMEOUT)
        super().__init__(app, **kwargs)
        self._header_timeout = header_timeout

    async def _make_server(self) -> web.Server:
        default = await super()._make_server()
        kwargs: dict[str, Any] = dict(default._kwargs)
        server = _Server(
            default.request_handler,
            request_factory=default.request_factory,
            handler_cancellation=default.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **kwargs,
        )
        server.header_timeout = self._header_timeout
        return server
