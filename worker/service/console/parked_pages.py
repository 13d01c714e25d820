"""The Parked page: every parked job with its reason, error, attempts, project and message;
filters by reason, project and time; replay one, replay or purge all that match (purge after a
confirmation showing how many). The work is worker.adapters.parked's, as for
``dtrack-worker parked``: the same functions, run on a thread (they run their own loop)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiMapping

from worker.adapters import parked
from worker.adapters.amqp import BROKER_ERRORS
from worker.core.errors import PermanentError, TransientError
from worker.service.console import auth, replies
from worker.service.console.sources import SOURCES

SHOWN = 200  # rows on the page; the counts and the actions cover every match
SINCE = {"": None, "1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}


@dataclasses.dataclass(frozen=True, slots=True)
class Filter:
    reason: str = ""
    project: str = ""
    since: str = ""

    @classmethod
    def of(cls, values: MultiMapping[Any]) -> Filter:
        since = str(values.get("since", ""))
        return cls(
            reason=str(values.get("reason", "")).strip()[:100],
            project=str(values.get("project", "")).strip().lower()[:200],
            since=since if since in SINCE else "",
        )

    def matches(self, job: parked.Parked, now: datetime) -> bool:
        if self.reason and job.reason != self.reason:
            return False
        if self.project:
            uuid, name = project_of(job)
            known = f"{uuid or ''} {name or ''}".lower()
            if self.project not in known:
                return False
        window = SINCE[self.since]
        if window is not None:
            try:
                if datetime.fromisoformat(job.parked_at) < now - window:
                    return False
            except ValueError:
                return False
        return True


def project_of(job: parked.Parked) -> tuple[str | None, str | None]:
    """The job's project UUID and name, from its message (None where it is not a job)."""
    try:
        body = orjson.loads(job.body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    uuid, name = body.get("project_uuid"), body.get("project_name")
    return (uuid if isinstance(uuid, str) else None, name if isinstance(name, str) else None)


def readable(job: parked.Parked) -> str:
    """The message, indented when it is JSON, else as text."""
    with contextlib.suppress(orjson.JSONDecodeError):
        return orjson.dumps(orjson.loads(job.body), option=orjson.OPT_INDENT_2).decode()
    return job.body.decode("utf-8", "replace")


async def _collect(request: web.Request) -> list[parked.Parked]:
    sources = request.app[SOURCES]
    async with sources.parked_lock:
        return await asyncio.to_thread(parked.collect, sources.settings)


async def _act(request: web.Request, action: Callable[..., list[str]], ids: list[str]) -> list[str]:
    """``parked.replay`` or ``parked.purge`` of ``ids`` (none: nothing, never every job)."""
    if not ids:
        return []
    sources = request.app[SOURCES]
    async with sources.parked_lock:
        return await asyncio.to_thread(action, sources.settings, ids)


async def _matching(
    request: web.Request, values: MultiMapping[Any]
) -> tuple[Filter, list[parked.Parked]]:
    chosen = Filter.of(values)
    now = datetime.now(UTC)
    return chosen, [job for job in await _collect(request) if chosen.matches(job, now)]


def _broker_error(request: web.Request, exc: BaseException) -> web.Response:
    return replies.error(request, 503, f"RabbitMQ: {type(exc).__name__}: {exc}")


async def listing(request: web.Request) -> web.Response:
    try:
        everything = await _collect(request)
    except (TransientError, PermanentError, *BROKER_ERRORS) as exc:
        return _broker_error(request, exc)
    chosen, now = Filter.of(request.query), datetime.now(UTC)
    jobs = [job for job in everything if chosen.matches(job, now)]
    return await replies.page(
        request,
        "parked.html",
        {
            "jobs": [(job, *project_of(job), job.age(now)) for job in jobs[:SHOWN]],
            "count": len(jobs),
            "total": len(everything),
            "shown": SHOWN,
            "filter": chosen,
            "reasons": sorted({job.reason for job in everything}),
            "since_choices": list(SINCE),
            "done": request.query.get("done", ""),
        },
    )


async def detail(request: web.Request) -> web.Response:
    try:
        everything = await _collect(request)
    except (TransientError, PermanentError, *BROKER_ERRORS) as exc:
        return _broker_error(request, exc)
    wanted = request.match_info["id"]
    job = next((j for j in everything if j.id == wanted), None)
    if job is None:
        return replies.error(request, 404, f"not parked: {wanted}")
    uuid, name = project_of(job)
    return await replies.page(
        request,
        "parked_job.html",
        {
            "job": job,
            "uuid": uuid,
            "name": name,
            "age": job.age(datetime.now(UTC)),
            "message": readable(job),
            "problems": job.problems,
        },
    )


async def replay(request: web.Request) -> web.Response:
    """POST: ``id`` for one job, or the filter's fields (with ``all``) for every match."""
    if (refused := auth.refuse_if_readonly(request)) is not None:
        return refused
    form = await request.post()
    try:
        if "id" in form:
            ids = [str(value) for value in form.getall("id")]
        else:
            _, jobs = await _matching(request, form)
            ids = [job.id for job in jobs]
        done = await _act(request, parked.replay, ids)
    except (TransientError, PermanentError, *BROKER_ERRORS) as exc:
        return _broker_error(request, exc)
    missing = sorted(set(ids) - set(done))
    if missing:
        listed = ", ".join(missing)
        return replies.error(request, 404, f"replayed {len(done)}; not parked: {listed}")
    return replies.see_other(f"/parked?done=replayed+{len(done)}")


async def purge(request: web.Request) -> web.Response:
    """POST with the filter: the confirmation page, naming how many; POST with ``confirm`` and
    the ids it showed: those are deleted (jobs parked since are not)."""
    if (refused := auth.refuse_if_readonly(request)) is not None:
        return refused
    form = await request.post()
    try:
        if form.get("confirm") == "yes":
            ids = [str(value) for value in form.getall("id", [])]
            done = await _act(request, parked.purge, ids)
            return replies.see_other(f"/parked?done=deleted+{len(done)}")
        chosen, jobs = await _matching(request, form)
    except (TransientError, PermanentError, *BROKER_ERRORS) as exc:
        return _broker_error(request, exc)
    return await replies.page(
        request, "purge.html", {"jobs": jobs, "filter": chosen, "count": len(jobs)}
    )
