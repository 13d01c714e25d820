"""The Sync page: DT's projects (searchable, paged), "Synchronize" for the ticked ones, and each
run's page, whose log is pushed live with Server-Sent Events and ends in the summary
``dtrack-worker sync --wait`` prints."""

from __future__ import annotations

from aiohttp import web

from worker.adapters.amqp import BROKER_ERRORS
from worker.adapters.state import console_activity, console_line_queries
from worker.adapters.state.store import StateUnavailable
from worker.core.errors import ConfigError, PermanentError, TransientError
from worker.service import sync, sync_lines
from worker.service.console import auth, replies, runs
from worker.service.console.sources import SOURCES

PAGE = 50
MAX_TARGETS = 500  # one form's worth: more is a backfill's job
KEEPALIVE_SECONDS = 15.0


async def sync_page(request: web.Request) -> web.Response:
    sources = request.app[SOURCES]
    search = request.query.get("q", "").strip()[:200] or None
    raw_page = request.query.get("page", "1")
    number = int(raw_page) if raw_page.isdigit() and int(raw_page) > 0 else 1
    listed: list[dict[str, object]] = []
    total: int | None = None
    problem = None
    if sources.dt is None:
        problem = "set DTRACK_WORKER_DT_URL and DTRACK_WORKER_DT_API_KEY to list DT's projects"
    else:
        try:
            listed, total = await sources.dt.list_projects(number, PAGE, search=search)
        except (TransientError, PermanentError) as exc:
            problem = f"DT's project list is unavailable: {exc}"
    return await replies.page(
        request,
        "sync.html",
        {
            "projects": listed,
            "total": total,
            "number": number,
            "more": len(listed) == PAGE,
            "q": search or "",
            "problem": problem,
            "runs": await sources.runs.latest(),
        },
    )


async def start(request: web.Request) -> web.Response:
    if (refused := auth.refuse_if_readonly(request)) is not None:
        return refused
    sources = request.app[SOURCES]
    form = await request.post()
    chosen = [value for value in form.getall("project", []) if isinstance(value, str)]
    lines = [value.strip() for value in form.getall("line", []) if isinstance(value, str)]
    if not chosen and not lines:
        return replies.error(request, 400, "tick at least one project or line to synchronize")
    if len(chosen) + len(lines) > MAX_TARGETS:
        return replies.error(request, 400, f"at most {MAX_TARGETS} projects or lines at once")
    if sources.dt is None:
        return replies.error(request, 503, "DT is not configured (DTRACK_WORKER_DT_URL)")
    try:
        targets = [await sync.resolve(sources.dt, value.strip()) for value in chosen]
        targets += await _current_versions(request, lines)
    except (ConfigError, sync_lines.LineRefused) as exc:
        return replies.error(request, 400, str(exc))
    except StateUnavailable as exc:
        return replies.error(request, 503, str(exc))
    except (TransientError, PermanentError) as exc:
        return replies.error(request, 503, f"DT could not say which projects: {exc}")
    try:
        run = await sources.runs.start(targets)
    except runs.TooManyRuns as exc:
        return replies.error(request, 503, str(exc))
    except (TransientError, *BROKER_ERRORS) as exc:
        return replies.error(request, 503, f"nothing queued: {type(exc).__name__}: {exc}")
    return replies.see_other(f"/sync/runs/{run.id}")


async def _current_versions(request: web.Request, line_ids: list[str]) -> list[sync.Target]:
    """The ticked lines' current versions as DT lists them now (``sync LINE``'s choice): one
    SYNC job per line, whose export moves the line."""
    sources = request.app[SOURCES]
    if not line_ids:
        return []
    if sources.store is None or sources.dt is None:
        raise ConfigError("lines need the state store (DTRACK_WORKER_EMIT=delta) and DT")
    known = await sources.store.read(console_line_queries.named, line_ids)
    targets: list[sync.Target] = []
    for line_id in line_ids:
        if line_id not in known:
            raise ConfigError(f"the state store knows no line {line_id!r}")
        found = await sync_lines.resolve_line_id(
            sources.dt, known[line_id], sources.settings.state.line_by, known[line_id].source
        )
        if found.target not in targets:
            targets.append(found.target)
    return targets


async def run_page(request: web.Request) -> web.Response:
    sources = request.app[SOURCES]
    settled: list[console_activity.Job] = []
    try:
        run = await sources.runs.get(request.match_info["run"])
        if run is not None and run.interrupted and sources.store is not None:
            # the console stopped following it; the workers did not: their outcomes
            settled = await sources.store.read(
                console_activity.jobs_of_run, run.run_id, len(run.jobs)
            )
    except StateUnavailable as exc:
        return replies.error(request, 503, str(exc))
    if run is None:
        return replies.error(request, 404, "no such sync run here (the latest runs are kept)")
    return await replies.page(request, "run.html", {"run": run, "history": settled})


async def events(request: web.Request) -> web.StreamResponse:
    """``text/event-stream``: each log line as a message (its index as the event id, so a
    reconnecting browser resumes after Last-Event-ID), then ``end`` with the summary."""
    runs = request.app[SOURCES].runs
    try:
        run = await runs.get(request.match_info["run"])
    except StateUnavailable as exc:
        return replies.error(request, 503, str(exc))
    if run is None:
        return replies.error(request, 404, "no such sync run here")
    last = request.headers.get("Last-Event-ID", "")
    sent = int(last) + 1 if last.isdigit() else 0
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    try:
        while not runs.closing:
            while sent < len(run.lines):
                await response.write(_event("message", run.lines[sent], sent))
                sent += 1
            if run.summary is not None:
                await response.write(_event("end", run.summary, sent))
                break
            await run.changed(KEEPALIVE_SECONDS)
            if sent == len(run.lines) and run.summary is None:
                await response.write(b": keepalive\n\n")
        await response.write_eof()
    except ConnectionResetError:  # the browser went away: nothing to tell it
        pass
    return response


def _event(kind: str, text: str, index: int) -> bytes:
    data = "".join(f"data: {line}\n" for line in text.splitlines() or [""])
    return f"event: {kind}\nid: {index}\n{data}\n".encode()
