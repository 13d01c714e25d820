"""``dtrack-worker sync``: which projects the user means, and following their jobs to the end.

A project is named by its UUID, or by ``name`` / ``name@version`` as DT knows it; a name that
names no project, or several, is an error that lists the candidates. With ``--wait`` each job
names a progress queue of this run's own (header ``x-progress-queue``), and the workers report
there as the job starts, retries, and settles.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage

from worker.adapters.dtrack import DtClient
from worker.core import jobs
from worker.core.errors import ConfigError

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
PAGE = 100
MAX_CANDIDATES = 10
# how a job can end: synced, or not (parked, out of scope); "retried" is on the way
SYNCED = ("done", "coalesced", "gone", "stale", "baseline")
NOT_SYNCED = ("parked", "out_of_scope")


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    uuid: str
    name: str | None
    version: str | None

    @property
    def label(self) -> str:
        if self.name is None:
            return self.uuid
        return f"{self.name}@{self.version}" if self.version else self.name


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """A sync run's jobs: one SYNC job per project named (each once), and its target by job id."""

    id: str
    targets: dict[str, Target]
    jobs: list[jobs.Job]


def run_for(targets: Sequence[Target]) -> Run:
    """The SYNC jobs of a new run (``sync`` and the console's Sync page queue them)."""
    run_id = f"sync:{uuid.uuid4()}"
    accepted = jobs.utc_timestamp(datetime.now(UTC))
    queued = {jobs.job_id(run_id, t.uuid): t for t in {t.uuid: t for t in targets}.values()}
    made = [
        jobs.Job(
            job_id=job_id,
            project_uuid=target.uuid,
            project_name=target.name,
            trigger="SYNC",
            notification_id=run_id,
            accepted_at=accepted,
            correlation_id=run_id,
        )
        for job_id, target in queued.items()
    ]
    return Run(run_id, queued, made)


async def resolve(dt: DtClient, argument: str) -> Target:
    """The project ``argument`` names; ConfigError, with the candidates, when it names none or
    several."""
    if UUID.match(argument):
        found = await dt.project(argument.lower())
        if found is None:
            raise ConfigError(f"{argument}: DT has no project with this UUID")
        return Target(argument.lower(), found.get("name"), found.get("version"))
    matches = await _named(dt, argument, None)
    name, at, version = argument.rpartition("@")
    if not matches and at and name:  # name@version (a name may hold an @ too: @scope/pkg)
        matches = await _named(dt, name, version)
    if len(matches) == 1:
        (project,) = matches
        return Target(project["uuid"].lower(), project.get("name"), project.get("version"))
    if matches:
        raise ConfigError(
            f"{argument} names {len(matches)} projects; say which: "
            + ", ".join(_candidate(p) for p in matches[:MAX_CANDIDATES])
        )
    similar, _ = await dt.list_projects(1, MAX_CANDIDATES, search=name if at and name else argument)
    listed = ", ".join(_candidate(p) for p in similar) or "none"
    raise ConfigError(f"{argument}: DT has no such project (similar names: {listed})")


async def _named(dt: DtClient, name: str, version: str | None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        projects, _ = await dt.list_projects(page, PAGE, name=name)
        found.extend(
            p for p in projects if p.get("name") == name and version in (None, p.get("version"))
        )
        if len(projects) < PAGE:
            return found
        page += 1


def _candidate(project: dict[str, Any]) -> str:
    name, version = project.get("name"), project.get("version")
    return f"{name}@{version} ({project['uuid']})" if version else f"{name} ({project['uuid']})"


async def follow(
    channel: aio_pika.abc.AbstractChannel,
    queue: aio_pika.abc.AbstractQueue,
    jobs: dict[str, Target],
    *,
    within: float,
    say: Callable[[str], None],
    seen: Callable[[str, str, dict[str, Any]], None] | None = None,
) -> dict[str, str]:
    """Each job's last step, as the workers report them, until every job settled or ``within``
    seconds passed (those still unsettled end as "waiting"). ``seen``: told each report (job
    id, step, the report) after it is said."""
    last = dict.fromkeys(jobs, "queued")
    settled = asyncio.Event()

    async def on_update(message: AbstractIncomingMessage) -> None:
        update = orjson.loads(message.body)
        job = update.get("job_id")
        if job not in jobs:
            return
        step = str(update.get("step"))
        last[job] = step
        say(f"{jobs[job].label}: {describe(step, update)}")
        if seen is not None:
            seen(job, step, update)
        if all(s in SYNCED or s in NOT_SYNCED for s in last.values()):
            settled.set()

    # no acks: the queue is the follower's own and goes with its connection, so a report
    # delivered as the connection closes has nothing to acknowledge it on
    tag = await queue.consume(on_update, no_ack=True)
    try:
        async with asyncio.timeout(within):
            await settled.wait()
    except TimeoutError:
        for job, step in last.items():
            if step not in SYNCED and step not in NOT_SYNCED:
                say(f"{jobs[job].label}: not settled after {within:g} s (last: {step})")
                last[job] = "waiting"
    finally:
        await queue.cancel(tag)
    return last


def describe(step: str, update: dict[str, Any]) -> str:
    """One line of what a job did, for people."""
    if step == "started":  # in scope or not, fetched or covered already: not known yet
        return f"a worker took the job (attempt {update.get('attempt', 1)})"
    if step == "fetching":
        return f"fetching the export: {_size(update.get('bytes', 0))} so far"
    if step == "fetched":
        return f"fetched the export ({_size(update.get('bytes', 0))})"
    if step == "analysis_pending":
        detail = update.get("detail")
        return "waiting for DT's analysis of the project" + (f": {detail}" if detail else "")
    if step == "validating":
        return "validating the export and comparing it with the stored state"
    if step == "applied":
        return (
            f"applied: {update.get('transitions', 0)} transitions committed, "
            f"{update.get('outbox', 0)} events in the outbox for the relay to publish"
        )
    if step == "done":
        done = []
        if "events" in update:
            done.append(f"{update['events']} findings published")
        if "transitions" in update:
            done.append(f"{update['transitions']} transitions")
        return "synced: " + (", ".join(done) or "no change")
    texts = {
        "coalesced": "synced: a fetch that started after this request already covered it",
        "gone": "synced: DT no longer has the project; its open findings resolved",
        "stale": "synced: DT's export is older than the one already applied",
        "baseline": "synced: findings recorded as the baseline, without events",
        "out_of_scope": f"not synced: out of scope ({update.get('reason')})",
        "retried": f"failed for now, will retry: {update.get('error')}",
        "parked": f"not synced: parked ({update.get('reason')}): {update.get('error')}",
    }
    return texts.get(step, step)


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    return f"{count / 1024:.1f} KiB" if count < 1024**2 else f"{count / 1024**2:.1f} MiB"
