"""HTTP to Dependency-Track, the careful way: redirects, deadlines, rates, sizes, retries.

* Redirects are followed by hand and only within DT's own origin (scheme, host and port), at
  most ``MAX_REDIRECTS`` times: the API key must never reach another host. aiohttp strips only
  ``Authorization`` on a cross-origin redirect, not ``X-Api-Key``.
* A body is read within a total deadline and at a minimum rate (a slow drip cannot hold a
  fetch slot forever), and never past its size limit.
* Timeouts, connection errors, 429 and 5xx become ``Retry`` for the caller's retry loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime

import aiohttp
from yarl import URL

from worker.adapters.spool import Spool, SpoolWriter
from worker.core import urls
from worker.core.errors import DtMisconfigured, ExportTooLarge

MAX_REDIRECTS = 3
RATE_WINDOW_SECONDS = 10.0
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 120.0
PROGRESS_SECONDS = 1.0  # an export still arriving reports its bytes so far this often
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Retry(Exception):
    """Worth another try, after ``after`` seconds if DT said how long."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """How much, how fast and how long a body may take."""

    max_bytes: int
    min_rate: int = 0  # bytes per second over any RATE_WINDOW_SECONDS; 0: no minimum
    deadline: float | None = None  # seconds for the whole request, body included
    rate_window: float = RATE_WINDOW_SECONDS
    what: str = "the response"


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def origin(url: URL) -> tuple[str, str | None, int | None]:
    return url.scheme, url.host, url.port


@contextlib.asynccontextmanager
async def get(
    session: aiohttp.ClientSession, path: str, params: Mapping[str, str] | None = None
) -> AsyncIterator[aiohttp.ClientResponse]:
    """GET ``path`` (relative to DT's base), following same-origin redirects only."""
    url = session._build_url(path)
    home = origin(url)
    for _ in range(MAX_REDIRECTS + 1):
        async with session.get(url, params=params, allow_redirects=False) as response:
            if response.status not in _REDIRECTS:
                yield response
                return
            location = response.headers.get("Location", "")
        target = url.join(URL(location)) if location else None
        if target is None or origin(target) != home:
            shown = urls.redact(str(target)) if target is not None else "(no Location)"
            raise DtMisconfigured(
                f"GET /{path}: DT answered {response.status}, redirecting to {shown}, another "
                "address than DTRACK_WORKER_DT_URL: the API key is never sent there. If that "
                "address is DT's, set DTRACK_WORKER_DT_URL to it"
            )
        url, params = target, None  # the Location carries its own query
    raise DtMisconfigured(
        f"GET /{path}: more than {MAX_REDIRECTS} redirects; check DTRACK_WORKER_DT_URL"
    )


async def read_limited(response: aiohttp.ClientResponse, limits: Limits) -> bytes:
    """The whole body, or ExportTooLarge, or Retry when it arrives too slowly."""
    return b"".join([chunk async for chunk in _chunks(response, limits)])


async def read_spooled(
    response: aiohttp.ClientResponse,
    limits: Limits,
    receiving: Callable[[int], Awaitable[None]] | None = None,
) -> Spool:
    """``read_limited`` into a temporary file, mapped (an export: see ``spool``); ``receiving``
    is told the bytes so far every PROGRESS_SECONDS while they arrive (a job's progress)."""
    writer = SpoolWriter()
    clock = asyncio.get_running_loop().time
    told, size = clock(), 0
    try:
        async for chunk in _chunks(response, limits):
            writer.write(chunk)
            size += len(chunk)
            if receiving is not None and clock() - told >= PROGRESS_SECONDS:
                await receiving(size)
                told = clock()
    except BaseException:
        writer.discard()
        raise
    return writer.finish()


async def _chunks(response: aiohttp.ClientResponse, limits: Limits) -> AsyncIterator[bytes]:
    """The body as it arrives, within its size limit and above its minimum rate."""
    if response.content_length is not None and response.content_length > limits.max_bytes:
        raise ExportTooLarge(
            f"{limits.what} is {response.content_length} bytes, over "
            f"DTRACK_WORKER_MAX_EXPORT ({limits.max_bytes} bytes)"
        )
    size = 0
    clock = asyncio.get_running_loop().time
    window_started, window_bytes = clock(), 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limits.max_bytes:
            raise ExportTooLarge(
                f"{limits.what} is over DTRACK_WORKER_MAX_EXPORT ({limits.max_bytes} bytes)"
            )
        yield chunk
        window_bytes += len(chunk)
        elapsed = clock() - window_started
        if elapsed >= limits.rate_window:
            rate = window_bytes / elapsed
            if rate < limits.min_rate:
                raise Retry(
                    f"DT sent {limits.what} at {rate:.0f} bytes/s, under "
                    f"DTRACK_WORKER_DT_MIN_RATE ({limits.min_rate} bytes/s)"
                )
            window_started, window_bytes = clock(), 0


@contextlib.contextmanager
def transport_errors(path: str) -> Iterator[None]:
    """Timeouts and connection errors: worth another try."""
    try:
        yield
    except TimeoutError as exc:
        raise Retry(f"GET /{path}: timed out") from exc
    except aiohttp.ClientError as exc:
        raise Retry(urls.redact(f"GET /{path}: {type(exc).__name__}: {exc}".rstrip(": "))) from exc


def retry_for(status: int, retry_after: str | None, path: str) -> Retry:
    after = retry_after_seconds(retry_after)
    return Retry(
        f"GET /{path}: DT answered {status}",
        None if after is None else min(after, MAX_RETRY_AFTER_SECONDS),
    )
