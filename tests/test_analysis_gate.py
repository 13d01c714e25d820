"""The analysis gate (issue 26 §4): no export is applied before DT has analysed what it shows.
The service against the real RabbitMQ, the fake DT on loopback (its token endpoint answering
``processing`` a few times, its project facts), and the real SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.dt5_notifications import documents, protobuf_of
from tests.fake_dt import FakeDt
from tests.harness import REAL, TOKEN, post, samples
from tests.rabbit import depth, eventually
from tests.test_operations import _env, cli
from tests.test_secrets import log_stream as log_stream  # the fixture
from tests.test_state_guards import _parked

pytestmark = pytest.mark.rabbitmq

FAST = {"analysis_wait": "10", "analysis_poll": "0.02"}  # polls of tens of ms
# a lastBomImport a minute ago, in epoch milliseconds as DT writes it (an import older than
# analysis_gate.STALE_AFTER_SECONDS holds nothing back)
BOM = round(time.time() * 1000) - 60_000
BOM_PROCESSED = documents()["v5__dt-5.0.4-e2e__GROUP_BOM_PROCESSED"]


def exported(project: str, *, drop: int = 0, stamp: str | None = None) -> bytes:
    """The real export as ``project``'s, without its first ``drop`` findings (``drop=-1``:
    none at all, as DT exports a new version before its analysis)."""
    document = orjson.loads(REAL)
    document["findings"] = [] if drop < 0 else document["findings"][drop:]
    if stamp is not None:
        document["meta"]["timestamp"] = stamp
    raw: bytes = orjson.dumps(document)
    return raw


async def post_v5(client: Any, project: str, token: str, *, protobuf: bool = False) -> str:
    """DT 5's BOM_PROCESSED for ``project`` with the upload's ``token``; the job id."""
    document = copy.deepcopy(BOM_PROCESSED)
    notification = document["notification"]
    notification["id"] = str(uuid.uuid4())
    notification["subject"]["project"]["uuid"] = project
    notification["subject"]["token"] = token
    raw, kind = (
        (protobuf_of(document), "application/protobuf")
        if protobuf
        else (orjson.dumps(document), "application/json")
    )
    response = await client.post(
        "/webhook", data=raw, headers={"X-Api-Key": TOKEN, "Content-Type": kind}
    )
    assert response.status == 202, await response.text()
    (job,) = (await response.json())["jobs"]
    job_id: str = job["job_id"]
    return job_id


def analysed_after(dt: FakeDt, token: str, polls: int, then: Callable[[], None]) -> None:
    """DT answers ``processing: true`` for ``polls`` polls of the token, then runs ``then``
    (the export as it is once analysed) and answers false."""
    dt.analyses[token] = polls
    dt.analysed[token] = then


async def metric(client: Any, name: str, **labels: str) -> float:
    exposition = await (await client.get("/metrics")).text()
    return sum(
        s.value
        for s in samples(exposition, name)
        if all(s.labels.get(key) == value for key, value in labels.items())
    )


async def test_a_token_still_processing_holds_the_job_until_dt_is_done(
    state_url, serve, dt: FakeDt
):
    """Today's defect: the export taken right after BOM_PROCESSED (before the analysis: empty
    for a new version) was applied as the project's findings."""
    client, _, events, _ = await serve(emit="delta", state_url=state_url, **FAST)
    project, token = str(uuid.uuid4()), str(uuid.uuid4())
    dt.exports[project] = exported(project, drop=-1)  # what DT exports while it analyses
    analysed_after(dt, token, 3, lambda: dt.exports.__setitem__(project, REAL))
    job_id = await post_v5(client, project, token)
    await eventually(lambda: job_id in events.summaries(), within=20)
    summary = events.summaries()[job_id]["data"]
    assert (summary["finding_count"], summary["transitions"]["opened"]) == (13, 13)
    assert dt.token_polls.count(token) == 4  # three times processing, then done
    assert len(dt.fetches_of(project)) == 1  # fetched once, after the analysis
    assert await metric(client, "dtrack_worker_analysis_gate_total", outcome="waited") == 1


async def test_the_gate_holds_snapshots_too_with_a_protobuf_notification(
    serve, dt: FakeDt, log_stream
):
    logged = log_stream(json=True)
    client, _, events, _ = await serve(**FAST)  # snapshot mode
    project, token = str(uuid.uuid4()), str(uuid.uuid4())
    dt.exports[project] = exported(project, drop=-1)
    analysed_after(dt, token, 2, lambda: dt.exports.__setitem__(project, REAL))
    job_id = await post_v5(client, project, token, protobuf=True)
    await eventually(lambda: job_id in events.summaries(), within=20)
    assert events.summaries()[job_id]["data"]["finding_count"] == 13
    assert len(events.findings(project)) == 13
    assert dt.token_polls.count(token) == 3
    lines = [orjson.loads(line) for line in logged.getvalue().splitlines()]
    said = {line["event"]: line for line in lines if line.get("project_uuid") == project}
    assert said["job.analysis_pending"]["basis"] == "token"
    assert "still processing the BOM upload" in said["job.analysis_pending"]["detail"]
    assert said["job.analysis_done"]["waited_ms"] > 0
    assert said["job.settled"]["analysis"] == "token"
    assert said["job.settled"]["analysis_waited_ms"] > 0


async def test_past_the_wait_the_job_parks_analysis_pending_and_a_replay_applies_it(
    state_url, serve, dt: FakeDt
):
    client, topo, events, settings = await serve(
        emit="delta", state_url=state_url, analysis_wait="0.3", analysis_poll="0.05",
        max_attempts="1",
    )  # fmt: skip
    project, token = str(uuid.uuid4()), str(uuid.uuid4())
    dt.exports[project] = REAL
    (first,) = (await post(client, project))["jobs"]  # the project's first export, applied
    await eventually(lambda: first["job_id"] in events.summaries(), within=20)

    # a new BOM: DT analyses it for longer than the job may wait; meanwhile it exports none
    dt.exports[project] = exported(project, drop=-1, stamp="2026-12-01T00:00:00Z")
    dt.analyses[token] = 10**6
    job_id = await post_v5(client, project, token)
    await _parked(topo)
    env = _env(settings.broker.prefix, dt)
    code, listing, err = await cli("parked", "list", env=env)
    assert code == 0, err
    assert f"{job_id}  analysis_pending" in listing, listing
    code, shown, err = await cli("parked", "show", job_id, env=env)
    assert code == 0, err
    assert "DT is still processing the BOM upload" in shown, shown
    assert job_id not in events.summaries()
    assert not [m for m in events.messages if (m.routing_key or "").startswith("delta.resolved")]
    assert len(dt.fetches_of(project)) == 1  # the first export only: never fetched since
    assert await metric(client, "dtrack_worker_parked_jobs_total", reason="analysis_pending") == 1
    pending = await metric(
        client, "dtrack_worker_analysis_gate_total", basis="token", outcome="pending"
    )
    assert pending == 1
    status_env = env | {"DTRACK_WORKER_STATE_URL": state_url}
    code, status, err = await cli("status", project, env=status_env)
    assert code == 0, err
    assert "last outcome analysis_pending" in status, status

    # DT is done: two findings were fixed by the new BOM; the replayed job applies that
    dt.analyses[token] = 0
    dt.exports[project] = exported(project, drop=2, stamp="2026-12-01T00:00:00Z")
    code, _, err = await cli("parked", "replay", job_id, env=env)
    assert code == 0, err
    await eventually(lambda: job_id in events.summaries(), within=20)
    assert events.summaries()[job_id]["data"]["transitions"]["resolved"] == 2
    assert await depth(topo.parked_queue.name) == 0


async def test_dt_4_13_facts_hold_the_job_while_the_analysis_is_older_than_the_bom(
    state_url, serve, dt: FakeDt
):
    client, _, events, _ = await serve(emit="delta", state_url=state_url, **FAST)
    project = str(uuid.uuid4())
    facts = {"uuid": project, "name": "p", "active": True, "tags": [],
             "lastBomImport": BOM, "lastVulnerabilityAnalysis": BOM - 100_000}  # fmt: skip
    dt.projects = [facts]
    dt.exports[project] = exported(project, drop=-1)
    reads: list[str] = []

    def read(asked: str) -> None:  # the analysis ends after the gate's third look
        reads.append(asked)
        if len(reads) == 4:
            facts["lastVulnerabilityAnalysis"] = BOM + 100_000
            dt.exports[project] = REAL

    dt.on_project = read
    (job,) = (await post(client, project))["jobs"]  # DT 4.x: no token
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    assert events.summaries()[job["job_id"]]["data"]["finding_count"] == 13
    assert len(dt.fetches_of(project)) == 1
    assert await metric(client, "dtrack_worker_analysis_gate_total", basis="facts",
                        outcome="waited") == 1  # fmt: skip


async def test_dt_4_12_gives_no_signal_and_the_export_applies_as_before(serve, dt: FakeDt):
    """DT 4.12 and older record no lastVulnerabilityAnalysis: nothing to wait on (the
    coalescing delay and the mass-resolve guard are the protection there: docs/state.md)."""
    dt.version = dict(dt.version or {}, version="4.12.7")  # before the worker asks it
    client, _, events, _ = await serve(**FAST)
    project = str(uuid.uuid4())
    dt.projects = [{"uuid": project, "name": "p", "active": True, "tags": [],
                    "lastBomImport": BOM}]  # fmt: skip
    dt.exports[project] = REAL
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    assert events.summaries()[job["job_id"]]["data"]["finding_count"] == 13
    ready = await metric(client, "dtrack_worker_analysis_gate_total", basis="none", outcome="ready")
    assert ready == 1
    assert await metric(client, "dtrack_worker_analysis_waiting_jobs") == 0


async def test_a_401_on_the_token_is_a_misconfiguration_never_done(serve, dt: FakeDt):
    client, topo, events, settings = await serve(**FAST)
    project, token = str(uuid.uuid4()), str(uuid.uuid4())
    dt.exports[project] = REAL
    dt.token_status = 401
    job_id = await post_v5(client, project, token)
    await _parked(topo)
    code, listing, err = await cli("parked", "list", env=_env(settings.broker.prefix, dt))
    assert code == 0, err
    assert f"{job_id}  dt_rejected" in listing, listing
    assert "401" in listing
    assert dt.fetches_of(project) == []  # never fetched, nothing published
    await events.caught_up()
    assert events.findings(project) == []
    assert job_id not in events.summaries()
    assert await metric(client, "dtrack_worker_dt_auth_failures_total") == 1


async def test_a_job_with_a_token_is_not_coalesced_into_a_fetch_taken_before_its_analysis(
    state_url, serve, dt: FakeDt
):
    """Coalescing keeps the token: DT 5's BOM_PROCESSED (token) and then a notification without
    one (say, a NEW_VULNERABILITY of the analysis under way). The second job's fetch starts
    after the first job was accepted, but before DT finished: it cannot stand in for it."""
    client, _, events, _ = await serve(emit="delta", state_url=state_url, **FAST)
    project, token = str(uuid.uuid4()), str(uuid.uuid4())
    dt.exports[project] = exported(project, drop=-1)
    analysed_after(dt, token, 10**6, lambda: dt.exports.__setitem__(project, REAL))
    tokened = await post_v5(client, project, token)
    (other,) = (await post(client, project))["jobs"]  # DT 4.x form: no token, no facts
    await eventually(lambda: other["job_id"] in events.summaries(), within=20)
    assert events.summaries()[other["job_id"]]["data"]["finding_count"] == 0
    dt.analyses[token] = 0  # DT finishes while the first job still waits
    await eventually(lambda: tokened in events.summaries(), within=20)
    assert events.summaries()[tokened]["data"]["transitions"]["opened"] == 13
    assert len(dt.fetches_of(project)) == 2


async def test_a_sync_that_waits_for_dts_analysis_says_so_in_its_steps(
    state_url, serve, dt: FakeDt
):
    """`sync --wait` (and the console's run page) shows the job waiting for DT's analysis."""
    _, _, _, settings = await serve(emit="delta", state_url=state_url, **FAST)
    project = str(uuid.uuid4())
    facts = {"uuid": project, "name": "waited", "version": "1.0", "active": True, "tags": [],
             "lastBomImport": BOM, "lastVulnerabilityAnalysis": BOM - 100_000}  # fmt: skip
    dt.projects = [facts]
    dt.exports[project] = REAL
    reads: list[str] = []

    def read(asked: str) -> None:  # sync's own lookup and the tags' read come first
        reads.append(asked)
        if len(reads) == 6:
            facts["lastVulnerabilityAnalysis"] = BOM + 100_000

    dt.on_project = read
    env = _env(settings.broker.prefix, dt) | {"DTRACK_WORKER_STATE_URL": state_url}
    code, out, err = await cli("sync", project, "--wait", "--timeout", "30", env=env)
    assert code == 0, (out, err)
    assert "waiting for DT's analysis of the project" in out, out
    assert "sync: 1 of 1 projects synced" in out, out
