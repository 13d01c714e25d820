"""``dtrack-worker sync``: a job for the named projects now, and with --wait the story of each,
against a worker on the real RabbitMQ and the fake DT."""

from __future__ import annotations

import uuid

import orjson
import pytest

from tests.fake_dt import FakeDt
from tests.harness import REAL
from tests.rabbit import drain
from tests.test_operations import _env, cli
from worker.core import jobs

pytestmark = pytest.mark.rabbitmq


def _project(dt: FakeDt, name: str, version: str | None = None, export: bytes = REAL) -> str:
    project = str(uuid.uuid4())
    dt.projects.append({"uuid": project, "name": name, "version": version, "active": True,
                        "tags": []})  # fmt: skip
    dt.exports[project] = export
    return project


async def test_sync_wait_follows_a_project_that_syncs_and_one_that_parks(serve, dt: FakeDt):
    _, topo, _, settings = await serve()
    good = _project(dt, "acme-shop", "2.1.0")
    bad = _project(dt, "acme-blog")
    dt.exports.as_is(bad, orjson.dumps({"version": "1.2", "findings": "none"}))
    code, out, err = await cli(
        "sync", "acme-shop@2.1.0", bad, "--wait", "--timeout", "30",
        env=_env(settings.broker.prefix, dt),
    )  # fmt: skip
    assert code == 1, out + err  # one of the two did not sync
    lines = out.splitlines()
    assert any(line.startswith("acme-shop@2.1.0: queued (job ") for line in lines)
    assert "acme-shop@2.1.0: a worker took the job (attempt 1)" in lines
    assert "acme-shop@2.1.0: synced: 13 findings published" in lines
    assert "acme-blog: a worker took the job (attempt 1)" in lines
    (parked,) = [line for line in lines if line.startswith("acme-blog: not synced")]
    assert "parked (invalid_export)" in parked
    assert "sync: 1 of 2 projects synced" in lines
    assert [f.status for f in dt.fetches_of(good)] == [200]
    assert len(await drain(topo.parked_queue.name)) == 1


async def test_sync_wait_exits_0_when_every_project_synced(serve, dt: FakeDt):
    _, _, events, settings = await serve()
    project = _project(dt, "acme-api")
    code, out, err = await cli("sync", project, "--wait", env=_env(settings.broker.prefix, dt))
    assert code == 0, out + err
    assert "acme-api: synced: 13 findings published" in out.splitlines()
    assert "sync: 1 of 1 projects synced" in out.splitlines()
    (summary,) = events.summaries().values()
    assert summary["data"]["job"]["trigger"] == "SYNC"


async def test_an_unknown_or_ambiguous_name_is_an_error_that_lists_the_candidates(
    serve, dt: FakeDt
):
    _, topo, _, settings = await serve(work=False)
    first = _project(dt, "acme-portal", "1.0")
    second = _project(dt, "acme-portal", "2.0")
    # by project (by line, a name is its line: tests/test_line_sync.py)
    env = _env(settings.broker.prefix, dt) | {"DTRACK_WORKER_TRACK": "project"}
    code, _, err = await cli("sync", "acme-portal", env=env)
    assert code == 2
    assert "acme-portal names 2 projects; say which:" in err
    assert f"acme-portal@1.0 ({first})" in err
    assert f"acme-portal@2.0 ({second})" in err
    code, _, err = await cli("sync", "acme-portl", env=env)
    assert code == 2
    assert "acme-portl: DT has no such project (similar names: none)" in err
    code, _, err = await cli("sync", "portal", env=env)
    assert code == 2
    assert "portal: DT has no such project (similar names: acme-portal@1.0" in err
    code, _, err = await cli("sync", str(uuid.uuid4()), env=env)
    assert code == 2
    assert "DT has no project with this UUID" in err
    assert await drain(topo.jobs_queue.name) == []  # nothing queued for a bad argument


async def test_sync_without_wait_queues_a_sync_job(serve, dt: FakeDt, contracts):
    _, topo, _, settings = await serve(work=False)
    _project(dt, "acme-portal", "1.0")
    second = _project(dt, "acme-portal", "2.0")
    code, out, err = await cli("sync", "acme-portal@2.0", env=_env(settings.broker.prefix, dt))
    assert code == 0, err
    assert out.startswith("acme-portal@2.0: queued (job ")
    (message,) = await drain(topo.jobs_queue.name)
    job = jobs.Job.from_json(message.body, contracts.job)
    assert (job.project_uuid, job.trigger) == (second, "SYNC")


async def test_sync_wait_for_a_project_out_of_scope_says_so_and_never_fetching(serve, dt: FakeDt):
    """Issue 25: the worker settles it out of scope without fetching; the story says that, and
    never that the export is being fetched."""
    _, _, _, settings = await serve(exclude_projects="acme-internal*")
    project = _project(dt, "acme-internal-tools", "1.0")
    code, out, err = await cli(
        "sync", project, "--wait", "--timeout", "30", env=_env(settings.broker.prefix, dt)
    )
    assert code == 1, out + err  # out of scope: not synced
    lines = out.splitlines()
    assert (
        "acme-internal-tools@1.0: not synced: out of scope "
        "(acme-internal* is excluded (DTRACK_WORKER_EXCLUDE_PROJECTS))"
    ) in lines, out
    assert not any("fetching" in line for line in lines), out
    assert dt.fetches_of(project) == []
