"""Hardening against a DT that misbehaves (issue 14 items 1, 3, 7; issue 16 part 2): the real
service against the real RabbitMQ and a fake DT that is a real HTTP server, scripted to lie."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from tests.fake_dt import API_KEY, FakeDt, Fault
from tests.harness import REAL, _project, post
from tests.rabbit import drain, eventually
from worker.adapters.dtrack import DtClient
from worker.core.config import Settings
from worker.core.errors import DtMisconfigured, DtUnavailable, ProjectGone

pytestmark = pytest.mark.rabbitmq


def _findings(events: Any, project: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(m.body)
        for m in events.messages
        if m.routing_key.startswith("finding.") and project in m.body.decode()
    ]


# -- 1. the API key never follows a redirect to another host ---------------------------------


async def test_a_redirect_to_another_host_is_not_followed_and_parks_the_job(serve, dt: FakeDt):
    async with FakeDt() as other:
        client, topo, events, _ = await serve()
        project = _project()
        other.exports[project] = REAL  # what an attacker would serve, to be taken for DT's
        dt.exports[project] = REAL
        elsewhere = f"{other.url}/api/v1/finding/project/{project}/export"
        dt.always[project] = Fault(302, location=elsewhere)
        await post(client, project)
        (parked,) = await drain(topo.parked_queue.name, settle=2.0)
    assert other.requests == []  # the other host never heard from us, key or not
    assert parked.headers["x-park-reason"] == "dt_misconfigured"
    error = str(parked.headers["x-park-error"])
    assert "redirecting to http://127.0.0.1:" in error
    assert "never sent there" in error
    assert API_KEY not in error
    assert _findings(events, project) == []
    assert events.of("export.summary") == []
    metrics = await (await client.get("/metrics")).text()
    assert "dtrack_worker_dt_auth_failures_total 1.0" in metrics
    assert 'dtrack_worker_parked_jobs_total{reason="dt_misconfigured"} 1.0' in metrics


@pytest.mark.parametrize("scheme_or_port", ["port", "scheme"])
async def test_another_port_or_scheme_on_the_same_host_is_another_origin(
    serve, dt: FakeDt, scheme_or_port
):
    client, topo, _, _ = await serve()
    project = _project()
    dt.exports[project] = REAL
    host_port = dt.url.removeprefix("http://")
    target = (
        f"http://127.0.0.1:1/api/v1/finding/project/{project}/export"
        if scheme_or_port == "port"
        else f"https://{host_port}/api/v1/finding/project/{project}/export"
    )
    dt.always[project] = Fault(307, location=target)
    await post(client, project)
    (parked,) = await drain(topo.parked_queue.name, settle=2.0)
    assert parked.headers["x-park-reason"] == "dt_misconfigured"


async def test_a_same_origin_redirect_is_followed_a_bounded_number_of_times(serve, dt: FakeDt):
    client, topo, events, _ = await serve()
    good, looping = _project(), _project()
    for project in (good, looping):
        dt.exports[project] = REAL
    path = f"/api/v1/finding/project/{good}/export?moved=1"
    dt.faults[good] = [Fault(301, location=path), Fault(308, location=f"{dt.url}{path}")]
    dt.always[looping] = Fault(302, location=f"/api/v1/finding/project/{looping}/export")
    (job,) = (await post(client, good))["jobs"]
    await post(client, looping, 1)
    await eventually(lambda: job["job_id"] in events.summaries())
    (parked,) = await drain(topo.parked_queue.name, settle=2.0)
    assert orjson.loads(parked.body)["project_uuid"] == looping
    assert "more than 3 redirects" in str(parked.headers["x-park-error"])
    assert len(dt.fetches_of(looping)) == 4  # the request and three redirects, then no more


# -- 3. an export must be the job's project's ------------------------------------------------


async def test_an_export_of_another_project_is_refused_with_both_uuids(serve, dt: FakeDt):
    client, topo, events, _ = await serve()
    asked, other = _project(), _project()
    dt.exports[other] = REAL
    dt.exports.as_is(asked, dt.exports[other])  # DT (or a cache) answers with B's export
    await post(client, asked)
    (parked,) = await drain(topo.parked_queue.name, settle=2.0)
    assert parked.headers["x-park-reason"] == "invalid_export"
    error = str(parked.headers["x-park-error"])
    assert asked in error
    assert other in error
    assert _findings(events, other) == []
    assert events.of("export.summary") == []
    await eventually(lambda: len(events.of("error.invalid_export")) == 1)


async def test_a_finding_of_another_project_is_refused(serve, dt: FakeDt):
    client, topo, events, _ = await serve()
    project, stranger = _project(), _project()
    document = orjson.loads(REAL)
    document["project"]["uuid"] = project
    for finding in document["findings"]:
        finding["matrix"] = project + finding["matrix"][36:]
    document["findings"][3]["matrix"] = stranger + document["findings"][3]["matrix"][36:]
    dt.exports.as_is(project, orjson.dumps(document))
    await post(client, project)
    (parked,) = await drain(topo.parked_queue.name, settle=2.0)
    assert parked.headers["x-park-reason"] == "invalid_export"
    problems = orjson.loads(str(parked.headers["x-park-problems"]))
    assert problems[0]["pointer"] == "/findings/3/matrix"
    assert stranger in problems[0]["excerpt"]
    assert events.of("export.summary") == []


async def test_a_duplicated_project_key_is_refused_not_attributed_to_the_last(serve, dt: FakeDt):
    client, topo, events, _ = await serve()
    project, impostor = _project(), _project()
    dt.exports[project] = REAL
    served = dt.exports[project]
    first = orjson.dumps({"project": {"uuid": impostor, "name": "x"}})[:-1] + b","
    doubled = first + served.lstrip()[1:]  # {"project": {...}, ...the real export...}
    assert orjson.loads(doubled)["project"]["uuid"] == project  # orjson: the last one wins
    dt.exports.as_is(project, doubled)
    await post(client, project)
    (parked,) = await drain(topo.parked_queue.name, settle=2.0)
    assert parked.headers["x-park-reason"] == "invalid_export"
    problems = orjson.loads(str(parked.headers["x-park-problems"]))
    assert problems == [{"pointer": "", "message": 'duplicated key "project"', "excerpt": ""}]
    assert events.of("export.summary") == []


# -- 7. a slow drip cannot hold a fetch slot -------------------------------------------------


def _dt_settings(dt: FakeDt, **env: str) -> Settings:
    return Settings.from_env(
        {"DTRACK_WORKER_DT_URL": dt.url, "DTRACK_WORKER_DT_API_KEY": API_KEY}
        | {f"DTRACK_WORKER_{key.upper()}": value for key, value in env.items()}
    )


async def test_a_slow_drip_export_ends_at_the_export_deadline_as_retryable(dt: FakeDt):
    project = _project()
    dt.exports[project] = REAL
    dt.always[project] = Fault(drip=0.02)  # 68 KB at 50 bytes/s: about 23 minutes
    settings = _dt_settings(dt, dt_export_timeout="1.5", dt_read_timeout="5", dt_http_attempts="1")
    started = time.monotonic()
    async with DtClient.open(settings.dt) as client:
        with pytest.raises(DtUnavailable, match="DTRACK_WORKER_DT_EXPORT_TIMEOUT"):
            await client.fetch_export(project)
    assert time.monotonic() - started < 4


async def test_an_export_under_the_minimum_rate_ends_as_retryable(dt: FakeDt):
    project = _project()
    dt.exports[project] = REAL
    dt.always[project] = Fault(drip=0.005)  # at most 200 bytes/s
    settings = _dt_settings(dt, dt_min_rate="2KiB", dt_http_attempts="1")
    started = time.monotonic()
    async with DtClient.open(settings.dt, rate_window=0.5) as client:
        with pytest.raises(DtUnavailable, match="under DTRACK_WORKER_DT_MIN_RATE"):
            await client.fetch_export(project)
    assert time.monotonic() - started < 3


async def test_a_dripping_dt_retries_then_parks_the_job_instead_of_holding_it(serve, dt: FakeDt):
    client, topo, _, _ = await serve(
        dt_export_timeout="1", dt_http_attempts="2", max_attempts="1", dt_backoff_seconds="0"
    )
    project = _project()
    dt.exports[project] = REAL
    dt.always[project] = Fault(drip=0.05)
    await post(client, project)
    (parked,) = await drain(topo.parked_queue.name, settle=4.0)
    assert parked.headers["x-park-reason"] == "attempts_exhausted"
    assert "DTRACK_WORKER_DT_EXPORT_TIMEOUT (1 s)" in str(parked.headers["x-park-error"])
    assert len(dt.fetches_of(project)) == 2


# -- issue 16, 2: a DT address that cannot do harm -------------------------------------------


async def test_a_dt_url_ending_in_api_works_as_conviso_asks_for_it(serve, dt: FakeDt):
    client, _, events, settings = await serve(dt_url=f"{dt.url}/api/")
    assert settings.dt.url == dt.url
    project = _project()
    dt.exports[project] = REAL
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries())
    assert events.summaries()[job["job_id"]]["source"] == dt.url


@pytest.mark.parametrize("wrong", ["/api/api", "/frontend", "/proxy/path"])
async def test_a_url_that_is_not_dts_api_parks_the_job_and_never_says_gone(
    serve, dt: FakeDt, wrong
):
    client, topo, events, _ = await serve(dt_url=dt.url + wrong)
    project = _project()
    dt.exports[project] = REAL
    await post(client, project)
    (parked,) = await drain(topo.parked_queue.name, settle=2.0)
    assert parked.headers["x-park-reason"] == "dt_misconfigured"
    assert "does not answer as Dependency-Track" in str(parked.headers["x-park-error"])
    assert events.of("project.gone") == []
    metrics = await (await client.get("/metrics")).text()
    assert "dtrack_worker_dt_auth_failures_total 1.0" in metrics


async def test_gone_only_when_dt_confirms_the_project_does_not_exist(dt: FakeDt):
    settings = _dt_settings(dt, dt_http_attempts="1")
    async with DtClient.open(settings.dt) as client:
        with pytest.raises(ProjectGone, match="DT confirms"):
            await client.fetch_export(_project())  # DT: version answers, project 404
        listed = _project()
        dt.projects.append({"uuid": listed, "name": "listed"})  # known, yet its export is 404
        with pytest.raises(DtMisconfigured, match="rewrites paths"):
            await client.fetch_export(listed)
    dt.version = None  # the address does not answer as DT
    async with DtClient.open(settings.dt) as client:
        with pytest.raises(DtMisconfigured, match="does not answer as Dependency-Track"):
            await client.fetch_export(_project())
