"""DT 5's VULNERABILITY_RETRACTED: the finding it names resolves with ``reason: retracted_by_dt``
(the service against the real RabbitMQ, SQLite and PostgreSQL, and the fake DT)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from tests.dt5_notifications import protobuf_of
from tests.fake_dt import FakeDt, Fault
from tests.harness import REAL, TOKEN, post
from tests.rabbit import eventually
from tests.test_line_diff import PHP, _document, _later
from tests.test_line_stream import publish
from worker.core.line_findings import group
from worker.core.lines import Line

pytestmark = pytest.mark.rabbitmq


def retraction(project: str, finding: dict[str, Any]) -> dict[str, Any]:
    """DT 5's VULNERABILITY_RETRACTED for one finding of an export (its JSON form)."""
    return {
        "notification": {
            "id": str(uuid.uuid4()),
            "level": "LEVEL_INFORMATIONAL",
            "scope": "SCOPE_PORTFOLIO",
            "group": "GROUP_VULNERABILITY_RETRACTED",
            "timestamp": "2026-12-01T00:00:01.000Z",
            "title": "Vulnerability No Longer Reported on Project: [p]",
            "subject": {
                "project": {"uuid": project, "name": "p"},
                "component": {"uuid": finding["component"]["uuid"], "name": "c"},
                "vulnerability": {
                    "uuid": finding["vulnerability"]["uuid"],
                    "vulnId": finding["vulnerability"]["vulnId"],
                    "source": finding["vulnerability"]["source"],
                },
            },
        }
    }


def _resolved(events: Any, project: str) -> dict[str, str]:
    changes = [
        orjson.loads(m.body)
        for m in events.messages
        if (m.routing_key or "").startswith("delta.resolved.") and project in m.body.decode()
    ]
    return {e["subject"]: e["data"]["change"]["reason"] for e in changes}


@pytest.mark.parametrize("form", ["json", "protobuf"])
async def test_the_retracted_finding_resolves_as_retracted_by_dt_and_only_it(
    serve, dt: FakeDt, state_url, form
):
    client, _, events, _ = await serve(emit="delta", state_url=state_url)
    project = str(uuid.uuid4())
    document = orjson.loads(REAL)
    document["project"]["uuid"] = project
    for finding in document["findings"]:  # the fixture's keys, moved to this project
        finding["matrix"] = ":".join([project, *finding["matrix"].split(":")[1:]])
    dt.exports[project] = orjson.dumps(document)
    (first,) = (await post(client, project))["jobs"]
    await eventually(lambda: first["job_id"] in events.summaries(), within=20)

    document["meta"]["timestamp"] = "2026-12-01T00:00:00Z"
    retracted = document["findings"].pop()
    also_gone = document["findings"].pop()  # gone too, for another reason: not DT's retraction
    dt.exports[project] = orjson.dumps(document)
    body = retraction(project, retracted)
    raw, content_type = (
        (orjson.dumps(body), "application/json")
        if form == "json"
        else (protobuf_of(body), "application/protobuf")
    )
    response = await client.post(
        "/webhook", data=raw, headers={"X-Api-Key": TOKEN, "Content-Type": content_type}
    )
    assert response.status == 202, await response.text()
    (job,) = (await response.json())["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    assert _resolved(events, project) == {
        retracted["matrix"]: "retracted_by_dt",
        also_gone["matrix"]: "not_in_export",
    }


async def test_each_retraction_of_a_coalesced_burst_is_labelled(serve, dt: FakeDt, state_url):
    """Review 2 M2: DT retracts several findings of a project in one re-analysis; the first
    job's fetch stands in for the others (coalesced), and must label each finding they name."""
    client, _, events, _ = await serve(emit="delta", state_url=state_url, coalesce_seconds="0.3")
    project = str(uuid.uuid4())
    document = orjson.loads(REAL)
    document["project"]["uuid"] = project
    for finding in document["findings"]:  # the fixture's keys, moved to this project
        finding["matrix"] = ":".join([project, *finding["matrix"].split(":")[1:]])
    dt.exports[project] = orjson.dumps(document)
    (first,) = (await post(client, project))["jobs"]
    await eventually(lambda: first["job_id"] in events.summaries(), within=20)

    document["meta"]["timestamp"] = "2026-12-01T00:00:00Z"
    burst = [document["findings"].pop(), document["findings"].pop()]
    dt.exports[project] = orjson.dumps(document)
    # DT answers the next export slowly: the second job arrives while the first one's fetch,
    # which started after both were accepted (0.3 s coalescing delay), is still running
    dt.faults[project] = [Fault(delay=2)]
    for finding in burst:
        response = await client.post(
            "/webhook",
            data=orjson.dumps(retraction(project, finding)),
            headers={"X-Api-Key": TOKEN, "Content-Type": "application/json"},
        )
        assert response.status == 202, await response.text()
    await eventually(lambda: len(_resolved(events, project)) == 2, within=20)
    assert _resolved(events, project) == {f["matrix"]: "retracted_by_dt" for f in burst}
    assert len(dt.fetches_of(project)) == 2  # the first export, then one for the burst


async def test_on_a_line_a_finding_dt_retracted_on_each_instance_resolves_retracted_by_dt(
    serve, dt: FakeDt, state_url
):
    """The line stream (finding-change.v2) says it as the per-project stream does: a line
    finding whose every instance DT retracted resolves ``retracted_by_dt``; one that left the
    export otherwise, ``not_in_export``."""
    client, _, events, settings = await serve(emit="delta", track="line", state_url=state_url)
    document = _document(PHP)
    project = document["project"]["uuid"]
    publish(dt, document)
    dt.exports.as_is(project, orjson.dumps(document))
    (first,) = (await post(client, project))["jobs"]
    await eventually(lambda: first["job_id"] in events.summaries(), within=20)

    line = Line(settings.dt.event_source, "", document["project"]["name"])
    ones = [f for f in group(line, document["findings"]).findings if len(f.instances) == 1]
    retracted, also_gone = ones[0], ones[1]  # one DT row each
    leaving = {retracted.instances[0].matrix, also_gone.instances[0].matrix}
    row = next(r for r in document["findings"] if r["matrix"] == retracted.instances[0].matrix)
    document["meta"]["timestamp"] = _later(document["meta"]["timestamp"], 600)
    document["findings"] = [r for r in document["findings"] if r["matrix"] not in leaving]
    publish(dt, document)
    dt.exports.as_is(project, orjson.dumps(document))
    response = await client.post(
        "/webhook",
        data=orjson.dumps(retraction(project, row)),
        headers={"X-Api-Key": TOKEN, "Content-Type": "application/json"},
    )
    assert response.status == 202, await response.text()
    (job,) = (await response.json())["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    await eventually(lambda: len(_resolved(events, project)) == 2, within=20)
    assert _resolved(events, project) == {
        retracted.id: "retracted_by_dt",
        also_gone.id: "not_in_export",
    }
