"""The analysis gate's pure parts: the token a notification carries (JSON and protobuf), the job
field that takes it to the worker (compatible with jobs already queued), the decision on DT's
project facts, and its settings."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.conftest import NOTIFICATIONS
from tests.dt5_notifications import documents, protobuf_of
from worker.core import (
    analysis_gate,
    job_budget,
    jobs,
    mass_resolve,
    notifications,
    protobuf_notifications,
)
from worker.core.config import Settings
from worker.core.errors import ConfigError
from worker.core.mass_resolve import BomFacts
from worker.service.freshness import Freshness

PROJECT = "7d1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
TOKEN = "0F8E2C4A-1B3D-4E5F-8A9B-0C1D2E3F4A5B"
BOM_PROCESSED = documents()["v5__dt-5.0.4-e2e__GROUP_BOM_PROCESSED"]


def _bom(group: str = "GROUP_BOM_PROCESSED", token: object = TOKEN) -> dict[str, object]:
    document = copy.deepcopy(BOM_PROCESSED)
    document["notification"]["group"] = group
    document["notification"]["subject"]["token"] = token
    return document


@pytest.mark.parametrize("group", ["GROUP_BOM_PROCESSED", "GROUP_BOM_CONSUMED"])
def test_a_dt5_bom_notification_carries_its_upload_token_in_both_forms(group, contracts):
    document = _bom(group)
    by_json = notifications.route(document, contracts.notification)
    by_protobuf = protobuf_notifications.route(protobuf_of(document))
    assert by_json.token == by_protobuf.token == TOKEN.lower()
    assert by_json == by_protobuf


def test_a_token_that_is_no_uuid_is_never_used(contracts):
    for token in ("../../admin", "", 42, None):
        assert notifications.route(_bom(token=token), contracts.notification).token is None
    assert protobuf_notifications.route(protobuf_of(_bom(token="x/y"))).token is None


def test_only_bom_groups_carry_a_token_and_dt4_where_present(contracts):
    vulnerability = _bom("GROUP_NEW_VULNERABILITY")
    assert notifications.route(vulnerability, contracts.notification).token is None
    v4 = orjson.loads((NOTIFICATIONS / "v4__dt-docs-4.14.3__BOM_CONSUMED.json").read_bytes())
    assert notifications.route(v4, contracts.notification).token is None  # DT 4 sends none
    v4["notification"]["subject"]["token"] = TOKEN
    assert notifications.route(v4, contracts.notification).token == TOKEN.lower()


def test_the_job_carries_the_token_and_jobs_queued_before_still_parse(contracts):
    routing = notifications.route(_bom(), contracts.notification)
    (job,) = jobs.jobs_for(
        routing, notification="n", accepted_at=datetime.now(UTC), correlation_id="c"
    )
    document = orjson.loads(job.to_json())
    assert document["analysis_token"] == TOKEN.lower()
    assert contracts.job.problems(document) == ()
    assert jobs.Job.from_json(job.to_json(), contracts.job) == job
    del document["analysis_token"]  # a job 1.2.0, queued by an older receiver
    older = jobs.Job.from_json(orjson.dumps(document), contracts.job)
    assert older.analysis_token is None


MS = 1000


@pytest.mark.parametrize(
    ("project", "basis", "pending"),
    [
        (None, "none", False),  # DT lists no such project: the fetch says so
        ({"lastBomImport": 5 * MS}, "none", False),  # DT 4.12: no analysis recorded
        ({}, "none", False),  # no BOM ever imported
        ({"lastBomImport": 5 * MS, "lastVulnerabilityAnalysis": 4 * MS}, "facts", True),
        ({"lastBomImport": 5 * MS, "lastVulnerabilityAnalysis": 5 * MS}, "facts", False),
        ({"lastBomImport": 5 * MS, "lastVulnerabilityAnalysis": 6 * MS}, "facts", False),
    ],
)
def test_dt_s_project_facts_decide_by_analysis_against_bom_import(project, basis, pending):
    reading = analysis_gate.by_facts(BomFacts.of(project), now=60.0)
    assert (reading.basis, reading.pending) == (basis, pending), reading.detail


def test_an_analysis_dt_never_records_stops_holding_the_project_back():
    """A BOM without components, an analysis that failed: DT's lastVulnerabilityAnalysis stays
    before the import. Past STALE_AFTER_SECONDS the project's jobs apply (the guard remains)."""
    facts = BomFacts.of({"lastBomImport": 5 * MS, "lastVulnerabilityAnalysis": 4 * MS})
    stale = 5 + analysis_gate.STALE_AFTER_SECONDS
    assert analysis_gate.by_facts(facts, now=stale).pending
    reading = analysis_gate.by_facts(facts, now=stale + 1)
    assert (reading.basis, reading.pending) == ("none", False)
    assert "no longer waited for" in reading.detail


def test_the_settings_and_their_bounds():
    assert Settings.from_env({}).worker.analysis == analysis_gate.GateSettings(wait=15, poll=5)
    off = Settings.from_env({"DTRACK_WORKER_ANALYSIS_WAIT": "0"}).worker.analysis
    assert not off.enabled
    with pytest.raises(ConfigError, match="ANALYSIS_POLL=30 is longer than"):
        Settings.from_env(
            {"DTRACK_WORKER_ANALYSIS_WAIT": "10", "DTRACK_WORKER_ANALYSIS_POLL": "30"}
        )
    with pytest.raises(ConfigError, match="ANALYSIS_WAIT"):
        Settings.from_env({"DTRACK_WORKER_ANALYSIS_WAIT": "-1"})


async def test_a_fetch_started_before_the_analysis_was_seen_done_does_not_cover_the_job():
    """Coalescing keeps the token: a fetch that started after the job was accepted but before
    DT had analysed its upload is no stand-in for it."""
    freshness = Freshness()
    accepted = datetime.now(UTC) - timedelta(seconds=10)
    job = jobs.Job(job_id="j", project_uuid=PROJECT, project_name=None, trigger="BOM_PROCESSED",
                   notification_id=str(uuid.uuid4()), accepted_at=accepted.isoformat(),
                   correlation_id="c", analysis_token=TOKEN.lower())  # fmt: skip
    with freshness.fetching(PROJECT):
        pass  # a fetch after the job's acceptance, before the gate saw the analysis done
    assert await freshness.covers(job)
    assert not await freshness.covers(job, since=datetime.now(UTC))


def test_the_job_budget_holds_the_wait_for_dt_s_analysis():
    """RabbitMQ's delivery timeout must outlast a job that waited for DT, then fetched."""
    waiting = Settings.from_env({"DTRACK_WORKER_ANALYSIS_WAIT": "600"})
    off = Settings.from_env({"DTRACK_WORKER_ANALYSIS_WAIT": "0"})
    assert job_budget.budget_of(waiting) - job_budget.budget_of(off) == 600 + 120  # + a read


NEVER = {"lastBomImport": 5 * MS}  # DT 4.13+ before its first analysis: no field at all


@pytest.mark.parametrize(
    ("records", "pending"),
    [(True, True), (False, False)],  # 4.13+ records analyses; 4.12 and older never do
)
def test_a_project_never_analysed_is_pending_where_dt_records_analyses(records, pending):
    reading = analysis_gate.by_facts(BomFacts.of(NEVER, records_analyses=records), now=60.0)
    assert reading.pending is pending, reading.detail
    assert ("never analysed" in reading.detail) is records


def test_a_project_never_analysed_stops_holding_back_after_the_staleness_window():
    """A project without components never gets lastVulnerabilityAnalysis (docs/lines.md)."""
    facts = BomFacts.of(NEVER, records_analyses=True)
    stale = 5 + analysis_gate.STALE_AFTER_SECONDS
    assert analysis_gate.by_facts(facts, now=stale).pending
    reading = analysis_gate.by_facts(facts, now=stale + 1)
    assert (reading.basis, reading.pending) == ("none", False)


@pytest.mark.parametrize(
    ("version", "records"),
    [("4.12.7", False), ("4.13.0", True), ("4.14.3", True), ("5.0.4", True),
     ("5.6.0-SNAPSHOT", True), ("4.9", False), ("garbage", False), (None, False)],
)  # fmt: skip
def test_which_dt_versions_record_analyses(version, records):
    assert mass_resolve.records_analyses(version) is records


def test_the_guard_holds_an_export_of_a_project_never_analysed_until_the_window_ends():
    facts = BomFacts.of(NEVER, records_analyses=True)
    reason = mass_resolve.unexplained(facts, since=None, exported=6.0)
    assert reason is not None
    assert reason.pending, reason
    late = 5 + analysis_gate.STALE_AFTER_SECONDS + 1
    assert mass_resolve.unexplained(facts, since=None, exported=late) is None
    old = BomFacts.of(NEVER, records_analyses=False)  # DT 4.12: a new BOM is enough
    assert mass_resolve.unexplained(old, since=None, exported=6.0) is None
