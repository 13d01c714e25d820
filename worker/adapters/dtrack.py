"""The Dependency-Track REST client: one aiohttp session per process.

aiohttp errors stop here: callers see DtUnavailable (retry later), DtRejected (the key or its
permissions), DtMisconfigured (the address is not DT's API), ProjectGone (DT confirmed it) or
ExportTooLarge. The API key goes in a header, to DT's own origin only, and nowhere else: no
error message, log line or exception carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import aiohttp
import orjson
import structlog

from worker.adapters import dtanswers as answers
from worker.adapters import dthttp, tracing
from worker.adapters.dthttp import Limits, Retry
from worker.adapters.spool import Spool
from worker.core.config import DtSettings
from worker.core.errors import DtMisconfigured, DtRejected, DtUnavailable, ProjectGone

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
_SMALL = 16 * 2**20  # any answer but an export: a page of projects, a project, the version
VERSION_TTL_SECONDS = 300.0
FINDINGS_PAGE = 1000


class Arrival(Protocol):
    """Told an export's bytes: so far while they arrive (``done=False``), then all of them."""

    async def __call__(self, size: int, *, done: bool = True) -> None: ...


MAX_FINDING_PAGES = 10_000
Observer = Callable[[float, int, int], None]  # (seconds, bytes, status) of each export fetch


class DtClient:
    """The DT endpoints the workers use, with bounded concurrency, limits and in-job retries."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: DtSettings,
        *,
        on_fetch: Observer | None = None,
        rate_window: float = dthttp.RATE_WINDOW_SECONDS,
    ) -> None:
        self._session = session
        self._settings = settings
        self._limit = asyncio.Semaphore(settings.concurrency)
        self._on_fetch = on_fetch
        self._export_limits = Limits(
            max_bytes=settings.max_export,
            min_rate=settings.min_rate,
            deadline=settings.export_timeout,
            rate_window=rate_window,
            what="the export",
        )
        self._version: tuple[float, dict[str, Any]] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: DtSettings, **options: Any) -> AsyncIterator[DtClient]:
        base_url, api_key = settings.require()
        timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.connect_timeout, sock_read=settings.read_timeout
        )
        async with aiohttp.ClientSession(
            base_url=base_url + "/",
            headers={"X-Api-Key": api_key.reveal(), "Accept": "application/json"},
            timeout=timeout,
            raise_for_status=False,
            trace_configs=tracing.client_trace_configs(),
        ) as session:
            yield cls(session, settings, **options)

    # -- the export -------------------------------------------------------------------------

    async def fetch_export(self, project_uuid: str, *, arrived: Arrival | None = None) -> Spool:
        """The project's FPF export, retried on 429/5xx/timeouts with backoff and jitter;
        spooled to a mapped temporary file (the caller closes it). ``arrived`` is told the bytes
        so far while they arrive (``done=False``, every dthttp.PROGRESS_SECONDS; an attempt
        retried starts again from 0), and its size once it is all here (a job's progress).

        A 404 is a deleted project only when DT confirms it (``confirm_gone``).
        """

        async def receiving(size: int) -> None:
            assert arrived is not None
            await arrived(size, done=False)

        async def once() -> Spool:
            async with self._limit:
                return await self._fetch_once(project_uuid, receiving if arrived else None)

        spool = await self._retrying(once, project_uuid=project_uuid)
        if arrived is not None:
            await arrived(len(spool))
        return spool

    async def _fetch_once(
        self, project_uuid: str, receiving: Callable[[int], Awaitable[None]] | None = None
    ) -> Spool:
        path = f"api/v1/finding/project/{project_uuid}/export"
        limits = self._export_limits
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limits.deadline) as deadline:
                with dthttp.transport_errors(path):
                    async with dthttp.get(self._session, path) as response:
                        status = response.status
                        if status == 200:
                            body = await dthttp.read_spooled(response, limits, receiving)
                            self._observe(started, len(body), status)
                            return body
                        text = await _text(response)
                        self._observe(started, 0, status)
                        retry_after = response.headers.get("Retry-After")
        except TimeoutError:
            if not deadline.expired():
                raise
            raise Retry(
                f"GET /{path}: not done within DTRACK_WORKER_DT_EXPORT_TIMEOUT "
                f"({limits.deadline:g} s)"
            ) from None
        if status == 404:
            await self.confirm_gone(project_uuid, text)
        raise answers.failure(status, retry_after, text, path)

    def _observe(self, started: float, size: int, status: int) -> None:
        if self._on_fetch:
            self._on_fetch(time.perf_counter() - started, size, status)

    async def confirm_gone(self, project_uuid: str, said: str = "") -> None:
        """ProjectGone when DT itself says the project does not exist; else DtMisconfigured.

        A 404 from an address that is not DT's API (the frontend, a proxy path, ``/api/api``)
        must never close every finding of every project downstream.
        """
        await self.version()  # DtMisconfigured unless this address answers as DT
        if await self.project(project_uuid) is not None:
            raise DtMisconfigured(
                f"DT lists project {project_uuid}, yet its export answered 404 "
                f"({said.strip()[:100]!r}): something between us and DT rewrites paths"
            )
        raise ProjectGone(f"DT confirms it has no project {project_uuid}")

    # -- what DT is, and what it holds ----------------------------------------------------------

    async def version(self) -> dict[str, Any]:
        """``GET /api/version`` (no permission needed); DtMisconfigured unless DT answers it."""
        cached = self._version
        if cached is not None and time.monotonic() - cached[0] < VERSION_TTL_SECONDS:
            return cached[1]
        status, about = await self._json("api/version")
        if status != 200 or not isinstance(about, dict) or not answers.is_dt(about):
            raise DtMisconfigured(
                f"{self._settings.display_url} does not answer as Dependency-Track's API server "
                f"(GET /api/version: {status}): set DTRACK_WORKER_DT_URL to DT's API server, "
                "e.g. https://dtrack.example.org (with or without /api), not the frontend"
            )
        self._version = time.monotonic(), about
        return about

    async def project(self, project_uuid: str, *, retry: bool = True) -> dict[str, Any] | None:
        """``GET /api/v1/project/{uuid}`` (VIEW_PORTFOLIO); None when DT has no such project.
        ``retry=False``: one try (a lookup that may fail, before the export's own retries)."""
        path = f"api/v1/project/{project_uuid}"
        status, body = await self._json(path, retry=retry)
        if status == 404:
            return None
        if status == 200 and isinstance(body, dict):
            return body
        if status == 200:
            raise DtMisconfigured(f"GET /{path} answered 200 without a project object")
        if status == 403:
            raise DtRejected(
                "DT answered 403 for the project: the API key's team needs VIEW_PORTFOLIO "
                "(and access to the project, with portfolio access control)",
                status=403,
            )
        raise answers.failure(status, None, "", path)

    async def analysis_processing(self, token: str) -> bool:
        """Is DT still processing the BOM upload of this token (its analysis included)?
        ``GET /api/v1/event/token/{token}`` (DT 4.11+, 5.x: authentication only); where DT
        has no such endpoint (404), the older ``GET /api/v1/bom/token/{token}``. A 401 or 403
        is the key's problem (DtRejected), never taken for "done"."""
        path = f"api/v1/event/token/{token}"
        status, body = await self._json(path)
        if status == 404:  # DT before 4.11
            path = f"api/v1/bom/token/{token}"
            status, body = await self._json(path)
        flag = body.get("processing") if isinstance(body, dict) else None
        if status == 200 and isinstance(flag, bool):
            return flag
        if status == 200:
            raise DtMisconfigured(f"GET /{path} answered 200 without a processing flag")
        if status == 403:
            raise DtRejected(
                f"DT answered 403 for GET /{path}: the API key's team may not ask whether a BOM "
                "upload is processed (BOM_UPLOAD before DT 4.11)",
                status=403,
            )
        if status == 404:
            raise DtMisconfigured(
                f"DT answers 404 for GET /api/v1/event/token and /{path}: is "
                "DTRACK_WORKER_DT_URL Dependency-Track's API server?"
            )
        raise answers.failure(status, None, "", path)

    async def findings(self, project_uuid: str) -> list[dict[str, Any]]:
        """``GET /api/v1/finding/project/{uuid}?suppressed=true``: every finding, suppressed ones
        included (VIEW_VULNERABILITY). DT 4.x answers the whole list at once, DT 5 in pages
        (``X-Total-Count``): read until every row counted is in, whatever page size comes back
        (a proxy may cap it); a read short of the count is retried whole, never taken as is."""
        path = f"api/v1/finding/project/{project_uuid}"
        return await self._retrying(
            functools.partial(self._every_finding, path), project_uuid=project_uuid
        )

    async def _every_finding(self, path: str) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        size, read = FINDINGS_PAGE, 0  # rows read so far, counted as DT counts them
        for _ in range(MAX_FINDING_PAGES):
            page = read // size + 1  # read is a multiple of size: pages line up with rows
            items, total = await self._finding_page(
                path, {"suppressed": "true", "pageNumber": str(page), "pageSize": str(size)}
            )
            fresh = {item["matrix"]: item for item in items if item["matrix"] not in found}
            found |= fresh
            read += len(items)
            if total is None:  # no count to read up to: until a short page, or nothing new
                if len(items) < size or not fresh:
                    return list(found.values())
                continue
            if len(found) >= total:  # findings, not rows: a list growing while paged repeats one
                return list(found.values())
            if not fresh or read % len(items) or read >= total:  # nothing new, or not lined up
                raise Retry(
                    f"GET /{path}: read {len(found)} findings of the {total} DT counted, in "
                    f"{read} rows (page {page} had {len(items)} rows)"
                )
            size = len(items)  # a page capped (by a proxy, or DT): the next ones at that size
        raise Retry(f"GET /{path}: {read} rows in {MAX_FINDING_PAGES} pages, and not all yet")

    async def _finding_page(
        self, path: str, params: dict[str, str]
    ) -> tuple[list[dict[str, Any]], int | None]:
        limits = dataclasses.replace(self._export_limits, what=f"GET /{path}")
        with dthttp.transport_errors(path):
            async with dthttp.get(self._session, path, params) as response:
                if response.status != 200:
                    raise answers.failure(
                        response.status, response.headers.get("Retry-After"), "", path
                    )
                body = await dthttp.read_limited(response, limits)
                total = response.headers.get("X-Total-Count")
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise DtMisconfigured(f"GET /{path} answered 200 with something not JSON") from None
        if not isinstance(items, list) or not all(
            isinstance(item, dict) and isinstance(item.get("matrix"), str) for item in items
        ):
            raise DtMisconfigured(f"GET /{path} answered 200 without a list of findings")
        return items, int(total) if total and total.strip().isdigit() else None

    async def team(self) -> dict[str, Any] | None:
        """``GET /api/v1/team/self``: the key's team and permissions (DT 4.11+), else None."""
        status, body = await self._json("api/v1/team/self")
        if status in (401, 403):
            raise answers.failure(status, None, "", "api/v1/team/self")
        return body if status == 200 and isinstance(body, dict) else None

    async def list_projects(
        self,
        page: int,
        size: int,
        *,
        active_only: bool = False,
        name: str | None = None,
        search: str | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of ``GET /api/v1/project`` (1-based) and the ``X-Total-Count``, if sent.

        DT pages even without parameters (offset 0, limit 100), so callers always page.
        Anything but a list of project objects is DtMisconfigured, with what came instead.
        """
        params = {"pageNumber": str(page), "pageSize": str(size), "sortName": "name"}
        if active_only:
            params["excludeInactive"] = "true"
        if name is not None:  # every version of the project of exactly this name
            params["name"] = name
        if search is not None:  # names that contain it
            params["searchText"] = search
        path = "api/v1/project"

        async def once() -> tuple[list[dict[str, Any]], int | None]:
            status, body, headers = await self._get_small(path, params)
            if status == 403:
                raise DtRejected(
                    "DT answered 403: listing projects needs the VIEW_PORTFOLIO permission for "
                    "the API key's team",
                    status=403,
                )
            if status != 200:
                raise answers.failure(status, headers.get("Retry-After"), answers.peek(body), path)
            return answers.projects(body, path), answers.total(headers.get("X-Total-Count"), path)

        return await self._retrying(once, page=str(page))

    # -- plumbing ---------------------------------------------------------------------------

    async def _json(self, path: str, *, retry: bool = True) -> tuple[int, Any]:
        """(status, parsed JSON or None) of a small GET, retried like every call (``retry``)."""

        async def once() -> tuple[int, Any]:
            status, body, headers = await self._get_small(path)
            if status in dthttp.RETRYABLE_STATUSES:
                raise dthttp.retry_for(status, headers.get("Retry-After"), path)
            try:
                return status, orjson.loads(body) if body else None
            except orjson.JSONDecodeError:
                return status, None

        if not retry:
            try:
                return await once()
            except Retry as refused:
                raise DtUnavailable(refused.reason) from None
        return await self._retrying(once, path=path)

    async def _get_small(
        self, path: str, params: dict[str, str] | None = None
    ) -> tuple[int, bytes, Mapping[str, str]]:
        limits = Limits(max_bytes=_SMALL, what=f"GET /{path}")
        with dthttp.transport_errors(path):
            async with dthttp.get(self._session, path, params) as response:
                return (
                    response.status,
                    await dthttp.read_limited(response, limits),
                    response.headers.copy(),  # case-insensitive, as HTTP headers are
                )

    async def _retrying(self, once: Callable[[], Awaitable[_T]], **context: str) -> _T:
        """``once()`` until it stops asking for a retry, at most DTRACK_WORKER_DT_HTTP_ATTEMPTS."""
        attempts = self._settings.http_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await once()
            except Retry as retry:
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


async def _text(response: aiohttp.ClientResponse) -> str:
    return (await response.content.read(300)).decode("utf-8", "replace")
