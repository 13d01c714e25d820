"""What the workers publish of their finding events: OCSF instead of CloudEvents
(DTRACK_WORKER_FORMAT=ocsf), and only what the CEL filter (DTRACK_WORKER_FILTER) lets through,
on the real RabbitMQ with the fake DT; a bad filter stops the worker with exit 2."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest

from tests import ocsf_contract
from tests.conftest import FPF
from tests.fake_dt import FakeDt
from tests.harness import REAL, post
from tests.rabbit import eventually
from tests.test_operations import _env, cli
from worker.core import ocsf

pytestmark = pytest.mark.rabbitmq

EXPORT = FPF / "real" / "defectdojo__deptrack_php_4.14.1.json"  # 9 high, 2 medium, 2 low


@pytest.mark.parametrize(("emit", "family"), [("snapshot", "finding."), ("delta", "delta.opened.")])
async def test_format_ocsf_publishes_valid_ocsf_findings_on_the_same_routing_keys(
    serve, dt: FakeDt, tmp_path: Path, emit, family
):
    client, _, events, _ = await serve(
        emit=emit, format="ocsf", state_url=f"sqlite:///{tmp_path / 'state.db'}"
    )
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    findings = [m for m in events.messages if (m.routing_key or "").startswith(family)]
    assert len(findings) == 13
    for message in findings:
        assert message.content_type == "application/json"
        assert message.type == ocsf.MESSAGE_TYPE
        finding = orjson.loads(message.body)
        assert ocsf_contract.problems(finding) == [], finding
        assert message.message_id == finding["metadata"]["uid"]  # the CloudEvent's id
        severity = message.routing_key.rsplit(".", 1)[1]
        assert finding["severity_id"] == ocsf.SEVERITY_IDS[severity]
        assert finding["activity_id"] == 1
        assert finding["resources"][0]["uid"] == project
    # the service events stay CloudEvents
    (summary,) = [m for m in events.messages if m.routing_key == "export.summary"]
    assert summary.content_type == "application/cloudevents+json"


async def test_the_filter_publishes_only_what_it_lets_through_and_counts_the_rest(
    serve, dt: FakeDt
):
    client, _, events, _ = await serve(filter='data.vulnerability.severity in ["critical", "high"]')
    project = str(uuid.uuid4())
    dt.exports[project] = EXPORT.read_bytes()
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    published = events.findings(project)
    assert len(published) == 9
    assert {e["data"]["vulnerability"]["severity"] for e in published} == {"high"}
    summary = events.summaries()[job["job_id"]]
    assert summary["data"]["finding_count"] == 13  # the export as it was, filter or not
    metrics = await (await client.get("/metrics")).text()
    assert 'dtrack_worker_filter_events_total{outcome="passed"} 9.0' in metrics
    assert 'dtrack_worker_filter_events_total{outcome="filtered_out"} 4.0' in metrics


async def test_the_filter_never_changes_what_the_state_records(serve, dt: FakeDt, tmp_path: Path):
    client, _, events, _ = await serve(
        emit="delta",
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        filter='data.vulnerability.severity == "low"',
    )
    project = str(uuid.uuid4())
    dt.exports[project] = EXPORT.read_bytes()
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    await eventually(lambda: len(events.of("delta.opened.low")) == 2, within=10)
    deltas = [m for m in events.messages if (m.routing_key or "").startswith("delta.")]
    assert {m.routing_key for m in deltas} == {"delta.opened.low"}
    summary = events.summaries()[job["job_id"]]
    assert summary["data"]["transitions"]["opened"] == 13  # every finding opened in the state


async def test_an_event_the_filter_cannot_evaluate_is_published_and_counted(serve, dt: FakeDt):
    # tags are null for a DT 4 project whose tags could not be read: the expression fails
    client, _, events, _ = await serve(
        filter="data.vulnerability.kev == true || data.vulnerability.epss.score > 0.5"
    )
    project = str(uuid.uuid4())
    document = orjson.loads(EXPORT.read_bytes())
    for row in document["findings"]:
        row["vulnerability"].pop("epssScore", None)
    dt.exports[project] = orjson.dumps(document)
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    assert len(events.findings(project)) == 13  # never lost for a filter that cannot say
    metrics = await (await client.get("/metrics")).text()
    assert 'dtrack_worker_filter_events_total{outcome="error"} 13.0' in metrics


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("data.vulnerability.severity == ", "does not compile: cannot parse"),
        ('data.vulnerability.sevrity == "high"', "no field 'sevrity'"),
        ("data.vulnerability.severity > 3", "No such overload"),
        ("data.vulnerability.cvss.v3.score", "must be true or false for an event, not float"),
    ],
)
async def test_a_bad_filter_stops_the_worker_at_start_with_exit_2(
    serve, dt: FakeDt, expression, message
):
    _, _, _, settings = await serve(work=False)
    env = _env(settings.broker.prefix, dt) | {"DTRACK_WORKER_FILTER": expression}
    code, _, err = await cli("worker", env=env)
    assert code == 2, err
    assert f"DTRACK_WORKER_FILTER {message}" in err or message in err, err
    if "compile" in message:
        assert "<input>:1:31" in err  # CEL's line:column of the problem (the value stripped)


async def test_normalize_filters_offline_and_says_where_a_filter_is_wrong():
    code, out, err = await cli(
        "normalize", str(EXPORT), "--filter", 'data.vulnerability.severity != "high"', env={}
    )
    assert code == 0, err
    assert len(out.splitlines()) == 4
    code, _, err = await cli("normalize", str(EXPORT), "--filter", "data.nope == 1", env={})
    assert code == 2
    assert "--filter fails on a dtrack-worker.finding.v1 event: no field 'nope'" in err
