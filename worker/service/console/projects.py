"""The projects pages (the issue's "lines" until lines exist: each row is a DT project, one
UUID): a list from the state store, searchable, filtered by DT tag, paged; and a project's page
with its findings and its change timeline (the finding history), newest first."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from worker.adapters.state import console_queries
from worker.adapters.state.store import StateUnavailable
from worker.service import sync
from worker.service.console import replies
from worker.service.console.sources import SOURCES

PAGE = 50
STATUSES = ("open", "resolved", "suppressed")


class BadQuery(Exception):
    """A query parameter that is not what the page takes: 400, naming it."""


def _offset(request: web.Request, name: str = "offset") -> int:
    raw = request.query.get(name, "0")
    if not raw.isdigit():
        raise BadQuery(f"{name}={raw!r} must be a whole number (rows to skip)")
    return int(raw)


async def projects(request: web.Request) -> web.Response:
    return await listed(request, console_queries.projects_and_tags, "projects.html")


async def listed(
    request: web.Request, read: Callable[..., tuple[Any, list[str]]], template: str
) -> web.Response:
    """A page of a list searched by name and filtered by tag (projects, or lines): ``read``
    answers the page and the store's tags in one unit of work."""
    sources = request.app[SOURCES]
    search = request.query.get("q", "").strip()[:200] or None
    tag = request.query.get("tag", "").strip()[:200] or None
    if sources.store is None:
        return await _no_store(request)
    try:
        found, tags = await sources.store.read(read, search, _offset(request), PAGE, tag)
    except StateUnavailable as exc:
        return replies.error(request, 503, str(exc))
    except BadQuery as exc:
        return replies.error(request, 400, str(exc))
    return await replies.page(
        request,
        template,
        {"page": found, "q": search or "", "tag": tag or "", "tags": tags, "now": time.time()},
    )


async def project(request: web.Request) -> web.Response:
    sources = request.app[SOURCES]
    uuid = request.match_info["uuid"].lower()
    if not sync.UUID.match(uuid):
        return replies.error(request, 404, f"{uuid!r} is not a project UUID")
    if sources.store is None:
        return await _no_store(request)
    status = request.query.get("status", "open")
    if status not in (*STATUSES, "all"):
        return replies.error(
            request, 400, f"status={status!r} must be one of open, resolved, suppressed, all"
        )
    try:
        row = await sources.store.read(console_queries.project, uuid)
        if row is None:
            return replies.error(request, 404, f"the state store knows no project {uuid}")
        findings = await sources.store.read(
            console_queries.findings,
            uuid,
            None if status == "all" else status,
            _offset(request),
            PAGE,
        )
        changes = await sources.store.read(
            console_queries.timeline, uuid, _offset(request, "changes"), PAGE
        )
    except StateUnavailable as exc:
        return replies.error(request, 503, str(exc))
    except BadQuery as exc:
        return replies.error(request, 400, str(exc))
    return await replies.page(
        request,
        "project.html",
        {
            "project": row,
            "findings": findings,
            "changes": changes.page,
            "recorded": changes.recorded,
            "status": status,
            "statuses": (*STATUSES, "all"),
            "now": time.time(),
            "history_days": sources.settings.state.history_days,
        },
    )


async def _no_store(request: web.Request) -> web.Response:
    return replies.error(
        request,
        404,
        "the state store is not used here (DTRACK_WORKER_EMIT=snapshot): no project history "
        "to show; the Sync page lists DT's projects",
    )
