"""The lines commands as a user runs them (issue 26 §3, §5): `state migrate` moving a per-project
store to lines without publishing anything, and `status` listing lines and showing one line's
versions, against the real SQLite and PostgreSQL and the fake DT (the store filled by the real
Deltas, as tests/test_line_stream.py does)."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from tests import test_line_stream
from tests.fake_dt import API_KEY, FakeDt
from tests.test_line_diff import NPM, PHP, _document, _later, next_version
from tests.test_line_stream import SOURCE, Series, _kinds, _line
from tests.test_operations import cli

series = test_line_stream.series  # the fixture: the real Deltas on the store and the fake DT

Document = dict[str, Any]


def _env(state_url: str, dt: FakeDt | None, **more: str) -> dict[str, str]:
    env = {
        "DTRACK_WORKER_STATE_URL": state_url,
        "DTRACK_WORKER_SOURCE": SOURCE,
        "DTRACK_WORKER_TRACK": "line",
        "DTRACK_WORKER_LOG_LEVEL": "WARNING",
    }
    if dt is not None:
        env |= {
            "DTRACK_WORKER_DT_URL": dt.url,
            "DTRACK_WORKER_DT_API_KEY": API_KEY,
            "DTRACK_WORKER_DT_BACKOFF_SECONDS": "0.01",
        }
    return env | {f"DTRACK_WORKER_{k.upper()}": v for k, v in more.items()}


def _listings(dt: FakeDt) -> int:
    """How many times DT was asked for a list of projects."""
    return sum(1 for _, path, _ in dt.requests if path == "/api/v1/project")


async def _per_project(s: Series, *documents: Document, latest: bool = True) -> None:
    """The documents synced by a per-project stream (DTRACK_WORKER_TRACK=project), as a store
    of the release before lines holds them; their v1 events taken."""
    for document in documents:
        s.publish(document, latest=latest)
        assert (await s.sync(document))[0] == "done"
        await s.project_events(document["project"]["uuid"])


async def _line_row(s: Series, document: Document) -> tuple[int, int, bytes | None]:
    stored = await s.store.line(_line(document).id)
    return stored.revision, stored.sequence, await s.store.line_state(stored.id, stored.revision)


async def test_migrate_moves_a_per_project_store_to_lines_silently_and_once(
    series, state_url: str, dt: FakeDt, figures
) -> None:
    before = await series(track="project")
    v1 = _document(PHP)
    old = next_version(v1, "0.9", seconds=-3600)
    await _per_project(before, v1)
    await _per_project(before, old, latest=False)  # applied last, but DT's latest is v1
    assert await before.store.lines() == []

    code, out, err = await cli("state", "migrate", "--dry-run", env=_env(state_url, dt))
    assert code == 0, out + err
    assert "would write from develop" in out
    assert await before.store.lines() == []  # a dry run writes nothing

    code, out, err = await cli("state", "migrate", env=_env(state_url, dt))
    assert code == 0, out + err
    figures("state migrate, lines:\n    " + "\n    ".join(out.splitlines()))
    line = _line(v1)
    assert "lines: 1 from DT's versions, without events; 0 built before" in out
    assert (
        f"acme/acme-app (php) (line {line.id}): written from develop ({v1['project']['uuid']}, "
        "DT's current version): 8 line findings, 8 open, from 13 stored findings"
    ) in out
    (report,) = await before.store.lines()
    assert (report.current_project, report.sequence) == (v1["project"]["uuid"], 0)
    assert sum(report.open_counts.values()) == 8
    assert sorted(v.project for v in report.versions) == sorted(
        [v1["project"]["uuid"], old["project"]["uuid"]]
    )
    assert await before.events(line) == []  # nothing in the outbox for the line
    row = await _line_row(before, v1)

    asked = _listings(dt)
    code, out, err = await cli("state", "migrate", env=_env(state_url, dt))
    assert code == 0, out + err
    assert "lines: 0 from DT's versions, without events; 1 built before" in out
    assert _listings(dt) == asked  # nothing more asked of DT
    assert await _line_row(before, v1) == row  # twice: nothing changed

    after = await series()  # the line stream, on the migrated store
    again = copy.deepcopy(v1)  # the same findings exported again: the line stands
    again["meta"]["timestamp"] = _later(v1["meta"]["timestamp"], 60)
    after.publish(again)
    await after.sync(again)
    assert await after.events(line) == []
    v2 = next_version(v1, "2", bump={"phpseclib": "3.0.50"})  # the next version: its real changes
    after.publish(v2)
    await after.sync(v2)
    events = await after.events(line)
    assert _kinds(events) == [
        ("changed", "pkg:composer/phpseclib/phpseclib", "CVE-2026-32935"),
        ("changed", "pkg:composer/phpseclib/phpseclib", "CVE-2026-40194"),
    ]
    assert [int(e["sequence"]) for e in events] == [1, 2]


async def test_migrate_without_dt_starts_each_line_from_the_version_applied_last(
    series, state_url: str, dt: FakeDt
) -> None:
    before = await series(track="project")
    v1 = _document(NPM)
    v2 = next_version(v1, "2")
    await _per_project(before, v2, v1)  # 1 applied last, though 2 is DT's latest
    code, out, err = await cli("state", "migrate", env=_env(state_url, None))
    assert code == 0, out + err
    assert "lines: 1 from the store's projects only (DT not asked), without events;" in out
    assert f"({v1['project']['uuid']}, the version applied last)" in out
    (report,) = await before.store.lines()
    assert report.current_project == v1["project"]["uuid"]
    # the line's next job (2, DT's latest) publishes only what differs between the versions
    after = await series()
    again = copy.deepcopy(v2)
    again["meta"]["timestamp"] = _later(v2["meta"]["timestamp"], 7200)
    after.publish(again)
    await after.sync(again)
    assert await after.events(_line(v1)) == []  # the same findings, on new DT rows


async def test_migrate_by_tag_without_dt_says_the_jobs_build_the_lines(
    series, state_url: str
) -> None:
    before = await series(track="project")
    await _per_project(before, _document(PHP))
    code, out, err = await cli(
        "state", "migrate", env=_env(state_url, None, line_by="name+tag:track:")
    )
    assert code == 0, out + err
    assert "the track from project tags, which the store does not keep" in err
    assert "each line is built by its first job instead" in err
    assert await before.store.lines() == []


async def test_migrate_stops_on_a_dt_failure_writing_no_line(
    series, state_url: str, dt: FakeDt
) -> None:
    before = await series(track="project")
    await _per_project(before, _document(PHP))
    dt.portfolio_forbidden = True
    code, out, err = await cli("state", "migrate", env=_env(state_url, dt))
    assert code == 1, out + err
    assert "403" in err
    assert API_KEY not in out + err
    assert await before.store.lines() == []
    events = orjson.dumps(await before.project_events(_document(PHP)["project"]["uuid"]))
    assert events == b"[]"


async def test_status_lists_lines_and_shows_one_lines_versions(
    series, state_url: str, dt: FakeDt, figures
) -> None:
    s = await series(line_by=r"name+version:^(\d+)\.")
    one = copy.deepcopy(_document(PHP))
    one["project"]["version"] = "1.4"
    older = next_version(one, "1.3", seconds=-3600)
    two = next_version(one, "2.0", bump={"phpseclib": "3.0.50"})
    s.publish(older, latest=False)
    s.publish(one, latest=False)
    s.publish(two, latest=True)
    for document in (older, one, two):
        await s.sync(document)
    env = _env(state_url, dt, line_by=r"name+version:^(\d+)\.")
    name = one["project"]["name"]
    track_1, track_2 = _line(one, "1"), _line(one, "2")

    code, out, err = await cli("status", env=env)
    assert code == 0, out + err
    figures("status (lines):\n    " + "\n    ".join(out.splitlines()))
    lines = out.splitlines()
    assert lines[0] == "2 lines"
    assert f"{name}#1  line {track_1.id}" in lines
    assert f"{name}#2  line {track_2.id}" in lines
    assert f"  current 1.4 ({one['project']['uuid']}); 2 versions seen; last change " in out
    assert "3 projects in the store: `dtrack-worker status --projects`" in out

    code, out, err = await cli("status", f"{name}#1", env=env)
    assert code == 0, out + err
    figures(f"status '{name}#1':\n    " + "\n    ".join(out.splitlines()))
    assert out.startswith(f"{name}#1  line {track_1.id}\n")
    assert "  2 versions:" in out
    assert f"  * 1.4  {one['project']['uuid']}  isLatest no, active yes, lastBomImport 20" in out
    assert f"    1.3  {older['project']['uuid']}  isLatest no, active yes" in out
    assert "last applied never" not in out
    code, out, _ = await cli("status", track_2.id, "--json", env=env)
    (document,) = orjson.loads(out)
    assert (document["label"], document["current_version"]) == (f"{name}#2", "2.0")
    assert [v["is_latest"] for v in document["versions"]] == [True]
    assert sum(document["open_counts"].values()) == 8

    code, out, err = await cli("status", name, env=env)  # two tracks: say which
    assert (code, out) == (1, ""), out + err
    assert f"{name} names 2 lines; say which" in err
    assert f"{name}#1 ({track_1.id})" in err
    code, out, err = await cli("status", "acme-nothing", env=env)
    assert (code, out) == (1, ""), out + err
    assert "acme-nothing: not found in the state store" in err

    # projects: as before (a project's own view by name@version, or --projects)
    code, out, err = await cli("status", f"{name}@1.3", env=env)
    assert code == 0, out + err
    assert out.startswith("1 project\n")
    code, out, err = await cli("status", "--projects", env=env)
    assert out.startswith("3 projects\n"), out + err
    code, out, err = await cli("status", name, env=env | {"DTRACK_WORKER_TRACK": "project"})
    assert out.startswith("3 projects\n"), out + err


async def test_migrate_keeps_a_finding_suppressed_in_dt_suppressed(
    series, state_url: str, dt: FakeDt
) -> None:
    """A finding the per-project store holds suppressed (it left the export, DT lists it
    suppressed) is a suppressed line finding: the line's next job reopens nothing."""
    before = await series(track="project")
    v1 = _document(NPM)
    v1["findings"] = list({r["matrix"]: r for r in reversed(v1["findings"])}.values())[::-1]
    await _per_project(before, v1)
    hidden = copy.deepcopy(v1)
    hidden["meta"]["timestamp"] = _later(v1["meta"]["timestamp"], 60)
    hidden["findings"] = [r for r in v1["findings"] if r["component"]["name"] != "next-intl"]
    dt.suppressed[v1["project"]["uuid"]] = test_line_stream._suppress(v1["findings"], "next-intl")
    await before.sync(hidden)
    kinds = {e["data"]["change"]["kind"] for e in await before.project_events(v1["project"]["uuid"])
             if "change" in e["data"]}  # fmt: skip
    assert kinds == {"suppressed"}

    code, out, err = await cli("state", "migrate", env=_env(state_url, dt))
    assert code == 0, out + err
    assert "12 line findings, 11 open, from 21 stored findings" in out, out
    after = await series()
    again = copy.deepcopy(hidden)
    again["meta"]["timestamp"] = _later(hidden["meta"]["timestamp"], 60)
    bumped = again["findings"][0]["component"]["name"]
    for row in again["findings"]:  # a real change, so the job compares (no fast path)
        if row["component"]["name"] == bumped:
            row["vulnerability"]["severity"] = "LOW"
    await after.sync(again)
    events = await after.events(_line(v1))
    assert events
    assert {e["data"]["change"]["kind"] for e in events} == {"changed"}  # nothing reopened
    assert {e["data"]["component"]["name"] for e in events} == {bumped}
