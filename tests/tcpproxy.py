"""A TCP proxy on loopback that a test can cut, stall and restore: a broker or DT that goes away.

async with TcpProxy(5672) as proxy:      # listens on 127.0.0.1:proxy.port
    proxy.cut()                           # drop every connection, refuse new ones
    proxy.restore()                       # accept again
    cut = proxy.cut_on(b"some bytes")     # cut the moment those bytes are about to pass
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.latency = 0.0  # seconds added before each forwarded chunk
        self._server: asyncio.Server | None = None
        self._open = True
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._trigger: tuple[bytes, bool, asyncio.Event] | None = None

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def connections(self) -> int:
        return len(self._links) // 2

    def cut(self) -> None:
        """Close every open connection at once and refuse new ones until restore()."""
        self._open = False
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    def restore(self) -> None:
        """Accept again, and forward again after a stall."""
        self._open = True
        self._flowing.set()

    def cut_on(self, pattern: bytes, *, upstream: bool = True) -> asyncio.Event:
        """Cut (as ``cut()``) the moment ``pattern`` is about to pass, towards the target
        (``upstream``) or back; the chunk holding it is not forwarded. A fault placed by what
        is being said, not by a guess of when: the returned event is set once it happened."""
        assert pattern, "an empty pattern would cut at once"
        happened = asyncio.Event()
        self._trigger = (pattern, upstream, happened)
        return happened

    def stall(self) -> None:
        """Keep every connection open but forward nothing: a peer that hangs."""
        self._flowing.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, upstream_writer))
        for source, sink, upstream in (
            (reader, upstream_writer, True),
            (upstream_reader, writer, False),
        ):
            task = asyncio.create_task(self._pipe(source, sink, upstream))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _tripped(self, seen: bytes, upstream: bool) -> bool:
        """Whether the armed pattern is in ``seen`` (this chunk and the tail of the last one,
        for a pattern that straddles two reads); if so, cut now."""
        if self._trigger is None or self._trigger[1] != upstream or self._trigger[0] not in seen:
            return False
        happened = self._trigger[2]
        self._trigger = None
        self.cut()
        happened.set()
        return True

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, upstream: bool
    ) -> None:
        tail = b""
        try:
            while chunk := await source.read(65536):
                if self._trigger is not None:
                    seen = tail + chunk
                    if self._tripped(seen, upstream):
                        return
                    keep = len(self._trigger[0]) - 1
                    tail = seen[len(seen) - keep :] if keep else b""
                await self._flowing.wait()
                if self.latency:
                    await asyncio.sleep(self.latency)
                sink.write(chunk)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._links.discard(sink)
            with contextlib.suppress(Exception):
                sink.transport.abort()
