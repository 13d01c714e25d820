"""The backfill pass: one job per DT project, to catch up or reconcile.

Pages ``GET /api/v1/project`` until an empty or short page (``X-Total-Count`` is not needed,
and not trusted) and enqueues a job (trigger BACKFILL) for every project not yet queued in this
run. Projects added or deleted while pages are read shift the pages under us, so a second
listing checks the first: whatever it shows that was not queued is queued, and the two sets
are compared until two listings in a row agree (at most ``MAX_PASSES``). What moved is
reported, never hidden. Safe to run twice: jobs are idempotent, coalescing absorbs repeats.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry.context import Context

from worker.adapters import tracing
from worker.adapters.broker import Broker
from worker.adapters.dtrack import DtClient
from worker.core import jobs
from worker.core.errors import DtMisconfigured
from worker.core.scope import EVERYTHING, OUT, Scope

PAGE_SIZE = 100
MAX_PASSES = 3


@dataclasses.dataclass
class Progress:
    seen: int = 0  # distinct projects listed
    enqueued: int = 0
    skipped: int = 0  # filtered out (--tag)
    total: int | None = None  # DT's X-Total-Count, when it sends one
    passes: int = 0  # listings of the whole portfolio
    added: set[str] = dataclasses.field(default_factory=set)  # appeared after the first
    removed: set[str] = dataclasses.field(default_factory=set)  # gone after being listed
    settled: bool = True  # the last two listings agreed
    started: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def moved(self) -> bool:
        """The portfolio changed while it was read (everything listed was queued anyway)."""
        return bool(self.added or self.removed) or not self.settled

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        total = "?" if self.total is None else str(self.total)
        return (
            f"seen {self.seen}/{total} projects, enqueued {self.enqueued}, "
            f"skipped {self.skipped}, {self.enqueued / elapsed:.1f}/s, pass {self.passes}"
        )

    def movement(self) -> str:
        """What moved, in words, for stderr."""
        parts = []
        if self.added:
            parts.append(f"{len(self.added)} appeared while it was read (they were queued)")
        if self.removed:
            parts.append(f"{len(self.removed)} disappeared (deleted, or made inactive)")
        if not self.settled:
            parts.append(
                f"the listing was still changing after {self.passes} passes: run backfill "
                "again when the portfolio is quieter"
            )
        return "the portfolio changed under the backfill: " + "; ".join(parts)


async def backfill(
    dt: DtClient,
    broker: Broker,
    *,
    trigger: str = "BACKFILL",
    active_only: bool = False,
    tag: str | None = None,
    rate: float | None = None,
    report: Callable[[Progress], None] = lambda _: None,
    scope: Scope = EVERYTHING,
) -> Progress:
    """Queue a job for every project DT lists (in ``scope``; with ``tag``, only those)."""
    with tracing.span(
        trigger.lower(), context=Context(), attributes={"dtrack_worker.active_only": active_only}
    ) as span:  # a trace of its own; every job it enqueues carries it
        progress = await _backfill(dt, broker, trigger, active_only, tag, rate, report, scope)
        if span is not None:
            span.set_attributes({"dtrack_worker.enqueued": progress.enqueued})
        return progress


async def _backfill(
    dt: DtClient,
    broker: Broker,
    trigger: str,
    active_only: bool,
    tag: str | None,
    rate: float | None,
    report: Callable[[Progress], None],
    scope: Scope,
) -> Progress:
    run = f"{trigger.lower()}:{uuid.uuid4()}"
    progress = Progress()
    seen: set[str] = set()  # every project listed so far, queued or skipped
    pause = 1.0 / rate if rate else 0.0

    async def take(project: dict[str, Any]) -> None:
        project_uuid = project["uuid"].lower()
        if project_uuid in seen:
            return
        seen.add(project_uuid)
        progress.seen += 1
        tags = {t.get("name") for t in project.get("tags") or () if isinstance(t, dict)}
        if tag is not None and tag not in tags:
            progress.skipped += 1
            return
        listed_tags = [name for name in tags if isinstance(name, str)]
        verdict, _ = scope.decide(project.get("name"), project.get("version"), listed_tags)
        if verdict == OUT:  # never queued; its state, if any, is kept
            progress.skipped += 1
            return
        job = jobs.Job(
            job_id=jobs.job_id(run, project_uuid),
            project_uuid=project_uuid,
            project_name=project.get("name"),
            trigger=trigger,
            notification_id=run,
            accepted_at=jobs.utc_timestamp(datetime.now(UTC)),
            correlation_id=run,
        )
        await broker.enqueue([job])
        progress.enqueued += 1
        if pause:
            await asyncio.sleep(pause)

    first: set[str] | None = None
    previous: set[str] | None = None
    for _ in range(MAX_PASSES):
        listed = await _listing(dt, active_only, take, progress, report)
        progress.passes += 1
        first = listed if first is None else first
        if previous is not None:
            progress.settled = listed == previous
            if progress.settled:
                break
        previous = listed
    progress.added = seen - (first or set())  # not in the first listing, in a later one
    progress.removed = seen - listed  # listed once, gone from the last listing
    return progress


async def _listing(
    dt: DtClient,
    active_only: bool,
    take: Callable[[dict[str, Any]], Any],
    progress: Progress,
    report: Callable[[Progress], None],
) -> set[str]:
    """Every project uuid of one listing, page by page, each handed to ``take``."""
    listed: set[str] = set()
    page = 1
    while True:
        projects, total = await dt.list_projects(page, PAGE_SIZE, active_only=active_only)
        progress.total = total if total is not None else progress.total
        fresh = {project["uuid"].lower() for project in projects} - listed
        if projects and not fresh and len(projects) >= PAGE_SIZE:
            raise DtMisconfigured(
                f"DT answered page {page} of GET /api/v1/project with projects of earlier "
                "pages only: something between us and DT drops the paging parameters"
            )
        for project in projects:
            listed.add(project["uuid"].lower())
            await take(project)
        report(progress)
        if len(projects) < PAGE_SIZE:  # empty or short: the last page
            return listed
        page += 1
