"""DT 5.1+ webhooks with ``publishProtobuf``: ``Content-Type: application/protobuf`` and DT's
``Notification`` message, routed exactly as its JSON form, against the real RabbitMQ."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from tests import test_receiver
from tests.dt5_notifications import SYSTEM_GROUPS, documents, protobuf_of
from tests.rabbit import drain
from tests.test_receiver import TOKEN
from worker.core import notifications

pytestmark = pytest.mark.rabbitmq
receiver = test_receiver.receiver  # the fixture: receivers on loopback, each its own topology

PROTOBUF = "application/protobuf"
EVERY_GROUP = ",".join(sorted({g for rules in notifications.RULES.values() for g in rules}))
DOCUMENTS = documents()


def _post(client: Any, body: bytes, content_type: str = "application/json", **headers: str):
    headers = {"X-Api-Key": TOKEN, "Content-Type": content_type} | headers
    return client.post("/webhook", data=body, headers=headers)


async def _jobs(topo: Any) -> list[dict[str, Any]]:
    """The queued jobs without what belongs to the request (its time and correlation id)."""
    jobs = [orjson.loads(message.body) for message in await drain(topo.jobs_queue.name)]
    for job in jobs:
        del job["accepted_at"], job["correlation_id"]
    return sorted(jobs, key=lambda job: job["job_id"])


async def test_every_group_in_protobuf_gives_the_jobs_of_its_json_form(receiver, figures):
    json_client, _, json_topo = await receiver(trigger_groups=EVERY_GROUP)
    proto_client, _, proto_topo = await receiver(trigger_groups=EVERY_GROUP)
    answers: dict[str, tuple[int, int]] = {}
    for name, document in DOCUMENTS.items():
        as_json = await _post(json_client, orjson.dumps(document))
        as_protobuf = await _post(proto_client, protobuf_of(document), PROTOBUF)
        json_answer, proto_answer = await as_json.json(), await as_protobuf.json()
        assert as_protobuf.status == as_json.status, (name, json_answer, proto_answer)
        for key in ("group", "notification_id", "job_count", "jobs", "reason", "status"):
            assert proto_answer.get(key) == json_answer.get(key), (name, key)
        answers[name] = (as_protobuf.status, proto_answer.get("job_count", 0))
    from_json = await _jobs(json_topo)
    from_protobuf = await _jobs(proto_topo)
    assert from_protobuf == from_json
    # every project-level group made its jobs; the system ones were answered, not enqueued
    assert {name for name, (status, _) in answers.items() if status != 202} == {
        "v5pre__hyades-v0.6.0-test__GROUP_DATASOURCE_MIRRORING",
        "built__USER_CREATED",
        "built__USER_DELETED",
        *(f"built__{group}" for group in SYSTEM_GROUPS),
    }
    assert answers["built__NEW_VULNERABILITIES_SUMMARY"] == (202, 2)  # one job per project named
    assert answers["built__NEW_POLICY_VIOLATIONS_SUMMARY"] == (202, 2)
    figures(
        f"protobuf vs JSON: {len(DOCUMENTS)} notifications of "
        f"{len({d['notification']['group'] for d in DOCUMENTS.values()})} groups, "
        f"{len(from_json)} jobs each way, identical"
    )


async def test_a_summary_in_protobuf_names_each_project_with_what_dt_says_of_it(receiver):
    client, _, topo = await receiver()
    document = DOCUMENTS["built__NEW_VULNERABILITIES_SUMMARY"]
    response = await _post(client, protobuf_of(document), PROTOBUF)
    assert response.status == 202, await response.text()
    jobs = sorted(await _jobs(topo), key=lambda job: job["project_uuid"])
    assert [(j["project_uuid"], j["project_name"], j.get("project_tags")) for j in jobs] == [
        ("7d1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b", "one", ["prod", "team-a"]),
        ("8e2a3b4c-5d6e-4f70-9a1b-2c3d4e5f6a7b", "two", None),  # no tags: JsonFormat omits []
    ]
    assert {j["trigger"] for j in jobs} == {"NEW_VULNERABILITIES_SUMMARY"}
    assert jobs[1]["project_active"] is True


async def test_a_repeat_is_one_notification_whichever_form_it_comes_in(receiver):
    client, _, topo = await receiver()
    document = DOCUMENTS["v5__dt-5.0.4-e2e__GROUP_BOM_PROCESSED"]
    first = await _post(client, protobuf_of(document), PROTOBUF)
    again = await _post(client, protobuf_of(document), PROTOBUF)
    as_json = await _post(client, orjson.dumps(document))
    assert first.status == again.status == as_json.status == 202
    assert "duplicate" not in await first.json()
    assert (await again.json())["duplicate"] is True
    assert (await as_json.json())["duplicate"] is True  # same notification.id
    assert len(await drain(topo.jobs_queue.name)) == 1


async def test_bytes_that_are_not_a_notification_are_400_naming_the_problem(receiver, figures):
    client, _, topo = await receiver()
    rng = random.Random(27)
    bodies = [rng.randbytes(rng.randrange(0, 400)) for _ in range(150)]
    whole = protobuf_of(DOCUMENTS["v5__dt-5.0.4-e2e__GROUP_NEW_VULNERABILITY"])
    bodies += [whole[:cut] for cut in range(0, len(whole), 3)]  # truncated, inside every field
    bodies.append(orjson.dumps(DOCUMENTS["v5__dt-5.0.4-e2e__GROUP_BOM_PROCESSED"]))  # JSON
    errors: dict[str, int] = {}
    for body in bodies:
        response = await _post(client, body, PROTOBUF)
        answer = await response.json()
        assert response.status == 400, (body, answer)
        assert answer["message"], answer
        errors[answer["error"]] = errors.get(answer["error"], 0) + 1
    assert set(errors) <= {"invalid_protobuf", "invalid_notification"}
    assert await drain(topo.jobs_queue.name) == []
    figures(f"protobuf: {len(bodies)} random or truncated bodies, all 400: {errors}")


async def test_the_400_for_garbage_says_what_was_expected(receiver):
    client, _, _ = await receiver()
    response = await _post(client, b"\xff\xff\xff\xff", PROTOBUF)
    answer = await response.json()
    assert response.status == 400
    assert answer["error"] == "invalid_protobuf"
    assert "org.dependencytrack.notification.v1.Notification" in answer["message"]
    assert answer["problems"][0]["message"]
