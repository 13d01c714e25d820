"""The Lines pages (docs/lines.md: all versions of a DT project that share a change stream):
a list from the state store's ``lines`` table, searchable, filtered by the current version's DT
tag, paged; and a line's page with its versions and its open and suppressed findings, from its
unpacked state, and its change timeline (line_history), newest first, with the mean time to
resolve."""

from __future__ import annotations

import dataclasses
import re
import time

from aiohttp import web

from worker.adapters.state import console_line_queries, line_timeline_queries
from worker.adapters.state.console_queries import Page
from worker.adapters.state.store import StateUnavailable
from worker.core import line_state
from worker.core.events import SEVERITY_RANK
from worker.core.lines import Line
from worker.service.console import replies
from worker.service.console.projects import PAGE, BadQuery, _no_store, _offset, listed
from worker.service.console.sources import SOURCES

LINE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclasses.dataclass(frozen=True, slots=True)
class ShownFinding:
    """A line finding as the line's page lists it (DT's text: untrusted, escaped)."""

    id: str
    package: str
    vulnerability: str
    aliases: tuple[str, ...]
    severity: str
    versions: list[str]
    status: str
    carried: bool
    opened_at: float


async def lines(request: web.Request) -> web.Response:
    return await listed(request, console_line_queries.lines_and_tags, "lines.html")


async def line(request: web.Request) -> web.Response:
    sources = request.app[SOURCES]
    line_id = request.match_info["id"].lower()
    if not LINE_ID.match(line_id):
        return replies.error(request, 404, f"{line_id!r} is not a line id")
    if sources.store is None:
        return await _no_store(request)
    try:
        offset = _offset(request)
        detail = await sources.store.read(console_line_queries.line, line_id)
        history = await sources.store.read(
            line_timeline_queries.timeline, line_id, _offset(request, "changes"), PAGE
        )
    except StateUnavailable as exc:
        return replies.error(request, 503, str(exc))
    except BadQuery as exc:
        return replies.error(request, 400, str(exc))
    if detail is None:
        return replies.error(request, 404, f"the state store knows no line {line_id}")
    row = detail.row
    state = line_state.unpack(Line(detail.source, row.group, row.name, row.track), detail.state)
    findings = sorted(
        (_shown(f) for f in state.findings.values()),
        key=lambda f: (f.status != "open", SEVERITY_RANK.get(f.severity, 99), -f.opened_at, f.id),
    )
    opened = [f.opened_at for f in findings if f.status == "open"]
    page = Page(findings[offset : offset + PAGE], offset, PAGE, len(findings) > offset + PAGE)
    return await replies.page(
        request,
        "line.html",
        {
            "line": row,
            "versions": detail.versions,
            "findings": page,
            "oldest_open_at": min(opened) if opened else None,
            "changes": history.page,
            "resolve_seconds": history.resolve_seconds,
            "resolved": history.resolved,
            "history_days": sources.settings.state.history_days,
            "now": time.time(),
        },
    )


def _shown(found: line_state.StoredFinding) -> ShownFinding:
    versions = sorted(
        {i.instance.component_version for i in found.instances if i.instance.component_version}
    )
    return ShownFinding(
        id=found.id,
        package=found.package.key,
        vulnerability=found.vulnerability,
        aliases=found.aliases,
        severity=found.severity,
        versions=versions,
        status=found.status,
        carried=found.carried,
        opened_at=found.opened_at,
    )
