"""Job v1 messages: one per project, deterministic ids, and the contract they travel under."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from tests.conftest import NOTIFICATIONS
from worker.core import jobs, notifications
from worker.core.errors import InvalidJob

ACCEPTED = datetime(2026, 11, 22, 7, 30, 0, 123456, tzinfo=UTC)


def _jobs(name: str, contracts) -> tuple[bytes, tuple[jobs.Job, ...]]:
    body = (NOTIFICATIONS / name).read_bytes()
    routing = notifications.route(orjson.loads(body), contracts.notification)
    notification = jobs.notification_id(routing, body)
    return body, jobs.jobs_for(
        routing, notification=notification, accepted_at=ACCEPTED, correlation_id="corr-1"
    )


def test_a_v4_notification_makes_one_valid_job_per_project(contracts):
    body, (job,) = _jobs("v4__dt-docs-4.14.3__NEW_VULNERABILITY.json", contracts)
    document = orjson.loads(job.to_json())
    assert contracts.job.problems(document) == ()
    assert document == {
        "type": "dtrack-worker.job.v1",
        "job_id": job.job_id,
        "project_uuid": "6fb1820f-5280-4577-ac51-40124aabe307",
        "project_name": "Acme Example",
        "trigger": "NEW_VULNERABILITY",
        "notification_id": "sha256:" + hashlib.sha256(body).hexdigest(),  # v4 has no id
        "accepted_at": "2026-11-22T07:30:00.123456Z",
        "correlation_id": "corr-1",
        "project_version": "1.0.0",  # job 1.1.0; DT 4 sent no tags, so the worker asks DT
    }


def test_a_v5_notification_id_is_kept(contracts):
    routing = notifications.route(
        {
            "notification": {
                "id": "01890a5d-ac96-774b-b9aa-9a1e3f6b0c52",
                "group": "GROUP_BOM_PROCESSED",
                "scope": "SCOPE_PORTFOLIO",
                "level": "LEVEL_INFORMATIONAL",
                "subject": {"project": {"uuid": "11111111-2222-4333-8444-555555555555"}},
            }
        },
        contracts.notification,
    )
    assert jobs.notification_id(routing, b"ignored") == "01890a5d-ac96-774b-b9aa-9a1e3f6b0c52"


def test_job_ids_are_the_same_for_the_same_notification_and_project(contracts):
    _, first = _jobs("v4__dt-4.14.3-test__NEW_VULNERABILITY.json", contracts)
    _, again = _jobs("v4__dt-4.14.3-test__NEW_VULNERABILITY.json", contracts)
    _, other = _jobs("v4__dt-4.14.3-test__BOM_CONSUMED.json", contracts)
    assert first[0].job_id == again[0].job_id != other[0].job_id


def test_accepted_at_is_utc_whatever_the_clock_zone(contracts):
    local = ACCEPTED.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert jobs.utc_timestamp(local) == "2026-11-22T07:30:00.123456Z"


def test_jobs_round_trip_through_their_contract(contracts):
    _, (job,) = _jobs("v4__dt-4.14.3-test__BOM_CONSUMED.json", contracts)
    assert jobs.Job.from_json(job.to_json(), contracts.job) == job


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b"{}", "does not match schema"),
        (b'{"type": "dtrack-worker.job.v2"}', "does not match schema"),
    ],
)
def test_a_broken_job_message_gets_a_clear_error(raw, message, contracts):
    with pytest.raises(InvalidJob, match=message):
        jobs.Job.from_json(raw, contracts.job)


def test_a_job_for_a_malformed_project_uuid_is_refused(contracts):
    _, (job,) = _jobs("v4__dt-4.14.3-test__BOM_CONSUMED.json", contracts)
    document = job.to_dict() | {"project_uuid": "../../admin"}
    with pytest.raises(InvalidJob) as caught:
        jobs.Job.from_json(orjson.dumps(document), contracts.job)
    assert caught.value.problems[0].pointer == "/project_uuid"
