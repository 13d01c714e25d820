"""``dtrack-worker backfill``: one job per DT project, to catch up or reconcile.

Pages ``GET /api/v1/project`` and enqueues a job (trigger BACKFILL) for every project not yet
seen in this run. Safe to run twice (jobs are idempotent, coalescing absorbs repeats) and while
projects are added or removed: when the total changes during a pass, another pass picks up what
moved between pages, without enqueueing anything twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from worker.adapters.broker import Broker
from worker.adapters.dtrack import DtClient
from worker.core import jobs

PAGE_SIZE = 100
MAX_PASSES = 3


@dataclasses.dataclass
class Progress:
    seen: int = 0
    enqueued: int = 0
    skipped: int = 0  # filtered out (--tag, inactive)
    total: int = 0
    started: float = dataclasses.field(default_factory=time.monotonic)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.enqueued / elapsed
        remaining = max(self.total - self.seen, 0)
        eta = remaining / (self.seen / elapsed) if self.seen else 0.0
        return (
            f"seen {self.seen}/{self.total} projects, enqueued {self.enqueued}, "
            f"skipped {self.skipped}, {rate:.1f}/s, ETA {eta:.0f} s"
        )


async def backfill(
    dt: DtClient,
    broker: Broker,
    *,
    trigger: str = "BACKFILL",
    active_only: bool = False,
    tag: str | None = None,
    rate: float | None = None,
    report: Callable[[Progress], None] = lambda _: None,
) -> Progress:
    run = f"{trigger.lower()}:{uuid.uuid4()}"
    progress = Progress()
    enqueued: set[str] = set()
    pause = 1.0 / rate if rate else 0.0
    for _ in range(MAX_PASSES):
        page, total_at_start = 1, None
        while True:
            projects, total = await dt.list_projects(page, PAGE_SIZE, active_only=active_only)
            total_at_start = total if total_at_start is None else total_at_start
            progress.total = max(progress.total, total)
            if not projects:
                break
            for project in projects:
                project_uuid = str(project.get("uuid", "")).lower()
                if not project_uuid or project_uuid in enqueued:
                    continue
                progress.seen += 1
                enqueued.add(project_uuid)
                tags = {t.get("name") for t in project.get("tags") or () if isinstance(t, dict)}
                if tag is not None and tag not in tags:
                    progress.skipped += 1
                    continue
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
            report(progress)
            if page * PAGE_SIZE >= total:
                break
            page += 1
        if total == total_at_start:  # nothing moved between pages during this pass
            break
    return progress
