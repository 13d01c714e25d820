"""``dtrack-worker sync LINE`` (DTRACK_WORKER_TRACK=line): the line's versions listed from the
fake DT, exactly one SYNC job for its current version on the real RabbitMQ (a topology of the
test's own prefix, removed after), and clear errors (exit 1, nothing queued) for a line DT does
not know, several lines, no active version, or DT refusing."""

from __future__ import annotations

import uuid

import pytest

from tests.fake_dt import API_KEY, FakeDt
from tests.harness import REAL
from tests.rabbit import drain
from tests.test_operations import _env, cli
from worker.core import jobs

pytestmark = pytest.mark.rabbitmq


def _version(dt: FakeDt, name: str, version: str, **facts: object) -> str:
    project = str(uuid.uuid4())
    dt.projects.append(
        {"uuid": project, "name": name, "version": version, "tags": [], "active": True} | facts
    )
    dt.exports[project] = REAL
    return project


def _line_env(prefix: str, dt: FakeDt, **more: str) -> dict[str, str]:
    return (
        _env(prefix, dt)
        | {"DTRACK_WORKER_TRACK": "line"}
        | {f"DTRACK_WORKER_{k.upper()}": v for k, v in more.items()}
    )


async def test_sync_line_queues_one_job_for_its_current_version(serve, dt: FakeDt, contracts):
    _, topo, _, settings = await serve(work=False)
    _version(dt, "acme-shop", "1.0", isLatest=False, lastBomImport=3_000)
    latest = _version(dt, "acme-shop", "2.0", isLatest=True, lastBomImport=2_000)
    _version(dt, "acme-shop", "3.0-rc", isLatest=False, lastBomImport=4_000, active=False)
    code, out, err = await cli("sync", "acme-shop", env=_line_env(settings.broker.prefix, dt))
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == (
        f"acme-shop: the line's current version is acme-shop@2.0 ({latest}: DT flags it isLatest)"
    )
    assert lines[1].startswith("acme-shop@2.0: queued (job ")
    (message,) = await drain(topo.jobs_queue.name)  # exactly one job: the current version's
    job = jobs.Job.from_json(message.body, contracts.job)
    assert (job.project_uuid, job.trigger) == (latest, "SYNC")


async def test_sync_line_wait_follows_the_current_versions_job(serve, dt: FakeDt):
    _, _, events, settings = await serve(track="line")
    _version(dt, "acme-api", "1.0", lastBomImport=1_000)
    newest = _version(dt, "acme-api", "1.1", lastBomImport=2_000)  # DT 4.11: no isLatest
    code, out, err = await cli(
        "sync", "acme-api", "--wait", "--timeout", "30", env=_line_env(settings.broker.prefix, dt)
    )
    assert code == 0, out + err
    assert f"({newest}: the active version last imported)" in out
    assert "acme-api@1.1: a worker took the job (attempt 1)" in out.splitlines()
    assert "sync: 1 of 1 projects synced" in out.splitlines()
    (summary,) = events.summaries().values()
    assert summary["data"]["project"]["uuid"] == newest


async def test_sync_line_errors_say_why_and_queue_nothing(serve, dt: FakeDt):
    _, topo, _, settings = await serve(work=False)
    env = _line_env(settings.broker.prefix, dt, line_by=r"name+version:^(\d+)\.")
    _version(dt, "acme-portal", "1.0")
    two = _version(dt, "acme-portal", "2.0")
    _version(dt, "acme-legacy", "1.0", active=False)
    cases = {
        "acme-portal": "acme-portal names 2 lines; say which: acme-portal#1, acme-portal#2",
        "acme-portal#3": "acme-portal#3: DT has no such line (lines of that name: acme-portal#1, "
        "acme-portal#2)",
        "acme-legacy": "acme-legacy#1: no active version in DT (1 inactive): nothing to sync",
        "acme-nothing": "acme-nothing: DT has no such project (similar names: none)",
    }
    for argument, message in cases.items():
        code, out, err = await cli("sync", argument, env=env)
        assert (code, out) == (1, ""), (argument, out, err)
        assert f"dtrack-worker sync: {message}" in err, err
    code, out, err = await cli("sync", "acme-portal#2", env=env)
    assert code == 0, out + err
    assert f"acme-portal#2: the line's current version is acme-portal@2.0 ({two}:" in out
    assert len(await drain(topo.jobs_queue.name)) == 1
    dt.portfolio_forbidden = True  # DT refusing: an error naming it, never a secret
    code, out, err = await cli("sync", "acme-portal#2", env=env)
    assert code == 1, out + err
    assert "403" in err
    assert API_KEY not in out + err
    assert await drain(topo.jobs_queue.name) == []
