"""The line stream (DTRACK_WORKER_TRACK=line, issue 26): version series of real exports, built
the way DT makes them (a new project UUID, new component UUIDs for unchanged components),
synced through the real Deltas, the real SQLite and PostgreSQL and the fake DT (which lists the
line's versions with DT's own fields); the finding-change.v2 events read back from the outbox
under the line's id, each checked against the bundled schema."""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tests.fake_dt import API_KEY, FakeDt
from tests.test_line_diff import NPM, PHP, _document, _later, next_version
from worker.adapters.dtrack import DtClient
from worker.adapters.metrics import WorkerMetrics
from worker.adapters.schemas import Contracts
from worker.adapters.state.store import Store
from worker.core.config import Settings
from worker.core.errors import GuardPending
from worker.core.jobs import Job
from worker.core.lines import Line
from worker.service.delta import DeltaOptions, Deltas

SOURCE = "https://dt.example"
Document = dict[str, Any]


def _ms(timestamp: str, seconds: int = 0) -> int:
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return int(moment.timestamp() * 1000) + seconds * 1000


def publish(dt: FakeDt, document: Document, *, latest: bool = True, analysed: bool = True) -> None:
    """DT lists ``document``'s project as a version of its name: flagged latest (the
    others not), its BOM imported a minute before the export, analysed or not yet."""
    project = document["project"]
    stamp = document["meta"]["timestamp"]
    if latest:
        for other in dt.projects:
            if other["name"] == project["name"]:
                other["isLatest"] = False
    entry = {
        "uuid": project["uuid"],
        "name": project["name"],
        "version": project.get("version"),
        "tags": [],
        "active": True,
        "isLatest": latest,
        "lastBomImport": _ms(stamp, -60),
        "lastVulnerabilityAnalysis": _ms(stamp, -30 if analysed else -120),
    }
    dt.projects = [p for p in dt.projects if p["uuid"] != project["uuid"]]
    dt.projects.append(entry)


class Series:
    """One project name's versions in the fake DT, synced through the real Deltas."""

    def __init__(self, deltas: Deltas, store: Store, dt: FakeDt, contracts: Contracts) -> None:
        self.deltas, self.store, self.dt, self.contracts = deltas, store, dt, contracts

    def publish(self, document: Document, *, latest: bool = True, analysed: bool = True) -> None:
        publish(self.dt, document, latest=latest, analysed=analysed)

    async def sync(self, document: Document, *, force: bool = False) -> tuple[str, int]:
        raw = orjson.dumps(document)
        project = document["project"]["uuid"]
        self.dt.exports.as_is(project, raw)
        job = Job(
            job_id=str(uuid.uuid4()),
            project_uuid=project,
            project_name=document["project"]["name"],
            trigger="TEST",
            notification_id=str(uuid.uuid4()),
            accepted_at="2026-11-30T10:00:00.000000Z",
            correlation_id="test",
        )
        ref = {"job_id": job.job_id, "trigger": "TEST", "correlation_id": "t", "accepted_at": ""}
        return await self.deltas.export(job, raw, 0.0, ref, force=force)

    async def events(self, line: Line) -> list[dict[str, Any]]:
        """The line's change events waiting in the outbox, in sequence, and taken."""
        rows = await self.store.outbox_batch(line.id, 100_000)
        await self.store.delete_outbox([row[0] for row in rows])
        found: list[dict[str, Any]] = []
        for row in rows:
            body = orjson.loads(row[4])
            found.extend(body if isinstance(body, list) else [body])
        for event in found:
            assert self.contracts.line_change.problems(event) == (), event
        return found

    async def project_events(self, project: str) -> list[dict[str, Any]]:
        rows = await self.store.outbox_batch(project, 100_000)
        await self.store.delete_outbox([row[0] for row in rows])
        return [orjson.loads(row[4]) for row in rows]


@pytest.fixture
async def series(state_url: str, dt: FakeDt, contracts: Contracts) -> AsyncIterator[Any]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(**env: str) -> Series:
            settings = Settings.from_env(
                {
                    "DTRACK_WORKER_STATE_URL": state_url,
                    "DTRACK_WORKER_DT_URL": dt.url,
                    "DTRACK_WORKER_DT_API_KEY": API_KEY,
                    "DTRACK_WORKER_DT_BACKOFF_SECONDS": "0.01",
                    "DTRACK_WORKER_TRACK": "line",
                }
                | {f"DTRACK_WORKER_{k.upper()}": v for k, v in env.items()}
            )
            store = await stack.enter_async_context(Store.open(settings.state))
            client = await stack.enter_async_context(DtClient.open(settings.dt))
            options = DeltaOptions(
                source=SOURCE,
                zone=UTC,
                epss_delta=settings.state.epss_delta,
                baseline=settings.state.baseline,
                guard=settings.state.mass_resolve,
                track=settings.state.track,
                line_by=settings.state.line_by,
                carry_triage=settings.state.carry_triage,
            )
            deltas = Deltas(store, client, contracts.fpf, WorkerMetrics.create(), options)
            return Series(deltas, store, dt, contracts)

        yield make


def _line(document: Document, track: str | None = None) -> Line:
    return Line(SOURCE, "", document["project"]["name"], track)


def _kinds(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted(
        (e["data"]["change"]["kind"], e["data"]["package"]["key"], e["data"]["vulnerability_id"])
        for e in events
    )


def _changes(event: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {c["field"]: (c["old"], c["new"]) for c in event["data"]["change"]["changes"]}


async def _first(s: Series, document: Document) -> list[dict[str, Any]]:
    s.publish(document)
    assert (await s.sync(document))[0] == "done"
    return await s.events(_line(document))


async def test_a_first_version_opens_line_findings_and_publishes_no_v1_changes(series) -> None:
    s = await series()
    v1 = _document(PHP)
    opened = await _first(s, v1)
    assert {e["type"] for e in opened} == {"dtrack-worker.finding.opened.v2"}
    assert len(opened) == 8  # 13 DT findings: 5 GHSA/CVE pairs are one finding each
    assert [int(e["sequence"]) for e in opened] == list(range(1, 9))
    own = await s.project_events(v1["project"]["uuid"])  # the project's view: its summary only
    assert [e["type"] for e in own] == ["dtrack-worker.export.summary.v1"]
    assert own[0]["data"]["transitions"]["opened"] == 8
    (report,) = await s.store.lines()
    assert (report.current_project, report.sequence) == (v1["project"]["uuid"], 8)
    assert sum(report.open_counts.values()) == 8
    assert [v.project for v in report.versions] == [v1["project"]["uuid"]]


async def test_a_bump_that_keeps_a_vulnerability_is_one_changed_per_finding(series) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2", bump={"phpseclib": "3.0.50"})
    s.publish(v2)
    assert await s.sync(v2) == ("done", 0)  # the project's own view: a first sync, no v1 events
    events = await s.events(_line(v1))
    assert _kinds(events) == [
        ("changed", "pkg:composer/phpseclib/phpseclib", "CVE-2026-32935"),
        ("changed", "pkg:composer/phpseclib/phpseclib", "CVE-2026-40194"),
    ]
    for event in events:
        assert _changes(event)["component.version"] == ("3.0.49", "3.0.50")
        assert event["data"]["project"]["uuid"] == v2["project"]["uuid"]
    assert [int(e["sequence"]) for e in events] == [9, 10]
    # the same export again: nothing (the fast path: the line's state is this view's)
    again = copy.deepcopy(v2)
    again["meta"]["timestamp"] = _later(v2["meta"]["timestamp"], 60)
    await s.sync(again)
    assert await s.events(_line(v1)) == []


async def test_a_fix_resolves_a_new_vulnerability_opens_and_a_cve_beside_its_ghsa_is_no_new_finding(
    series,
) -> None:
    s = await series()
    v1 = _document(PHP)
    ghsa_only = copy.deepcopy(v1)  # DT had mirrored only GitHub's advisories
    ghsa_only["findings"] = [r for r in v1["findings"] if r["vulnerability"]["source"] != "NVD"]
    await _first(s, ghsa_only)
    v2 = next_version(v1, "2", keep=lambda row: row["component"]["name"] != "composer")
    new = copy.deepcopy(v2["findings"][0])
    new["vulnerability"] |= {
        "uuid": "7e57c0de-0000-4000-8000-000000000001",
        "vulnId": "CVE-2026-55555",
        "source": "NVD",
        "aliases": [],
    }
    new["matrix"] = new["matrix"].rsplit(":", 1)[0] + ":7e57c0de-0000-4000-8000-000000000001"
    v2["findings"].append(new)
    s.publish(v2)
    await s.sync(v2)
    events = await s.events(_line(v1))
    kinds = {k for k, _, _ in _kinds(events)}
    assert kinds == {"opened", "resolved", "changed"}
    assert [(p, v) for k, p, v in _kinds(events) if k == "opened"] == [
        ("pkg:composer/psy/psysh", "CVE-2026-55555")
    ]
    assert [(p, v) for k, p, v in _kinds(events) if k == "resolved"] == [
        ("pkg:composer/composer/composer", "CVE-2026-40176"),
        ("pkg:composer/composer/composer", "CVE-2026-40261"),
    ]
    for event in events:  # the CVE rows NVD added joined their GHSA's finding
        if event["data"]["change"]["kind"] == "changed":
            old, now = _changes(event)["instances"]
            assert [i["source"] for i in old] == ["GITHUB"]
            assert sorted(i["source"] for i in now) == ["GITHUB", "NVD"]


async def test_another_sbom_tool_adding_purl_qualifiers_moves_nothing(series) -> None:
    s = await series()
    v1 = _document(NPM)
    await _first(s, v1)
    v2 = next_version(v1, "2")
    for row in v2["findings"]:
        row["component"]["purl"] += "?repository_url=https%3A%2F%2Fregistry.npmjs.org"
    s.publish(v2)
    await s.sync(v2)
    assert await s.events(_line(v1)) == []
    (report,) = await s.store.lines()
    assert report.current_project == v2["project"]["uuid"]


async def test_a_pre_analysis_empty_export_of_the_new_current_version_is_not_applied(
    series,
) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2", keep=lambda row: False)  # DT exported before analysing
    s.publish(v2, analysed=False)
    with pytest.raises(GuardPending, match="8 of 8 open findings"):
        await s.sync(v2)
    assert await s.events(_line(v1)) == []
    (report,) = await s.store.lines()
    assert report.current_project == v1["project"]["uuid"]
    # analysed: the real export applies, and moves the line as a version switch
    full = next_version(v1, "2")
    s.publish(full)
    await s.sync(full)
    assert await s.events(_line(v1)) == []
    (report,) = await s.store.lines()
    assert (report.current_project, sum(report.open_counts.values())) == (
        full["project"]["uuid"],
        8,
    )


async def test_is_latest_moving_back_gives_that_versions_diff_against_the_current_state(
    series,
) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2", bump={"phpseclib": "3.0.50"})
    s.publish(v2)
    await s.sync(v2)
    await s.events(_line(v1))
    back = copy.deepcopy(v1)  # DT flags 1 latest again; its next export
    back["meta"]["timestamp"] = _later(v2["meta"]["timestamp"], 60)
    s.publish(back)
    await s.sync(back)
    events = await s.events(_line(v1))
    assert [e["data"]["change"]["kind"] for e in events] == ["changed", "changed"]
    assert {_changes(e)["component.version"] for e in events} == {("3.0.50", "3.0.49")}


async def test_an_export_of_a_version_that_is_not_current_moves_nothing(series) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    old = next_version(v1, "0.9", bump={"phpseclib": "3.0.10"}, seconds=60)
    s.publish(old, latest=False)
    assert await s.sync(old) == ("done", 0)
    assert await s.events(_line(v1)) == []
    (report,) = await s.store.lines()
    assert report.current_project == v1["project"]["uuid"]
    assert sorted(v.project for v in report.versions) == sorted(
        [v1["project"]["uuid"], old["project"]["uuid"]]
    )
    assert await s.store.open_findings(old["project"]["uuid"])  # its own view is kept


async def test_two_tracks_of_one_name_are_two_streams(series) -> None:
    s = await series(line_by=r"name+version:^(\d+)\.")
    one = copy.deepcopy(_document(PHP))
    one["project"]["version"] = "1.4"
    two = next_version(one, "2.0")
    s.publish(one, latest=False)
    s.publish(two, latest=True)
    await s.sync(one)
    await s.sync(two)
    first, second = await s.events(_line(one, "1")), await s.events(_line(one, "2"))
    assert len(first) == len(second) == 8
    assert {e["data"]["line"]["track"] for e in first} == {"1"}
    assert not {e["subject"] for e in first} & {e["subject"] for e in second}
    assert len(await s.store.lines()) == 2


def _suppress(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    picked = [copy.deepcopy(r) for r in rows if r["component"]["name"] == name]
    for row in picked:
        row["analysis"] = {"state": "NOT_AFFECTED", "isSuppressed": True, "detail": "unused"}
    return picked


async def _suppressed_then_new_version(s: Series) -> tuple[Document, list[dict[str, Any]]]:
    v1 = _document(NPM)
    # one row per finding: the export repeats one for a second attribution, DT's list does not
    v1["findings"] = list({r["matrix"]: r for r in reversed(v1["findings"])}.values())[::-1]
    await _first(s, v1)
    hidden = copy.deepcopy(v1)  # suppressed in DT: the export leaves its rows out
    hidden["meta"]["timestamp"] = _later(v1["meta"]["timestamp"], 60)
    hidden["findings"] = [r for r in v1["findings"] if r["component"]["name"] != "next-intl"]
    s.dt.suppressed[v1["project"]["uuid"]] = _suppress(v1["findings"], "next-intl")
    s.publish(hidden)
    await s.sync(hidden)
    (suppressed,) = await s.events(_line(v1))
    assert suppressed["data"]["change"]["kind"] == "suppressed"
    v2 = next_version(v1, "2", seconds=120)  # DT lost the analysis with the old rows
    s.publish(v2)
    await s.sync(v2)
    return v2, await s.events(_line(v1))


async def test_triage_lost_in_dt_is_carried_and_said_once(series) -> None:
    s = await series()
    v2, events = await _suppressed_then_new_version(s)
    (event,) = events
    change = event["data"]["change"]
    assert (change["kind"], change["previous_status"]) == ("changed", "suppressed")
    assert change["analysis_lost_in_dt"] is True
    old, new = _changes(event)["instances"]
    assert {i["project_uuid"] for i in new} == {v2["project"]["uuid"]}
    assert {i["project_uuid"] for i in old} != {v2["project"]["uuid"]}
    again = copy.deepcopy(v2)  # DT still shows it unsuppressed: nothing more
    again["meta"]["timestamp"] = _later(v2["meta"]["timestamp"], 60)
    again["findings"][0]["vulnerability"]["severity"] = "LOW"  # not the fast path
    await s.sync(again)
    assert all(e["subject"] != event["subject"] for e in await s.events(_line(v2)))
    # DT suppresses it again on the new rows: it stays suppressed, no event
    later = copy.deepcopy(again)
    later["meta"]["timestamp"] = _later(again["meta"]["timestamp"], 60)
    later["findings"] = [r for r in again["findings"] if r["component"]["name"] != "next-intl"]
    s.dt.suppressed[v2["project"]["uuid"]] = _suppress(again["findings"], "next-intl")
    await s.sync(later)
    assert await s.events(_line(v2)) == []
    # un-suppressed in DT on the same rows: a real change, reopened
    s.dt.suppressed.pop(v2["project"]["uuid"])
    back = copy.deepcopy(again)
    back["meta"]["timestamp"] = _later(later["meta"]["timestamp"], 60)
    await s.sync(back)
    (reopened,) = await s.events(_line(v2))
    assert reopened["data"]["change"]["kind"] == "reopened"
    assert reopened["data"]["change"]["analysis_lost_in_dt"] is False


async def test_without_carrying_triage_a_lost_analysis_reopens(series) -> None:
    s = await series(carry_triage="false")
    _, events = await _suppressed_then_new_version(s)
    (event,) = events
    change = event["data"]["change"]
    assert (change["kind"], change["analysis_lost_in_dt"]) == ("reopened", True)


async def test_a_failure_listing_the_versions_is_a_retry_never_data(series) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2", keep=lambda row: False)
    s.publish(v2)
    s.dt.portfolio_forbidden = True
    with pytest.raises(Exception, match="403"):
        await s.sync(v2)
    assert await s.events(_line(v1)) == []
    assert await s.store.open_findings(v1["project"]["uuid"])


@pytest.mark.rabbitmq
async def test_the_service_publishes_a_lines_v2_events_in_sequence(serve, dt: FakeDt, state_url):
    from tests.harness import post
    from tests.rabbit import eventually

    client, _, events, settings = await serve(emit="delta", track="line", state_url=state_url)
    v1 = _document(PHP)
    project = v1["project"]["uuid"]
    publish(dt, v1)
    dt.exports.as_is(project, orjson.dumps(v1))
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)

    def published() -> list[dict[str, Any]]:
        return [
            orjson.loads(m.body)
            for m in events.messages
            if (m.routing_key or "").startswith("delta.")
        ]

    await eventually(lambda: len(published()) == 8, within=20)
    changes = published()
    assert {e["type"] for e in changes} == {"dtrack-worker.finding.opened.v2"}
    assert [int(e["sequence"]) for e in changes] == list(range(1, 9))
    line = Line(settings.dt.event_source, "", v1["project"]["name"])
    assert {e["data"]["line"]["id"] for e in changes} == {line.id}


async def test_with_baseline_a_lines_first_version_is_silent_and_its_next_version_is_not(
    series,
) -> None:
    s = await series(baseline="true")
    v1 = _document(PHP)
    s.publish(v1)
    assert await s.sync(v1) == ("baseline", 0)  # the line's first export: recorded, no events
    assert await s.events(_line(v1)) == []
    v2 = next_version(v1, "2", bump={"phpseclib": "3.0.50"})  # a new project, first seen
    s.publish(v2)
    await s.sync(v2)
    assert [e["data"]["change"]["kind"] for e in await s.events(_line(v1))] == ["changed"] * 2


async def test_a_forced_replay_passes_the_lines_guard(series) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2", keep=lambda row: False)
    s.publish(v2, analysed=False)
    with pytest.raises(GuardPending):
        await s.sync(v2)
    await s.sync(v2, force=True)  # `parked replay --force`
    events = await s.events(_line(v1))
    assert [e["data"]["change"]["kind"] for e in events] == ["resolved"] * 8


def _finding_history(cursor: Any, dialect: Any, project: str) -> list[str]:
    cursor.execute(dialect.sql("SELECT kind FROM finding_history WHERE project = %s"), (project,))
    return [row[0] for row in cursor.fetchall()]


async def test_the_line_mode_keeps_the_projects_finding_history_for_the_console(series) -> None:
    """The console's project page reads its timeline from finding_history: the project's own
    view records its transitions in either track, though only the line publishes (REVIEW-1 M1)."""
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)  # 8 line findings opened; the project's view has 13
    kinds = await s.store.read(_finding_history, v1["project"]["uuid"])
    assert kinds == ["opened"] * 13
