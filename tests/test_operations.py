"""Operations: backfill and the parked-job commands, run as users run them (the CLI)."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fake_dt import API_KEY, FakeDt
from tests.harness import REAL, post
from tests.rabbit import AMQP_URL, drain, eventually
from tests.waiting import until
from worker.core import jobs

pytestmark = pytest.mark.rabbitmq

SCRIPT = shutil.which("dtrack-worker", path=str(Path(sys.executable).parent))


async def cli(*args: str, env: dict[str, str], stdin: bytes | None = None) -> tuple[int, str, str]:
    assert SCRIPT
    process = await asyncio.create_subprocess_exec(
        SCRIPT,
        *args,
        env={"PATH": os.environ.get("PATH", "")} | env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _env(prefix: str, dt: FakeDt) -> dict[str, str]:
    return {
        "DTRACK_WORKER_PREFIX": prefix,
        "DTRACK_WORKER_AMQP_URL": AMQP_URL,
        "DTRACK_WORKER_DT_URL": dt.url,
        "DTRACK_WORKER_DT_API_KEY": API_KEY,
        "DTRACK_WORKER_DT_BACKOFF_SECONDS": "0.05",
    }


def _portfolio(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [
        {"uuid": str(uuid.uuid4()), "name": f"project-{n:04d}", "active": True, "tags": []} | fields
        for n in range(count)
    ]


async def test_backfill_pages_through_every_project_once(serve, dt: FakeDt, contracts):
    _, topo, _, settings = await serve(work=False)
    dt.projects = _portfolio(250)  # three pages of 100
    code, out, err = await cli("backfill", env=_env(settings.broker.prefix, dt))
    assert code == 0, err
    assert "backfill done: 250 jobs enqueued for 250 projects" in out
    assert "seen 250/250 projects" in err.splitlines()[-1]
    queued = [jobs.Job.from_json(m.body, contracts.job) for m in await drain(topo.jobs_queue.name)]
    assert sorted(job.project_uuid for job in queued) == sorted(p["uuid"] for p in dt.projects)
    assert {job.trigger for job in queued} == {"BACKFILL"}


async def test_backfill_twice_and_with_projects_added_while_paging(serve, dt: FakeDt, contracts):
    _, topo, _, settings = await serve(work=False)
    dt.projects = _portfolio(150)
    added = _portfolio(30)

    def grow(page: int) -> None:  # after the first page, 30 projects sort in before the rest
        if page == 2 and added[0] not in dt.projects:
            dt.projects[:0] = added

    dt.on_page = grow
    code, _, err = await cli("backfill", env=_env(settings.broker.prefix, dt))
    assert code == 0, err
    queued = [jobs.Job.from_json(m.body, contracts.job) for m in await drain(topo.jobs_queue.name)]
    uuids = [job.project_uuid for job in queued]
    assert len(uuids) == len(set(uuids)) == 180  # every project once, the late ones included

    dt.on_page = None
    code, out, _ = await cli("backfill", env=_env(settings.broker.prefix, dt))
    assert code == 0
    assert "180 jobs enqueued" in out  # a second run queues again: workers coalesce repeats


async def test_backfill_filters_by_tag_and_activity(serve, dt: FakeDt, contracts):
    _, topo, _, settings = await serve(work=False)
    dt.projects = (
        _portfolio(3, tags=[{"name": "production"}])
        + _portfolio(4)
        + _portfolio(2, active=False, tags=[{"name": "production"}])
    )
    env = _env(settings.broker.prefix, dt)
    code, out, _ = await cli("backfill", "--tag", "production", "--active-only", env=env)
    assert code == 0
    assert "3 jobs enqueued for 7 projects (4 skipped: out of scope or without --tag)" in out
    assert len(await drain(topo.jobs_queue.name)) == 3


async def test_backfill_says_plainly_that_it_needs_view_portfolio(serve, dt: FakeDt):
    _, _, _, settings = await serve(work=False)
    dt.portfolio_forbidden = True
    code, _, err = await cli("backfill", env=_env(settings.broker.prefix, dt))
    assert code == 1
    assert "VIEW_PORTFOLIO" in err
    assert API_KEY not in err


async def test_a_parked_job_is_listed_shown_and_replayed_after_the_fix(serve, dt: FakeDt):
    client, _, events, settings = await serve()
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    dt.forbidden.add(project)  # the API key's team may not see it
    (job,) = (await post(client, project))["jobs"]
    env = _env(settings.broker.prefix, dt)

    async def parked_list() -> str:
        code, out, err = await cli("parked", "list", env=env)
        assert code == 0, err
        return out

    listing = await until(
        parked_list,
        lambda out: job["job_id"] in out,
        what=f"`parked list` naming job {job['job_id']}",
        every=0.1,
    )
    assert listing.startswith("1 parked job\n")
    assert f"{job['job_id']}  dt_rejected" in listing
    code, out, _ = await cli("parked", "show", job["job_id"], env=env)
    assert code == 0
    shown = orjson.loads(out)
    assert shown["job"]["project_uuid"] == project
    assert "DT answered 403" in shown["error"]
    again = await parked_list()  # reading took nothing away
    assert again.startswith("1 parked job\n")
    assert f"{job['job_id']}  dt_rejected" in again

    dt.forbidden.clear()  # the fix
    code, out, _ = await cli("parked", "replay", job["job_id"], env=env)
    assert (code, out.strip()) == (0, "replayed 1 job to the jobs queue")
    await eventually(lambda: len(events.summaries()) == 1)
    assert (await parked_list()).startswith("0 parked jobs")


async def test_purge_asks_first_and_deletes_only_what_it_is_told(serve, dt: FakeDt):
    client, topo, _, settings = await serve()
    env = _env(settings.broker.prefix, dt)
    ids = []
    for _ in range(2):
        project = str(uuid.uuid4())
        dt.exports[project] = REAL
        dt.forbidden.add(project)
        ids.append((await post(client, project))["jobs"][0]["job_id"])
    await until(
        lambda: cli("parked", "list", env=env),
        lambda result: result[1].startswith("2 parked jobs"),
        what="`parked list` saying 2 parked jobs",
        every=0.1,
    )

    code, _, err = await cli("parked", "purge", "--all", env=env, stdin=b"")
    assert code == 2
    assert "confirm with --yes" in err
    code, out, _ = await cli("parked", "purge", ids[0], "--yes", env=env)
    assert (code, out.strip()) == (0, "deleted 1 parked job")
    remaining = await drain(topo.parked_queue.name)
    assert [message.message_id for message in remaining] == [ids[1]]


async def test_reconcilers_on_many_workers_run_one_pass_at_a_time(dt: FakeDt, rabbitmq: str):
    from tests.rabbit import temporary_topology, unique_prefix
    from worker.adapters.broker import Broker
    from worker.core import topology
    from worker.core.config import Settings
    from worker.service.backfill import Progress
    from worker.service.reconcile import Reconciler

    prefix = unique_prefix()
    # a duplicate token is dropped when delivered within half an interval of the last pass's
    # end: 2 s of room for a slow machine (1 s of it failed); the pass takes longer than half
    # an interval (a big portfolio), which let the duplicates run when it counted from the start
    interval, pass_seconds = 4.0, 2.5
    async with temporary_topology(prefix) as topo:
        settings = Settings.from_env(_env(prefix, dt))
        passes: list[tuple[float, float, int]] = []
        running: set[int] = set()
        overlaps: list[tuple[int, set[int]]] = []
        loop = asyncio.get_running_loop()

        def pass_of(n: int):
            async def run() -> Progress:
                if running:  # seen by the pass itself, not by sampling from outside
                    overlaps.append((n, set(running)))
                running.add(n)
                started = loop.time()
                await asyncio.sleep(pass_seconds)
                running.discard(n)
                passes.append((started, loop.time(), n))
                return Progress()

            return run

        brokers = [Broker(settings.broker, topology.build(prefix)) for _ in range(3)]
        reconcilers = [Reconciler(b, pass_of(n), interval=interval) for n, b in enumerate(brokers)]
        for broker in brokers:
            await broker.start()
        await eventually(lambda: all(b.ready for b in brokers), what="three brokers connected")
        # three workers start together: each may seed a token; the duplicates are dropped
        await asyncio.gather(*(r.start() for r in reconcilers))
        # two passes: the duplicates come right after the first, the token an interval later
        await eventually(lambda: len(passes) >= 2, within=3 * interval, seen=lambda: passes)
        for reconciler in reconcilers:
            await reconciler.stop()
        for broker in brokers:
            await broker.close()

    assert overlaps == []
    ordered = sorted(passes)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ordered))  # never together
    # one pass per interval, not one per worker: the token waits an interval after each pass
    # (a duplicate within half of one is dropped), where three tokens would follow each other
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(ordered)]
    assert min(gaps) >= interval / 2, gaps
    assert topo.reconcile_queue.arguments.get("single_active_consumer") is True


async def test_the_service_reconciles_every_project_on_its_interval(serve, dt: FakeDt):
    dt.projects = _portfolio(3)
    for project in dt.projects:
        dt.exports[project["uuid"]] = REAL
    _, topo, events, _ = await serve(reconcile_interval="30s")
    # the first pass runs at once, maybe before our listener was bound: those events went to
    # the unrouted queue (kept, as every unbound event is)
    early: list[dict[str, Any]] = []

    async def summaries() -> list[dict[str, Any]]:
        taken = [orjson.loads(m.body) for m in await drain(topo.unrouted_queue.name, settle=0.1)]
        early.extend(e for e in taken if e["type"] == "dtrack-worker.export.summary.v1")
        return early + list(events.summaries().values())

    await until(
        summaries,
        lambda found: len(found) >= 3,
        what="3 export summaries, on the events exchange or in the unrouted queue",
        within=30,
    )
    summaries_seen = await summaries()
    assert len(summaries_seen) == 3
    assert {event["data"]["job"]["trigger"] for event in summaries_seen} == {"RECONCILE"}
