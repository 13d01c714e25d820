"""Finding state and change detection against a real SQLite file and the real PostgreSQL (the
same tests for both): sequences of real exports with findings added, removed, re-scored,
suppressed and restored; stale exports, deleted projects, first syncs and baselines. DT is the
fake DT on loopback; the events are read from the outbox, as the relay would publish them."""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import ocsf_contract
from tests.conftest import FPF
from tests.fake_dt import API_KEY, FakeDt
from tests.state_db import fresh_database
from worker.adapters.dtrack import DtClient
from worker.adapters.metrics import WorkerMetrics
from worker.adapters.schemas import Contracts
from worker.adapters.state.store import Store
from worker.core import ocsf
from worker.core.config import Settings
from worker.core.errors import SuspiciousExport
from worker.core.jobs import Job
from worker.service.delta import DeltaOptions, Deltas

REAL = orjson.loads((FPF / "real" / "defectdojo__deptrack_php_4.14.1.json").read_bytes())


def export(project: str, second: int, edit: Any = None) -> dict[str, Any]:
    """The real export as ``project``'s, taken at 10:00:<second>; ``edit`` changes it."""
    document = copy.deepcopy(REAL)
    own = document["project"]["uuid"]
    document = orjson.loads(orjson.dumps(document).replace(own.encode(), project.encode()))
    document["meta"]["timestamp"] = f"2026-11-30T10:{second // 60:02d}:{second % 60:02d}Z"
    if edit is not None:
        edit(document)
    return dict(document)


class Project:
    """One project's syncs through the real Deltas, Store and DT client; its outbox read back."""

    def __init__(self, deltas: Deltas, store: Store, dt: FakeDt, contracts: Contracts) -> None:
        self.uuid = str(uuid.uuid4())
        self.deltas, self.store, self.dt, self.contracts = deltas, store, dt, contracts
        self.jobs = 0

    def job(self) -> Job:
        self.jobs += 1
        return Job(
            job_id=str(uuid.uuid4()),
            project_uuid=self.uuid,
            project_name="acme",
            trigger="TEST",
            notification_id=f"n{self.jobs}",
            accepted_at="2026-11-30T10:00:00.000000Z",
            correlation_id="test",
        )

    async def sync(self, document: dict[str, Any]) -> tuple[str, int]:
        raw = orjson.dumps(document)
        self.dt.exports.as_is(self.uuid, raw)
        job = self.job()
        ref = {"job_id": job.job_id, "trigger": "TEST", "correlation_id": "t", "accepted_at": ""}
        return await self.deltas.export(job, raw, 0.0, ref)

    async def events(self) -> list[dict[str, Any]]:
        """Every event waiting in the outbox for this project, in sequence, and taken."""
        rows = await self.store.outbox_batch(self.uuid, 100_000)
        await self.store.delete_outbox([row[0] for row in rows])
        return [orjson.loads(row[4]) for row in rows]

    async def changes(self) -> list[dict[str, Any]]:
        found = [e for e in await self.events() if e["type"].startswith("dtrack-worker.finding.")]
        for event in found:
            assert self.contracts.finding_change.problems(event) == (), event
            # every transition the state tests make is valid OCSF too (DTRACK_WORKER_FORMAT)
            finding = ocsf.finding(event, product_version="test")
            assert ocsf_contract.problems(finding) == [], finding
        return found


@pytest.fixture
async def project(state_url: str, dt: FakeDt, contracts: Contracts) -> AsyncIterator[Any]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(**env: str) -> Project:
            settings = Settings.from_env(
                {
                    "DTRACK_WORKER_STATE_URL": state_url,
                    "DTRACK_WORKER_DT_URL": dt.url,
                    "DTRACK_WORKER_DT_API_KEY": API_KEY,
                }
                | {f"DTRACK_WORKER_{k.upper()}": v for k, v in env.items()}
            )
            store = await stack.enter_async_context(Store.open(settings.state))
            client = await stack.enter_async_context(DtClient.open(settings.dt))
            options = DeltaOptions(
                source="https://dt.example",
                zone=__import__("datetime").UTC,
                epss_delta=settings.state.epss_delta,
                baseline=settings.state.baseline,
                clock_skew_tolerance=settings.state.clock_skew_tolerance,
                guard=settings.state.mass_resolve,
            )
            deltas = Deltas(store, client, contracts.fpf, WorkerMetrics.create(), options)
            return Project(deltas, store, dt, contracts)

        yield make


def _kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["change"]["kind"] for e in events]


async def test_a_first_sync_opens_every_finding_then_an_unchanged_export_changes_nothing(project):
    p = await project()
    assert await p.sync(export(p.uuid, 1)) == ("done", 13)
    events = await p.events()
    changes, (summary,) = events[:-1], events[-1:]
    assert _kinds(changes) == ["opened"] * 13
    assert [e["sequence"] for e in events] == [f"{n:020d}" for n in range(1, 15)]
    assert {e["subject"] for e in changes} == {f["matrix"] for f in export(p.uuid, 1)["findings"]}
    assert all(e["id"] != changes[0]["id"] for e in changes[1:])
    first = changes[0]
    assert first["type"] == "dtrack-worker.finding.opened.v1"
    assert first["data"]["change"]["previous_status"] is None
    assert first["data"]["vulnerability"]["description"]  # the whole finding, as today
    assert summary["data"]["transitions"] == {
        "opened": 13, "changed": 0, "resolved": 0, "suppressed": 0, "reopened": 0
    }  # fmt: skip
    assert summary["sequence"] == f"{14:020d}"

    assert await p.sync(export(p.uuid, 2)) == ("done", 0)  # the same findings, later
    (summary,) = await p.events()
    assert summary["type"] == "dtrack-worker.export.summary.v1"
    assert summary["data"]["transitions"]["opened"] == 0
    (report,) = await p.store.projects(p.uuid)
    assert report.last_exported_at == "2026-11-30T10:00:02.000Z"
    assert sum(report.open.values()) == 13


async def test_rescored_removed_suppressed_and_restored_findings(project, dt: FakeDt):
    p = await project()
    await p.sync(export(p.uuid, 1))
    await p.events()
    base = export(p.uuid, 1)["findings"]
    rescored, fixed, hidden = base[0]["matrix"], base[1]["matrix"], base[2]["matrix"]

    def edit(document: dict[str, Any]) -> None:
        target = next(f for f in document["findings"] if f["matrix"] == rescored)
        target["vulnerability"]["severity"] = "CRITICAL"
        target["vulnerability"]["cvssV3BaseScore"] = 9.8
        document["findings"] = [
            f for f in document["findings"] if f["matrix"] not in (fixed, hidden)
        ]

    suppressed_row = copy.deepcopy(next(f for f in base if f["matrix"] == hidden))
    suppressed_row["analysis"] = {
        "state": "NOT_AFFECTED", "isSuppressed": True, "detail": "not reachable"
    }  # fmt: skip
    dt.suppressed[p.uuid] = [suppressed_row]
    assert await p.sync(export(p.uuid, 2, edit)) == ("done", 3)
    changes = {e["subject"]: e for e in await p.changes()}
    assert changes[rescored]["data"]["change"]["kind"] == "changed"
    fields = {
        c["field"]: (c["old"], c["new"]) for c in changes[rescored]["data"]["change"]["changes"]
    }
    assert fields["severity"][1] == "critical"
    assert fields["cvss_v3_score"][1] == 9.8
    assert changes[rescored]["type"].endswith("changed.v1")
    resolved = changes[fixed]["data"]["change"]
    assert (resolved["kind"], resolved["reason"], resolved["previous_status"]) == (
        "resolved", "not_in_export", "open"
    )  # fmt: skip
    assert resolved["time_open_seconds"] == 1.0
    assert changes[fixed]["data"]["vulnerability"]["description"] is None  # from the snapshot
    assert changes[fixed]["data"]["vulnerability"]["id"]
    quiet = changes[hidden]["data"]
    assert quiet["change"]["kind"] == "suppressed"
    assert quiet["analysis"] == {
        "state": "not_affected",
        "suppressed": True,
        "detail": "not reachable",
    }
    assert p.dt.finding_lists == [p.uuid]  # asked once, because findings disappeared

    dt.suppressed[p.uuid] = []
    assert await p.sync(export(p.uuid, 3)) == ("done", 3)  # all back: both reopened, 1 rescored
    changes = {e["subject"]: e["data"]["change"] for e in await p.changes()}
    assert (changes[fixed]["kind"], changes[fixed]["previous_status"]) == ("reopened", "resolved")
    assert (changes[hidden]["kind"], changes[hidden]["previous_status"]) == (
        "reopened", "suppressed"
    )  # fmt: skip
    assert changes[rescored]["kind"] == "changed"


async def test_an_older_export_is_stale_and_changes_nothing(project):
    p = await project()
    await p.sync(export(p.uuid, 5))
    await p.events()
    shrunk = export(p.uuid, 4, lambda d: d["findings"].pop())
    assert await p.sync(shrunk) == ("stale", 0)
    assert await p.events() == []
    (report,) = await p.store.projects(p.uuid)
    assert report.last_outcome == "stale"
    assert sum(report.open.values()) == 13


async def test_a_deleted_project_resolves_every_open_finding(project):
    p = await project()
    await p.sync(export(p.uuid, 1))
    await p.events()
    job = p.job()
    ref = {"job_id": job.job_id, "trigger": "T", "correlation_id": "c", "accepted_at": "a"}
    assert (await p.deltas.gone(job, ref)).published == 13
    events = await p.events()
    assert [e["data"]["change"]["reason"] for e in events[:-1]] == ["project_deleted"] * 13
    assert events[-1]["type"] == "dtrack-worker.project.gone.v1"
    assert events[-1]["sequence"] > events[-2]["sequence"]
    (report,) = await p.store.projects(p.uuid)
    assert report.deleted
    assert sum(report.open.values()) == 0


async def test_a_baseline_records_without_events_then_changes_are_published(project):
    p = await project(baseline="true")
    assert await p.sync(export(p.uuid, 1)) == ("baseline", 0)
    (summary,) = await p.events()
    assert summary["data"]["baseline"] is True
    assert await p.sync(export(p.uuid, 2, lambda d: d["findings"].pop(0))) == ("done", 1)
    assert _kinds(await p.changes()) == ["resolved"]


async def test_epss_is_tracked_only_when_configured_and_only_past_the_threshold(project):
    p = await project(track_epss="0.1")
    await p.sync(export(p.uuid, 1))
    await p.events()

    def epss(value: float):
        def edit(document: dict[str, Any]) -> None:
            document["findings"][0]["vulnerability"]["epssScore"] = value

        return edit

    assert await p.sync(export(p.uuid, 2, epss(0.05))) == ("done", 0)  # moved less than 0.1
    await p.events()
    assert await p.sync(export(p.uuid, 3, epss(0.12))) == ("done", 1)  # 0.12 from the stored 0
    (change,) = await p.changes()
    assert change["data"]["change"]["changes"][-1]["field"] == "epss"

    quiet = await project()  # no EPSS tracking: EPSS changes nothing
    await quiet.sync(export(quiet.uuid, 1))
    await quiet.events()
    assert await quiet.sync(export(quiet.uuid, 2, epss(0.9))) == ("done", 0)


async def test_the_same_transition_of_the_same_export_has_the_same_id(project, state_url):
    with contextlib.ExitStack() as databases:

        def another() -> str:  # an empty store of the same backend
            if state_url.startswith("sqlite"):
                return str(state_url).replace("state.sqlite3", f"{uuid.uuid4().hex}.sqlite3")
            return str(databases.enter_context(fresh_database()))

        a = await project()
        await a.sync(export(a.uuid, 1))
        first = [(e["subject"], e["id"]) for e in await a.changes()]
        again = await project(state_url=another())
        again.uuid = a.uuid
        await again.sync(export(a.uuid, 1))  # the same project and export, elsewhere
        assert [(e["subject"], e["id"]) for e in await again.changes()] == first
        later = await project(state_url=another())
        later.uuid = a.uuid
        await later.sync(export(a.uuid, 2))  # another export: other ids
        assert not {i for _, i in first} & {e["id"] for e in await later.changes()}


# -- replaying the published changes gives the store's open set -------------------------------

BASE = [f["matrix"].split(":", 1)[1] for f in REAL["findings"]]  # component:vulnerability
steps = st.lists(
    st.tuples(
        st.sets(st.integers(0, len(BASE) - 1)),  # which findings the export lists
        st.sets(st.integers(0, len(BASE) - 1)),  # which of the missing ones DT has suppressed
        st.dictionaries(
            st.integers(0, len(BASE) - 1), st.sampled_from(["HIGH", "LOW", "CRITICAL"])
        ),
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=steps)
async def test_replaying_the_changes_gives_exactly_the_open_set(project, dt, sequence):
    p = await project()
    replayed: dict[str, str] = {}
    for second, (present, suppressed, rescored) in enumerate(sequence, 1):
        wanted = {f"{p.uuid}:{BASE[i]}" for i in present}
        hidden = {f"{p.uuid}:{BASE[i]}" for i in suppressed}

        def edit(
            document: dict[str, Any],
            wanted: set[str] = wanted,
            rescored: dict[int, str] = rescored,
        ) -> None:
            listed = []
            for finding in document["findings"]:
                index = BASE.index(finding["matrix"].split(":", 1)[1])
                if finding["matrix"] in wanted:
                    if index in rescored:
                        finding["vulnerability"]["severity"] = rescored[index]
                    listed.append(finding)
            document["findings"] = listed

        document = export(p.uuid, second, edit)
        dt.suppressed[p.uuid] = [
            {**f, "analysis": {"state": "FALSE_POSITIVE", "isSuppressed": True}}
            for f in export(p.uuid, second)["findings"]
            if f["matrix"] in hidden and f["matrix"] not in wanted
        ]
        with contextlib.suppress(SuspiciousExport):  # held back by the guard: changes nothing
            await p.sync(document)
        for event in await p.changes():  # in sequence, as a consumer applies them
            kind = event["data"]["change"]["kind"]
            replayed[event["subject"]] = (
                "open" if kind in ("opened", "changed", "reopened") else kind
            )
    opened = {key for key, status in replayed.items() if status == "open"}
    stored = {f.key for f in await p.store.open_findings(p.uuid)}
    assert opened == stored
