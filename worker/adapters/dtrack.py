"""The Dependency-Track REST client: one aiohttp session per process, exports as bytes.

aiohttp errors stop here: callers see DtUnavailable (retry later), DtRejected (a configuration
problem), ProjectGone (404) or ExportTooLarge. The API key goes in a header and nowhere else:
no error message, log line or exception carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
import structlog

from worker.core.config import DtSettings
from worker.core.errors import DtRejected, DtUnavailable, ExportTooLarge, ProjectGone

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 120.0
_CHUNK = 1 << 20


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


class DtClient:
    """``fetch_export(uuid)`` with bounded concurrency, a size limit and in-job retries."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: DtSettings,
        *,
        on_fetch: Callable[[float, int, int], None] | None = None,
    ) -> None:
        self._session = session
        self._settings = settings
        self._limit = asyncio.Semaphore(settings.concurrency)
        self._on_fetch = on_fetch  # (seconds, bytes, status) for the metrics

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, settings: DtSettings, **options: Callable[[float, int, int], None] | None
    ) -> AsyncIterator[DtClient]:
        base_url, api_key = settings.require()
        timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.connect_timeout, sock_read=settings.read_timeout
        )
        async with aiohttp.ClientSession(
            base_url=base_url + "/",
            headers={"X-Api-Key": api_key.reveal(), "Accept": "application/json"},
            timeout=timeout,
            raise_for_status=False,
        ) as session:
            yield cls(session, settings, **options)

    async def fetch_export(self, project_uuid: str) -> bytes:
        """The project's FPF export, retried on 429/5xx/timeouts with backoff and jitter."""

        async def once() -> bytes:
            async with self._limit:
                return await self._fetch_once(project_uuid)

        return await self._retrying(once, project_uuid=project_uuid)

    async def _retrying(self, once: Callable[[], Awaitable[_T]], **context: str) -> _T:
        """``once()`` until it stops asking for a retry, at most DTRACK_WORKER_DT_HTTP_ATTEMPTS."""
        attempts = self._settings.http_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await once()
            except _Retry as retry:
                if attempt == attempts:
                    raise DtUnavailable(f"{retry.reason} (after {attempts} tries)") from None
                pause = retry.after if retry.after is not None else self._backoff(attempt)
                log.info(
                    "dt.retry",
                    attempt=attempt,
                    reason=retry.reason,
                    pause_s=round(pause, 2),
                    **context,
                )
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        base: float = self._settings.backoff_seconds * 2.0 ** (attempt - 1)
        return base * random.uniform(0.5, 1.5)  # jitter: workers do not retry in step

    async def _fetch_once(self, project_uuid: str) -> bytes:
        path = f"api/v1/finding/project/{project_uuid}/export"
        started = time.perf_counter()
        with _transport_errors(path):
            async with self._session.get(path) as response:
                status = response.status
                if status == 200:
                    body = await self._read_limited(response)
                    if self._on_fetch:
                        self._on_fetch(time.perf_counter() - started, len(body), status)
                    return body
                text = (await response.content.read(300)).decode("utf-8", "replace")
                if self._on_fetch:
                    self._on_fetch(time.perf_counter() - started, 0, status)
                self._raise_for(status, response.headers.get("Retry-After"), text, path)
        raise AssertionError("unreachable")  # pragma: no cover

    async def list_projects(
        self, page: int, size: int, *, active_only: bool = False
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of ``GET /api/v1/project`` (1-based) and the ``X-Total-Count``.

        DT pages even without parameters (offset 0, limit 100), so callers always page.
        """
        params = {"pageNumber": str(page), "pageSize": str(size), "sortName": "name"}
        if active_only:
            params["excludeInactive"] = "true"
        path = "api/v1/project"

        async def once() -> tuple[list[dict[str, Any]], int]:
            with _transport_errors(path):
                async with self._session.get(path, params=params) as response:
                    if response.status == 200:
                        projects = await response.json(content_type=None)
                        total = int(response.headers.get("X-Total-Count", len(projects)))
                        return list(projects), total
                    if response.status == 403:
                        raise DtRejected(
                            "DT answered 403: listing projects needs the VIEW_PORTFOLIO "
                            "permission for the API key's team",
                            status=403,
                        )
                    text = (await response.content.read(300)).decode("utf-8", "replace")
                    self._raise_for(
                        response.status, response.headers.get("Retry-After"), text, path
                    )
            raise AssertionError("unreachable")  # pragma: no cover

        return await self._retrying(once, page=str(page))

    async def _read_limited(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self._settings.max_export
        if response.content_length is not None and response.content_length > limit:
            raise ExportTooLarge(
                f"the export is {response.content_length} bytes, over "
                f"DTRACK_WORKER_MAX_EXPORT ({limit} bytes)"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ExportTooLarge(f"the export is over DTRACK_WORKER_MAX_EXPORT ({limit} bytes)")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _raise_for(status: int, retry_after: str | None, text: str, path: str) -> None:
        if status in RETRYABLE_STATUSES:
            after = retry_after_seconds(retry_after)
            raise _Retry(
                f"GET /{path}: DT answered {status}",
                None if after is None else min(after, MAX_RETRY_AFTER_SECONDS),
            )
        if status == 404:
            raise ProjectGone(f"DT has no project here: GET /{path} answered 404")
        if status == 401:
            raise DtRejected(
                "DT answered 401: the API key (DTRACK_WORKER_DT_API_KEY) is missing, wrong or "
                "revoked",
                status=status,
            )
        if status == 403:
            detail = f" ({text.strip()[:120]})" if text.strip() else ""
            raise DtRejected(
                "DT answered 403: the API key's team lacks VIEW_VULNERABILITY, or portfolio "
                f"access control keeps it from this project{detail}",
                status=status,
            )
        raise DtRejected(f"GET /{path}: DT answered {status}: {text.strip()[:120]}", status=status)


@contextlib.contextmanager
def _transport_errors(path: str) -> Iterator[None]:
    """Timeouts and connection errors: worth another try."""
    try:
        yield
    except (TimeoutError, aiohttp.ClientError) as exc:
        kind = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        raise _Retry(f"GET /{path}: {kind}: {exc}".rstrip(": "), None) from exc


class _Retry(Exception):
    def __init__(self, reason: str, after: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after
