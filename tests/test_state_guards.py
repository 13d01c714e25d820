"""What must never look like data in the change stream (issue 25): an export stamped in the
future, an empty export from a DT hiccup, a findings list read short behind a proxy, and the
commands that reset a project (`state baseline`, `state resync`) or compare exports (`diff`).
Against the real SQLite and PostgreSQL, the fake DT on loopback and, for the service and the
commands, the real RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from tests import test_state
from tests.fake_dt import API_KEY, FakeDt
from tests.harness import REAL, listen, post
from tests.rabbit import depth, eventually, temporary_topology, unique_prefix
from tests.test_cli import run
from tests.test_operations import _env, cli
from tests.test_state import Project, export
from worker.adapters.dtrack import DtClient
from worker.core import errors
from worker.core.change_events import iso
from worker.core.config import Settings
from worker.core.dates import epoch
from worker.core.mass_resolve import Guard, Tally
from worker.service import job_messages

project = test_state.project  # the fixture: one project's syncs through Deltas, Store and DT

YEAR = 365 * 86400.0
FUTURE = "2036-01-01T00:00:00.000Z"  # what an older release stored after a DT clock error


def at(project_uuid: str, moment: float, edit: Any = None) -> dict[str, Any]:
    """The real export as the project's, stamped at ``moment`` (epoch seconds)."""
    document = export(project_uuid, 0, edit)
    document["meta"]["timestamp"] = iso(moment)
    return document


def fewer(count: int) -> Any:
    def edit(document: dict[str, Any]) -> None:
        document["findings"] = document["findings"][count:]

    return edit


def emptied(document: dict[str, Any]) -> None:
    document["findings"] = []


async def sync(p: Project, document: dict[str, Any], **options: Any) -> tuple[str, int]:
    """One job of ``p`` with the export, with Deltas.export's options (``force``...)."""
    raw = orjson.dumps(document)
    p.dt.exports.as_is(p.uuid, raw)
    job = p.job()
    ref = {"job_id": job.job_id, "trigger": "TEST", "correlation_id": "t", "accepted_at": ""}
    return await p.deltas.export(job, raw, 0.0, ref, **options)


def execute(state_url: str, statement: str, *params: Any) -> None:
    """One statement on the store behind the workers' back: what an older release left."""
    if state_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(state_url.removeprefix("sqlite:///"))) as db:
            db.execute(statement.replace("%s", "?"), params)
            db.commit()
        return
    with psycopg.connect(state_url) as db:
        db.execute(statement, params)


def frozen(state_url: str, project_uuid: str) -> None:
    """The project as an older release left it after an export stamped in 2036: the stamp as
    its last export, and its findings opened then."""
    execute(state_url, "UPDATE projects SET last_exported_at = %s WHERE uuid = %s",
            FUTURE, project_uuid)  # fmt: skip
    execute(state_url, "UPDATE findings SET first_seen = %s, opened_at = %s WHERE project = %s",
            epoch(FUTURE), epoch(FUTURE), project_uuid)  # fmt: skip


async def open_count(p: Project) -> int:
    (report,) = await p.store.projects(p.uuid)
    return sum(report.open.values())


# -- the settings ------------------------------------------------------------------------------


def test_the_tolerance_and_the_guard_settings():
    state = Settings.from_env({}).state
    assert state.clock_skew_tolerance == 3600
    assert state.mass_resolve == Guard(0.9, 5)
    state = Settings.from_env(
        {"DTRACK_WORKER_CLOCK_SKEW_TOLERANCE": "10m", "DTRACK_WORKER_MASS_RESOLVE_GUARD": "75%",
         "DTRACK_WORKER_MASS_RESOLVE_MIN": "20"}
    ).state  # fmt: skip
    assert (state.clock_skew_tolerance, state.mass_resolve) == (600, Guard(0.75, 20))
    assert Settings.from_env({"DTRACK_WORKER_MASS_RESOLVE_GUARD": "off"}).state.mass_resolve == (
        Guard(None, 5)
    )
    for variable, value, message in [
        ("CLOCK_SKEW_TOLERANCE", "soon", "CLOCK_SKEW_TOLERANCE='soon': use a duration like 1h"),
        ("CLOCK_SKEW_TOLERANCE", "30d", "must be between 0 s and 604800 s"),
        ("MASS_RESOLVE_GUARD", "100%", "must be a percentage from 1% to below 100%"),
        ("MASS_RESOLVE_GUARD", "0.9", "must be a percentage from 1% to below 100%"),
        ("MASS_RESOLVE_MIN", "0", "DTRACK_WORKER_MASS_RESOLVE_MIN='0' must be between 1"),
    ]:
        with pytest.raises(errors.ConfigError, match=re.escape(message)):
            Settings.from_env({f"DTRACK_WORKER_{variable}": value})


def test_the_guard_trips_over_its_share_and_minimum_only():
    guard = Guard(0.9, 5)
    assert guard.trips(Tally(opened=13, resolving=12))  # 92 %
    assert not guard.trips(Tally(opened=13, resolving=11))  # 85 %
    assert not guard.trips(Tally(opened=4, resolving=4))  # 100 %, but fewer than 5
    assert guard.trips(Tally(opened=4, resolving=4, emptied=True))  # DT's hiccup: any size
    assert guard.trips(Tally(opened=5, resolving=5))
    assert not Guard(None, 1).trips(Tally(opened=1000, resolving=1000))


# -- an export stamped in the future ----------------------------------------------------------


async def test_an_export_stamped_in_the_future_applies_with_the_receive_time(project):
    p = await project()
    before = time.time()
    ahead = at(p.uuid, before + 10 * YEAR)
    assert await sync(p, ahead) == ("done", 13)
    after = time.time()
    events = await p.events()
    (report,) = await p.store.projects(p.uuid)
    assert report.last_exported_at is not None
    assert before - 0.001 <= epoch(report.last_exported_at) <= after + 0.001
    for event in events[:-1]:  # opened now, not in ten years
        assert epoch(event["data"]["change"]["opened_at"]) <= after + 0.001
    summary = events[-1]
    assert epoch(summary["time"]) <= after + 0.001
    assert summary["data"]["fpf"]["exported_at"] == ahead["meta"]["timestamp"]  # DT's own

    # DT's clock is right again: its next export applies (it was `stale` forever before)
    assert await sync(p, at(p.uuid, time.time() + 1, fewer(1))) == ("done", 1)
    assert test_state._kinds(await p.changes()) == ["resolved"]


async def test_a_project_frozen_by_a_stored_future_stamp_recovers(project, state_url):
    p = await project()
    await sync(p, at(p.uuid, time.time() - 60))
    await p.events()
    frozen(state_url, p.uuid)
    assert await sync(p, at(p.uuid, time.time() - 30, fewer(1))) == ("done", 1)
    (resolved,) = await p.changes()
    change = resolved["data"]["change"]
    assert change["kind"] == "resolved"
    assert change["time_open_seconds"] >= 0  # opened "in 2036": taken as opened by then
    (report,) = await p.store.projects(p.uuid)
    assert report.last_exported_at is not None
    assert report.last_exported_at < FUTURE


async def test_a_stamp_within_the_tolerance_is_trusted(project):
    p = await project(clock_skew_tolerance="2h")
    ahead = at(p.uuid, time.time() + 3600)
    assert await sync(p, ahead) == ("done", 13)
    (report,) = await p.store.projects(p.uuid)
    assert report.last_exported_at == ahead["meta"]["timestamp"]
    # and the stale rule holds against it: an export stamped before it changes nothing
    assert await sync(p, at(p.uuid, time.time(), fewer(1))) == ("stale", 0)


async def test_an_untrusted_stamp_after_a_trusted_one_ahead_is_applied_not_stale(project):
    # DT's zone-less stamps read an hour off: one export just within the tolerance (trusted,
    # stored), the next just past it (applied as received, an hour earlier): its order is
    # unknowable, it must not be stale until the host's clock passes the first one
    p = await project()  # tolerance 1 h
    assert await sync(p, at(p.uuid, time.time() + 3600 - 5)) == ("done", 13)
    await p.events()
    first = (await p.store.projects(p.uuid))[0].last_exported_at
    assert first is not None
    assert await sync(p, at(p.uuid, time.time() + 3600 + 5, fewer(1))) == ("done", 1)
    assert test_state._kinds(await p.changes()) == ["resolved"]
    (report,) = await p.store.projects(p.uuid)
    assert report.last_exported_at is not None
    assert epoch(report.last_exported_at) > epoch(first)  # after the one it follows


# -- the mass-resolve guard -------------------------------------------------------------------


async def test_an_empty_export_and_findings_list_park_and_force_applies_them(project):
    p = await project()
    await sync(p, export(p.uuid, 1))
    await p.events()
    with pytest.raises(errors.PermanentError) as parked:
        await sync(p, export(p.uuid, 2, emptied))  # and DT's findings list is empty too
    assert job_messages.park_reason(parked.value) == "suspicious_export"
    assert "13 of 13 open findings" in str(parked.value)
    assert await p.events() == []  # nothing resolved, nothing published
    assert await open_count(p) == 13
    (report,) = await p.store.projects(p.uuid)
    assert report.last_outcome == "suspicious_export"
    assert report.last_exported_at == "2026-11-30T10:00:01.000Z"

    assert await sync(p, export(p.uuid, 2, emptied), force=True) == ("done", 13)
    assert test_state._kinds(await p.changes()) == ["resolved"] * 13


async def test_an_empty_export_and_list_are_held_back_whatever_the_minimum(project):
    # DT's hiccup (export and findings list both empty) hits every project at once: one with
    # fewer open findings than the minimum must not have them all resolved and reopened
    small = await project()
    await sync(small, export(small.uuid, 1, lambda d: d.update(findings=d["findings"][:2])))
    await small.events()
    with pytest.raises(errors.PermanentError) as parked:
        await sync(small, export(small.uuid, 2, emptied))
    assert "2 of 2 open findings would resolve" in str(parked.value)
    assert await small.events() == []
    assert await open_count(small) == 2
    _facts(small, lastBomImport=1.5, lastVulnerabilityAnalysis=1.8)  # a new BOM, analysed
    assert await sync(small, export(small.uuid, 2, emptied)) == ("done", 2)


def _facts(p: Project, **fields: Any) -> None:
    """What DT's project API says of the project: 10:00:<n> for n, in epoch milliseconds."""
    facts = {"uuid": p.uuid, "name": "acme", "active": True, "tags": []}
    for name, value in fields.items():
        if name == "dt":  # DT's version (GET /api/version): 4.13+ records analyses
            p.dt.version = dict(p.dt.version or {}, version=value)
            continue
        if name.startswith("last"):  # DT's dates: epoch milliseconds (Jackson's Date)
            value = int((epoch("2026-11-30T10:00:00.000Z") + value) * 1000)
        facts[name] = value
    p.dt.projects = [facts]


@pytest.mark.parametrize(
    ("facts", "passes"),
    [
        ({"lastBomImport": 3, "lastVulnerabilityAnalysis": 4}, "applied"),  # new BOM, analysed
        ({"lastBomImport": 3, "dt": "4.12.7"}, "applied"),  # 4.12 records no analysis at all
        ({"lastBomImport": 3}, "retried"),  # DT 4.14 before the project's first analysis
        ({"lastBomImport": 3, "lastVulnerabilityAnalysis": 2}, "retried"),  # still analysing
        ({"lastBomImport": 6, "lastVulnerabilityAnalysis": 7}, "retried"),  # BOM after export
        ({"lastBomImport": 0, "lastVulnerabilityAnalysis": 4}, "parked"),  # no new BOM
        ({"lastBomImport": 3, "lastVulnerabilityAnalysis": 4, "active": False}, "parked"),
        ({}, "parked"),  # DT knows of no BOM import at all
    ],
    ids=[
        "analysed",
        "dt-4.12",
        "never-analysed",
        "analysing",
        "bom-newer",
        "no-new-bom",
        "inactive",
        "no-bom",
    ],
)
async def test_a_mass_fix_passes_only_when_dt_explains_it(project, facts, passes):
    p = await project()
    await sync(p, export(p.uuid, 1))
    await p.events()
    _facts(p, **facts)
    fixed = export(p.uuid, 5, fewer(12))  # 12 of 13 gone: 92 %
    if passes == "applied":
        assert await sync(p, fixed) == ("done", 12)
        assert test_state._kinds(await p.changes()) == ["resolved"] * 12
        return
    if passes == "retried":  # DT's facts will catch up within minutes: the retry tiers wait
        with pytest.raises(errors.TransientError):
            await sync(p, fixed)
    else:  # an operator's look is needed
        with pytest.raises(errors.PermanentError) as parked:
            await sync(p, fixed)
        assert job_messages.park_reason(parked.value) == "suspicious_export"
    assert await p.events() == []
    assert await open_count(p) == 13


async def test_small_projects_and_ordinary_fixes_pass_the_guard(project):
    small = await project()
    await sync(small, export(small.uuid, 1, lambda d: d.update(findings=d["findings"][:4])))
    await small.events()
    moved = export(small.uuid, 2, lambda d: d.update(findings=d["findings"][4:5]))
    assert await sync(small, moved) == ("done", 5)  # 4 fixed, 1 new: under the minimum

    p = await project()
    await sync(p, export(p.uuid, 1))
    await p.events()
    assert await sync(p, export(p.uuid, 2, fewer(11))) == ("done", 11)  # 85 %: under 90 %

    off = await project(mass_resolve_guard="off")
    await sync(off, export(off.uuid, 1))
    await off.events()
    assert await sync(off, export(off.uuid, 2, emptied)) == ("done", 13)


@pytest.mark.rabbitmq
async def test_the_service_parks_a_hiccup_and_parked_replay_force_applies_it(
    serve, dt: FakeDt, state_url
):
    client, topo, events, settings = await serve(emit="delta", state_url=state_url)
    project_uuid = str(uuid.uuid4())
    dt.exports[project_uuid] = REAL
    (first,) = (await post(client, project_uuid))["jobs"]
    await eventually(lambda: first["job_id"] in events.summaries(), within=20)
    document = orjson.loads(dt.exports[project_uuid])
    document["meta"]["timestamp"] = "2026-11-30T10:00:00Z"
    document["findings"] = []  # DT's hiccup: an empty export, an empty findings list
    dt.exports[project_uuid] = orjson.dumps(document)
    (second,) = (await post(client, project_uuid, 1))["jobs"]
    await _parked(topo)  # the signal that the job settled
    env = _env(settings.broker.prefix, dt)
    code, listing, err = await cli("parked", "list", env=env)
    assert code == 0, err
    assert f"{second['job_id']}  suspicious_export" in listing
    assert "13 of 13 open findings" in listing
    changes = [m for m in events.messages if (m.routing_key or "").startswith("delta.")]
    assert len(changes) == 13  # the first export's opened events; nothing resolved
    assert second["job_id"] not in events.summaries()

    code, out, err = await cli("parked", "replay", second["job_id"], "--force", env=env)
    assert (code, out.strip()) == (0, "replayed 1 job to the jobs queue (forced)"), err
    await eventually(lambda: second["job_id"] in events.summaries(), within=20)
    resolved = [m for m in events.messages if (m.routing_key or "").startswith("delta.resolved.")]
    assert len(resolved) == 13
    assert await depth(topo.parked_queue.name) == 0


async def _parked(topo: Any, *, within: float = 20) -> None:
    """Returns once a job waits in the parked queue; fails saying so otherwise."""
    deadline = time.monotonic() + within
    while await depth(topo.parked_queue.name) == 0:
        assert time.monotonic() < deadline, f"no job reached {topo.parked_queue.name}"
        await asyncio.sleep(0.1)


# -- the findings list read in full ----------------------------------------------------------


def _listed(p: Project, fillers: int, last: dict[str, Any]) -> None:
    """DT's findings list (suppressed included): the export's findings, ``fillers`` suppressed
    findings of other components, then ``last``."""
    p.dt.suppressed[p.uuid] = [*_suppressed(p.uuid, fillers), last]


async def test_a_suppressed_finding_past_a_capped_page_is_suppressed(project, dt: FakeDt):
    p = await project()
    await sync(p, export(p.uuid, 1))
    await p.events()
    base = export(p.uuid, 1)
    hidden = copy.deepcopy(base["findings"][0])
    hidden["analysis"] = {"state": "NOT_AFFECTED", "isSuppressed": True, "detail": "unused"}
    _listed(p, 268, hidden)  # 12 listed + 268 + 1 = 281 rows
    dt.page_cap = 100  # a proxy: 100 rows a page whatever is asked; X-Total-Count says 281
    assert await sync(p, export(p.uuid, 2, fewer(1))) == ("done", 1)
    (change,) = await p.changes()
    assert (change["subject"], change["data"]["change"]["kind"]) == (
        hidden["matrix"], "suppressed"
    )  # fmt: skip


async def test_a_findings_list_read_short_is_a_retry_never_a_resolution(project, dt: FakeDt):
    p = await project(dt_http_attempts="2", dt_backoff_seconds="0.01")
    await sync(p, export(p.uuid, 1))
    await p.events()
    base = export(p.uuid, 1)
    hidden = copy.deepcopy(base["findings"][0])
    hidden["analysis"] = {"state": "NOT_AFFECTED", "isSuppressed": True}
    _listed(p, 187, hidden)  # 12 + 187 + 1 = 200 rows served
    dt.uncounted = 81  # DT counts 281: the third page comes back empty
    dt.page_cap = 100
    with pytest.raises(errors.TransientError, match="read 200 findings of the 281"):
        await sync(p, export(p.uuid, 2, fewer(1)))
    assert await p.events() == []
    assert await open_count(p) == 13


@pytest.mark.parametrize(
    ("paged", "cap"),
    [(True, None), (True, 100), (True, 7), (False, None)],
    ids=["dt5", "dt5-capped-100", "dt5-capped-7", "dt4-whole-list"],
)
async def test_every_counted_row_is_read_whatever_page_size_comes_back(dt: FakeDt, paged, cap):
    project_uuid = str(uuid.uuid4())
    dt.exports[project_uuid] = REAL
    dt.suppressed[project_uuid] = _suppressed(project_uuid, 281 - 13)
    dt.paged, dt.page_cap = paged, cap
    async with _client(dt) as client:
        rows = await client.findings(project_uuid)
    assert len(rows) == len({row["matrix"] for row in rows}) == 281


async def test_a_list_that_repeats_a_row_while_paged_is_a_retry(dt: FakeDt):
    # a list that grows while it is paged shifts a row onto the next page: the rows read reach
    # the count, the findings do not (one was never seen)
    project_uuid = str(uuid.uuid4())
    dt.exports[project_uuid] = REAL
    rows = _suppressed(project_uuid, 281 - 13 - 1)
    rows.insert(150, rows[149])  # 281 rows, 280 findings
    dt.suppressed[project_uuid] = rows
    dt.page_cap = 100
    async with _client(dt) as client:
        with pytest.raises(errors.DtUnavailable, match="280 findings of the 281"):
            await client.findings(project_uuid)


async def test_a_whole_list_cut_by_a_proxy_is_never_taken_for_the_list(dt: FakeDt):
    project_uuid = str(uuid.uuid4())
    dt.exports[project_uuid] = REAL
    dt.suppressed[project_uuid] = _suppressed(project_uuid, 281 - 13)
    dt.paged, dt.page_cap = False, 100  # DT 4.x ignores paging; the proxy cuts every answer
    async with _client(dt) as client:
        with pytest.raises(
            errors.DtUnavailable, match="read 100 findings of the 281 DT counted, in 200 rows"
        ):
            await client.findings(project_uuid)


def _suppressed(project_uuid: str, count: int) -> list[dict[str, Any]]:
    template = orjson.loads(REAL)["findings"][0]
    rows = []
    for _ in range(count):
        row = copy.deepcopy(template)
        row["matrix"] = f"{project_uuid}:{uuid.uuid4()}:{uuid.uuid4()}"
        row["analysis"] = {"state": "FALSE_POSITIVE", "isSuppressed": True}
        rows.append(row)
    return rows


@contextlib.asynccontextmanager
async def _client(dt: FakeDt) -> Any:
    settings = Settings.from_env(
        {"DTRACK_WORKER_DT_URL": dt.url, "DTRACK_WORKER_DT_API_KEY": API_KEY,
         "DTRACK_WORKER_DT_HTTP_ATTEMPTS": "2", "DTRACK_WORKER_DT_BACKOFF_SECONDS": "0.01"}
    )  # fmt: skip
    async with DtClient.open(settings.dt) as client:
        yield client


# -- state baseline and state resync -----------------------------------------------------------


def _store_env(dt: FakeDt, state_url: str, prefix: str | None = None) -> dict[str, str]:
    return _env(prefix or unique_prefix(), dt) | {"DTRACK_WORKER_STATE_URL": state_url}


async def test_baseline_after_a_future_stamp_records_the_export(project, dt: FakeDt, state_url):
    p = await project()
    await sync(p, at(p.uuid, time.time() - 60))
    await p.events()
    frozen(state_url, p.uuid)
    p.dt.exports.as_is(p.uuid, orjson.dumps(at(p.uuid, time.time() - 30, fewer(1))))
    code, out, err = await cli("state", "baseline", p.uuid, env=_store_env(dt, state_url))
    assert code == 0, err
    assert "recorded the findings of 1 project" in out
    assert await open_count(p) == 12  # really recorded
    (report,) = await p.store.projects(p.uuid)
    assert report.last_outcome == "baseline"
    assert report.last_exported_at is not None
    assert report.last_exported_at < FUTURE
    (summary,) = await p.events()  # no events but the summary: a baseline
    assert summary["data"]["baseline"] is True


async def test_baseline_refuses_what_it_cannot_record(project, dt: FakeDt, state_url):
    env = _store_env(dt, state_url)
    p = await project()
    soon = at(p.uuid, time.time() + 1800)  # ahead, but within the tolerance: trusted
    await sync(p, soon)
    await p.events()
    p.dt.exports.as_is(p.uuid, orjson.dumps(at(p.uuid, time.time(), fewer(1))))
    code, out, err = await cli("state", "baseline", p.uuid, env=env)
    assert code == 1
    assert f"{p.uuid}: not recorded" in err
    assert soon["meta"]["timestamp"] in err  # says what stands in the way
    assert await open_count(p) == 13

    hiccup = await project()
    await sync(hiccup, at(hiccup.uuid, time.time() - 60))
    await hiccup.events()
    hiccup.dt.exports.as_is(hiccup.uuid, orjson.dumps(at(hiccup.uuid, time.time(), emptied)))
    code, out, err = await cli("state", "baseline", hiccup.uuid, env=env)
    assert code == 1
    assert "recorded the findings of 0 projects" in out
    assert f"{hiccup.uuid}: not recorded" in err
    assert "13 of 13 open findings" in err
    assert await open_count(hiccup) == 13
    code, _, err = await cli("state", "baseline", hiccup.uuid, "--force", env=env)
    assert code == 0, err
    assert await open_count(hiccup) == 0


@pytest.mark.rabbitmq
async def test_resync_after_a_future_stamp_and_of_an_unknown_project(
    project, dt: FakeDt, state_url
):
    p = await project()
    await sync(p, at(p.uuid, time.time() - 60))
    await p.events()
    frozen(state_url, p.uuid)
    prefix = unique_prefix()
    # the per-project stream the harness syncs (TRACK=line resyncs lines: test_line_resync)
    env = _store_env(dt, state_url, prefix) | {"DTRACK_WORKER_TRACK": "project"}
    async with temporary_topology(prefix) as topo:
        assert (await cli("topology", env=env))[0] == 0
        async with listen(topo.events_exchange.name) as listened:
            code, out, err = await cli("state", "resync", p.uuid, env=env)
            assert code == 0, err
            assert "published 13 opened events for 1 project" in out
            await eventually(lambda: len(listened.messages) == 13)
        unknown = str(uuid.uuid4())
        code, out, err = await cli("state", "resync", unknown, env=env)
        assert code == 1
        assert f"no project {unknown} in the state store" in err
    now = time.time()
    for message in listened.messages:
        change = orjson.loads(message.body)["data"]["change"]
        assert change["resync"] is True
        assert epoch(change["opened_at"]) <= now  # not "opened in 2036"
    assert await p.store.projects(unknown) == []  # refused: nothing made up
    # and the project is no longer frozen: the next export applies
    assert await sync(p, at(p.uuid, time.time(), fewer(1))) == ("done", 1)


async def test_resync_of_a_mistyped_store_path_creates_nothing(dt: FakeDt, tmp_path: Path):
    typo = tmp_path / "var" / "lib" / "dtrack-workr" / "state.sqlite3"
    env = _store_env(dt, f"sqlite:///{typo}")
    code, out, err = await cli("state", "resync", str(uuid.uuid4()), env=env)
    assert code != 0, out + err
    assert f"no state store at {typo}" in err, err
    assert not (tmp_path / "var").exists()  # neither the file nor its directory made


# -- diff -------------------------------------------------------------------------------------


def test_diff_with_new_older_than_old_follows_the_stale_rule(tmp_path: Path):
    document = orjson.loads(REAL)
    document["meta"]["timestamp"] = "2026-11-30T10:00:02Z"
    old = tmp_path / "old.json"
    old.write_bytes(orjson.dumps(document))
    document["meta"]["timestamp"] = "2026-11-30T10:00:01Z"
    document["findings"].pop()
    new = tmp_path / "new.json"
    new.write_bytes(orjson.dumps(document))
    result = run("diff", str(old), str(new), "--by", "project")  # --by line: test_line_diff.py
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"NEW is older than OLD" in result.stderr
    assert b"stale" in result.stderr
    # the right way round: one opened
    assert run("diff", str(new), str(old), "--by", "project").returncode == 0
