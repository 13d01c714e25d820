"""Project tags on every finding event, and the project scope (DTRACK_WORKER_INCLUDE_TAGS,
_EXCLUDE_TAGS, _INCLUDE_PROJECTS, _EXCLUDE_PROJECTS) in the receiver, the worker and backfill,
against the real RabbitMQ and the fake DT."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import NOTIFICATIONS
from tests.fake_dt import FakeDt
from tests.harness import REAL, TOKEN, notification, post
from tests.rabbit import drain, eventually
from tests.test_operations import _env, cli
from tests.waiting import until
from worker.core import scope
from worker.core.errors import DtUnavailable
from worker.core.fpf import ProjectFacts
from worker.core.scope import IN, OUT, UNDECIDED
from worker.service.projects import Directory

V5 = orjson.loads(
    (NOTIFICATIONS / "v5pre__hyades-v0.6.0-test__GROUP_NEW_VULNERABILITY.json").read_bytes()
)


@pytest.mark.parametrize(
    ("variables", "name", "version", "tags", "verdict"),
    [
        ((None, None, None, None), "x", None, None, IN),
        (("team-a", None, None, None), "x", None, ["Team-A", "b"], IN),
        (("team-a", None, None, None), "x", None, ["b"], OUT),
        (("team-a", None, None, None), "x", None, None, UNDECIDED),
        ((None, "legacy", None, None), "x", None, ["legacy"], OUT),
        ((None, None, "shop-*", None), "shop-api", "1.0", None, IN),
        ((None, None, "shop-*", None), "blog", "1.0", None, OUT),
        ((None, None, None, "*@*-SNAPSHOT"), "shop", "2.0-SNAPSHOT", None, OUT),
        ((None, None, None, "*@*-SNAPSHOT"), "shop", "2.0", None, IN),
        ((None, None, "shop-*", None), None, None, None, UNDECIDED),
    ],
)
def test_scope_decides_by_tags_and_name_patterns(variables, name, version, tags, verdict):
    assert scope.parse(*variables).decide(name, version, tags)[0] == verdict


def _v5(project: str, tags: list[str], n: int = 0) -> bytes:
    body = V5["notification"] | {"timestamp": f"2026-11-22T07:00:00.{n:06d}Z"}
    named = body["subject"]["project"] | {"uuid": project, "tags": tags}
    body["subject"] = body["subject"] | {"project": named, "affectedProjects": [named]}
    return orjson.dumps({"notification": body})


async def _webhook(client: Any, body: bytes) -> tuple[int, dict[str, Any]]:
    response = await client.post("/webhook", data=body, headers={"X-Api-Key": TOKEN})
    return response.status, await response.json()


async def test_finding_events_carry_the_project_tags_and_activity(
    serve, dt: FakeDt, tmp_path: Path, contracts
):
    client, _, events, _ = await serve(emit="both", state_url=f"sqlite:///{tmp_path / 's.db'}")
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    dt.projects = [{"uuid": project, "name": "shop", "version": "1", "active": True,
                    "tags": [{"name": "team-b"}, {"name": "team-a"}]}]  # fmt: skip
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    await eventually(lambda: len(events.of("delta.opened.high")) > 0, within=10)
    snapshot = events.findings(project)
    changes = [orjson.loads(m.body) for m in events.messages if m.routing_key.startswith("delta.")]
    for event in snapshot:
        assert event["data"]["project"]["tags"] == ["team-a", "team-b"]
        assert event["data"]["project"]["active"] is True
        assert contracts.finding_event.problems(event) == ()
    for event in changes:
        assert event["data"]["project"]["tags"] == ["team-a", "team-b"]
        assert contracts.finding_change.problems(event) == ()


async def test_a_failed_project_lookup_says_tags_unknown_and_never_fails_the_job(serve, dt: FakeDt):
    client, _, events, _ = await serve()
    dt.permissions = [p for p in dt.permissions if p != "VIEW_PORTFOLIO"]  # 403 for the lookup
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    findings = events.findings(project)
    assert len(findings) == 13
    assert {str(e["data"]["project"]["tags"]) for e in findings} == {"None"}


async def test_the_receiver_ignores_what_the_notification_shows_out_of_scope(serve, dt: FakeDt):
    client, topo, _, _ = await serve(work=False, exclude_tags="legacy", exclude_projects="p-old*")
    status, body = await _webhook(client, _v5(str(uuid.uuid4()), ["legacy", "x"]))
    assert (status, body["status"], body.get("reason")) == (200, "ignored", "out_of_scope"), body
    assert "tag legacy is excluded" in body["detail"]
    template = orjson.loads(notification(str(uuid.uuid4())))
    template["notification"]["subject"]["project"]["name"] = "p-old-site"
    status, body = await _webhook(client, orjson.dumps(template))
    assert (status, body["reason"]) == (200, "out_of_scope")
    status, body = await _webhook(client, _v5(str(uuid.uuid4()), ["team-a"], 1))
    assert (status, body["status"]) == (202, "enqueued")
    assert len(await drain(topo.jobs_queue.name)) == 1


async def test_a_dt4_notification_without_tags_is_decided_by_the_worker(serve, dt: FakeDt):
    client, topo, events, _ = await serve(include_tags="team-a")
    inside, outside = str(uuid.uuid4()), str(uuid.uuid4())
    for project, tags in ((inside, ["team-a"]), (outside, ["team-b"])):
        dt.exports[project] = REAL
        dt.projects.append({"uuid": project, "name": "p", "active": True,
                            "tags": [{"name": tag} for tag in tags]})  # fmt: skip
    (kept,) = (await post(client, inside))["jobs"]  # v4: no tags, the receiver cannot tell
    assert len((await post(client, outside, 1))["jobs"]) == 1  # enqueued: the worker decides
    await eventually(lambda: kept["job_id"] in events.summaries(), within=20)

    async def settled() -> list[str]:
        metrics = await (await client.get("/metrics")).text()
        return re.findall(r"^dtrack_worker_jobs_total\{.*$", metrics, re.MULTILINE)

    await until(
        settled,
        lambda lines: 'dtrack_worker_jobs_total{outcome="out_of_scope"} 1.0' in lines,
        what="the second job settled out_of_scope (the jobs_total samples)",
    )
    assert dt.fetches_of(outside) == []  # never fetched
    assert len(dt.fetches_of(inside)) == 1
    assert await drain(topo.parked_queue.name) == []


async def test_backfill_queues_only_the_projects_in_scope(serve, dt: FakeDt):
    _, topo, _, settings = await serve(work=False)
    dt.projects = [
        {"uuid": str(uuid.uuid4()), "name": name, "active": True, "tags": [{"name": tag}]}
        for name, tag in (("shop", "team-a"), ("blog", "team-a"), ("shop-old", "legacy"))
    ]
    env = _env(settings.broker.prefix, dt) | {
        "DTRACK_WORKER_INCLUDE_PROJECTS": "shop*",
        "DTRACK_WORKER_EXCLUDE_TAGS": "legacy",
    }
    code, out, err = await cli("backfill", env=env)
    assert code == 0, err
    assert "1 jobs enqueued for 3 projects (2 skipped: out of scope" in out
    (job,) = await drain(topo.jobs_queue.name)
    assert orjson.loads(job.body)["project_uuid"] == dt.projects[0]["uuid"]


async def test_tags_a_dt5_notification_gives_are_used_without_asking_dt(serve, dt: FakeDt):
    client, _, events, _ = await serve()
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    dt.permissions = [p for p in dt.permissions if p != "VIEW_PORTFOLIO"]  # DT would refuse
    status, body = await _webhook(client, _v5(project, ["team-b", "team-a"]))
    assert status == 202, body
    (job,) = body["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    findings = events.findings(project)
    assert findings
    assert {tuple(e["data"]["project"]["tags"]) for e in findings} == {("team-a", "team-b")}
    # one question about the project: the analysis gate's (DT's 403 there: no signal, the
    # export applies); none for its tags
    asked = [path for _, path, _ in dt.requests if path.startswith("/api/v1/project/")]
    assert asked == [f"/api/v1/project/{project}"]


class _Dt:
    """A DT that counts its project lookups; ``fail`` makes them fail."""

    def __init__(self) -> None:
        self.asked = 0
        self.fail = False

    async def project(self, project_uuid: str, *, retry: bool = True) -> dict[str, Any] | None:
        assert retry is False  # a lookup tries once: the export's fetch retries
        self.asked += 1
        if self.fail:
            raise DtUnavailable("DT answered 503")
        return {"uuid": project_uuid, "name": "p", "tags": [{"name": "b"}, {"name": "a"}]}


async def test_project_lookups_are_reused_for_the_cache_time_and_failures_are_not_kept():
    dt, now = _Dt(), [0.0]
    directory = Directory(dt, ttl=300, clock=lambda: now[0])
    first = await directory.lookup("p1")
    assert first is not None
    assert first.facts == ProjectFacts(tags=["a", "b"], active=None)
    assert await directory.lookup("p1") == first
    assert dt.asked == 1
    now[0] = 301.0  # DTRACK_WORKER_PROJECT_CACHE_SECONDS later: asked again
    await directory.lookup("p1")
    assert dt.asked == 2
    dt.fail = True
    assert await directory.lookup("p2") is None  # unknown, logged, the job goes on
    assert await directory.lookup("p2") is None
    assert dt.asked == 4  # a failure is not remembered
    fresh = _Dt()
    uncached = Directory(fresh, ttl=0)
    await uncached.lookup("p1")
    await uncached.lookup("p1")
    assert fresh.asked == 2  # 0: every job asks
