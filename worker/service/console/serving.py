"""The console on its own listener (DTRACK_WORKER_CONSOLE_LISTEN, never the webhook's): alone
(``dtrack-worker console``) or beside ``serve``'s application, started and stopped with it.

Without DTRACK_WORKER_CONSOLE_TOKEN a random token is made at start, and the URL that logs in
with it is printed once, on stderr only (not in the structured log, which is shipped
elsewhere), as notebook servers do.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from worker.adapters.listen import listening_socket
from worker.core.config import PREFIX, Settings
from worker.core.errors import ConfigError
from worker.service.console.app import create_app
from worker.service.protocol import JsonErrorsRunner

log = structlog.get_logger(__name__)

SHUTDOWN_SECONDS = 5.0  # open pages get this long to finish; live streams end at once


def token_of(settings: Settings) -> tuple[str, bool]:
    """The token to log in with, and whether it was made here."""
    if settings.console.token is not None:
        return settings.console.token.reveal(), False
    return secrets.token_urlsafe(32), True


def bind(settings: Settings) -> socket.socket:
    """The console's listening socket; ConfigError naming DTRACK_WORKER_CONSOLE_LISTEN."""
    config = settings.console
    try:
        return listening_socket(config.host, config.port)
    except ConfigError as exc:
        raise ConfigError(
            str(exc).replace(f"{PREFIX}LISTEN=", f"{PREFIX}CONSOLE_LISTEN=", 1)
        ) from None


def bind_for_serve(settings: Settings) -> socket.socket | None:
    """For ``serve``: the socket, or None when the console is off, or when its default port is
    taken (a warning: the service runs on; a port set explicitly that cannot be had stops it)."""
    if not settings.console.enabled:
        return None
    try:
        return bind(settings)
    except ConfigError as exc:
        if settings.console.listen_set:
            raise
        log.warning("console.not_started", reason=str(exc), fix=f"set {PREFIX}CONSOLE_LISTEN")
        return None


def _announce(settings: Settings, token: str, generated: bool) -> None:
    config = settings.console
    where = f"{config.host}:{config.port}"
    log.info(
        "console.starting",
        listen=where,
        readonly=config.readonly,
        token="generated, login URL printed on stderr" if generated else f"{PREFIX}CONSOLE_TOKEN",
    )
    if generated:
        host = f"[{config.host}]" if ":" in config.host else config.host
        print(
            f"dtrack-worker console: log in at http://{host}:{config.port}/login?token={token}",
            file=sys.stderr,
            flush=True,
        )


def _runner(settings: Settings, token: str) -> web.AppRunner:
    """The console's runner: the webhook listener's header and keep-alive timeouts hold here
    too (a plain AppRunner holds a silent or idle connection for an hour, before any login)."""
    return JsonErrorsRunner(
        create_app(settings, token),
        header_timeout=settings.receiver.header_timeout,
        keepalive_timeout=settings.receiver.keepalive_timeout,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_SECONDS,
    )


Lifecycle = Callable[[web.Application], AsyncIterator[None]]


def alongside(settings: Settings, sock: socket.socket) -> Lifecycle:
    """A cleanup context for ``serve``'s application: the console runs while it runs."""

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        token, generated = token_of(settings)
        runner = _runner(settings, token)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        _announce(settings, token, generated)
        yield
        await runner.cleanup()

    return lifecycle


def run(settings: Settings) -> None:
    """``dtrack-worker console``: serve the console until SIGTERM or SIGINT."""
    sock = bind(settings)  # first of all: a bad address is the setting's fault
    try:
        asyncio.run(_serve(settings, sock))
    finally:
        sock.close()
    log.info("console.stopped")


async def _serve(settings: Settings, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    token, generated = token_of(settings)
    runner = _runner(settings, token)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        _announce(settings, token, generated)
        await stop.wait()
    finally:
        await runner.cleanup()
