"""Workers against the real RabbitMQ and a fake DT that is a real HTTP server."""

from __future__ import annotations

from typing import Any

import aio_pika
import orjson
import pytest

from tests.conftest import FPF, fixture_files
from tests.fake_dt import API_KEY, FakeDt, Fault
from tests.harness import REAL, _project, post
from tests.rabbit import AMQP_URL, drain, eventually, unique_prefix
from worker.adapters.schemas import Contracts
from worker.core import fpf

pytestmark = pytest.mark.rabbitmq


async def test_every_real_export_flows_from_webhook_to_events(
    serve, dt: FakeDt, contracts: Contracts
):
    client, topo, events, _ = await serve()
    paths = {}
    for path in fixture_files(FPF / "real"):
        project = _project()
        dt.exports[project] = path.read_bytes()
        (job,) = (await post(client, project))["jobs"]
        paths[job["job_id"]] = path, dt.exports[project]
    await eventually(lambda: len(events.summaries()) == len(paths), within=30)

    for message in events.messages:
        assert message.content_type == "application/cloudevents+json"
        assert message.delivery_mode == 2
        assert message.message_id == orjson.loads(message.body)["id"]
    findings = [
        orjson.loads(m.body) for m in events.messages if m.routing_key.startswith("finding.")
    ]
    published = {event["id"] for event in findings}
    for job_id, (path, served) in paths.items():
        expected = fpf.process(served, contracts.fpf, source=dt.url)
        ids = {event.id for event in expected.events()}
        assert ids <= published, path.name  # the ids `dtrack-worker normalize` gives
        summary = events.summaries()[job_id]
        assert summary["data"]["finding_count"] == expected.finding_count
        assert contracts.service_event.problems(summary) == ()
    # every finding once per export: nothing missing, nothing extra (the three 4.7.0 files
    # are edits of one export, same project and timestamp, so their common findings rightly
    # share ids across the three jobs)
    expected_total = sum(
        summary["data"]["finding_count"] for summary in events.summaries().values()
    )
    assert len(findings) == expected_total == 144
    for event in findings[:50]:
        assert contracts.finding_event.problems(event) == ()
    assert await drain(topo.parked_queue.name) == []


async def test_passing_dt_faults_are_retried_within_the_job_honouring_retry_after(
    serve, dt: FakeDt
):
    client, topo, events, _ = await serve()
    project = _project()
    dt.exports[project] = REAL
    dt.faults[project] = [
        Fault(503, retry_after="1"),
        Fault(429, retry_after="0"),
        Fault(truncate=True),
    ]
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    fetches = dt.fetches_of(project)
    assert [fetch.status for fetch in fetches] == [503, 429, 200, 200]
    assert fetches[1].started - fetches[0].started >= 0.9  # Retry-After: 1 was honoured
    assert len([e for e in events.messages if e.routing_key.startswith("finding.")]) == 13
    assert await drain(topo.parked_queue.name) == []


async def test_a_dt_that_stays_down_goes_through_the_retry_queue_then_is_parked(serve, dt: FakeDt):
    client, topo, events, _ = await serve(dt_http_attempts="1", max_attempts="2")
    project = _project()
    dt.always[project] = Fault(503)
    await post(client, project)
    (parked,) = await drain(topo.parked_queue.name, settle=9.0, then=2.0)  # after the 5 s tier
    headers: dict[str, Any] = parked.headers
    assert headers["x-park-reason"] == "attempts_exhausted"
    assert headers["x-attempt"] == 2
    assert "DT answered 503" in headers["x-park-error"]
    assert [f.status for f in dt.fetches_of(project)] == [503, 503]
    assert orjson.loads(parked.body)["project_uuid"] == project  # the job itself, unchanged
    assert events.of("export.summary") == []


@pytest.mark.parametrize(
    ("forbidden", "api_key", "status"), [(True, API_KEY, 403), (False, "wrong", 401)]
)
async def test_401_and_403_park_the_job_at_once_and_are_counted(
    serve, dt: FakeDt, forbidden, api_key, status
):
    client, topo, _, _ = await serve(dt_api_key=api_key)
    project = _project()
    dt.exports[project] = REAL
    if forbidden:
        dt.forbidden.add(project)
    await post(client, project)
    (parked,) = await drain(topo.parked_queue.name, settle=2.0)
    assert parked.headers["x-park-reason"] == "dt_rejected"
    assert f"DT answered {status}" in str(parked.headers["x-park-error"])
    # not retried; a wrong key is refused at once by the analysis gate's question about the
    # project's facts, before the export is asked for
    assert len(dt.fetches_of(project)) == (1 if forbidden else 0)
    metrics = await (await client.get("/metrics")).text()
    assert "dtrack_worker_dt_auth_failures_total 1.0" in metrics
    assert 'dtrack_worker_parked_jobs_total{reason="dt_rejected"} 1.0' in metrics
    everything = repr(parked.headers) + parked.body.decode()
    assert API_KEY not in everything


async def test_a_project_dt_no_longer_has_is_announced_gone_and_acked(serve, dt: FakeDt, contracts):
    client, topo, events, _ = await serve()
    project = _project()  # not in dt.exports: 404
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: len(events.of("project.gone")) == 1)
    (gone,) = events.of("project.gone")
    assert gone["subject"] == project
    assert gone["data"]["job"]["job_id"] == job["job_id"]
    assert contracts.service_event.problems(gone) == ()
    assert await drain(topo.parked_queue.name) == []
    assert await drain(topo.jobs_queue.name) == []


async def test_an_export_over_the_size_limit_is_parked(serve, dt: FakeDt):
    client, topo, _, _ = await serve(max_export="4KiB")
    project = _project()
    dt.exports[project] = REAL
    await post(client, project)
    (parked,) = await drain(topo.parked_queue.name, settle=2.0)
    assert parked.headers["x-park-reason"] == "too_large"
    assert "DTRACK_WORKER_MAX_EXPORT" in str(parked.headers["x-park-error"])


async def test_an_invalid_export_is_parked_with_its_report_and_announced(
    serve, dt: FakeDt, contracts
):
    client, topo, events, _ = await serve()
    project = _project()
    dt.exports[project] = (
        FPF / "edge" / "defectdojo__no_findings_because_findings_key_is_null.json"
    ).read_bytes()
    await post(client, project)
    (parked,) = await drain(topo.parked_queue.name, settle=2.0)
    assert parked.headers["x-park-reason"] == "invalid_export"
    problems = orjson.loads(str(parked.headers["x-park-problems"]))
    assert problems == [
        {"pointer": "/findings", "message": "expected array, not null", "excerpt": "null"}
    ]
    await eventually(lambda: len(events.of("error.invalid_export")) == 1)
    (error,) = events.of("error.invalid_export")
    assert error["data"]["problems"] == problems
    assert contracts.service_event.problems(error) == ()
    assert events.of("export.summary") == []


async def test_a_job_message_that_is_not_a_job_is_parked(serve, dt: FakeDt):
    _, topo, _, _ = await serve()
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(b"{not a job"), topo.jobs_queue.name
        )
    (parked,) = await drain(topo.parked_queue.name, settle=2.0)
    assert parked.headers["x-park-reason"] == "invalid_job"
    assert parked.body == b"{not a job"


async def test_a_redelivered_job_republishes_identical_event_ids(serve, dt: FakeDt):
    project = _project()
    dt.exports[project] = REAL
    prefix = unique_prefix()
    client, _, first, _ = await serve(prefix=prefix)
    body = await post(client, project)
    await eventually(lambda: len(first.summaries()) == 1)
    # what a worker that died before its ack leaves behind: the same job, delivered again,
    # to a worker that never saw it (a fresh process)
    job = orjson.dumps(
        {
            "type": "dtrack-worker.job.v1",
            "job_id": body["jobs"][0]["job_id"],
            "project_uuid": project,
            "project_name": "p",
            "trigger": "BOM_PROCESSED",
            "notification_id": body["notification_id"],
            "accepted_at": body["accepted_at"],
            "correlation_id": body["correlation_id"],
        }
    )
    _, topo2, events2, _ = await serve(prefix=prefix + "-2")
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(job, message_id=body["jobs"][0]["job_id"]), topo2.jobs_queue.name
        )
    await eventually(lambda: len(events2.summaries()) == 1)
    ids = sorted(orjson.loads(m.body)["id"] for m in first.messages)
    again = sorted(orjson.loads(m.body)["id"] for m in events2.messages)
    assert len(ids) == 14  # 13 findings and the summary
    assert again == ids
