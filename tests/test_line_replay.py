"""Issue 26 §6: "replaying the line events onto an empty copy gives the store's open set for
every line", on the real stream (REVIEW-1 L5). Version series of the real exports built the
way DT makes them (new project and component UUIDs, bumps, fixes, new vulnerabilities, NVD's
CVE rows joining their GHSA's, suppressions, triage DT lost, a version that is not current,
the current version deleted, then every version) are synced through the real Deltas, SQLite
and PostgreSQL, and the fake DT. After every export the line's v2 events are read as the relay
publishes them, the outbox rows decoded with ``outbox_rounds``, replayed from the start onto
an empty map by the consumer recipe (docs/state.md: de-duplicate on ``id``, order by
``sequence``, a change event for an unknown finding is an upsert) and compared with the line's
stored open set and open counts."""

from __future__ import annotations

import copy
import random
import uuid
from typing import Any

import orjson
import pytest

from tests.test_line_diff import NPM, PHP, STATES, _document, _later, next_version
from tests.test_line_stream import Document, Series, _line, _suppress
from tests.test_line_stream import series as series
from worker.adapters.state.backend import Dialect
from worker.core import line_state, outbox_rounds
from worker.core.jobs import Job
from worker.core.lines import Line

CLOSING = {"resolved"}
SUPPRESSING = {"suppressed"}


def _rows(cursor: Any, dialect: Dialect, line_id: str) -> list[tuple[int, int | None, bytes]]:
    cursor.execute(
        dialect.sql("SELECT sequence, events, body FROM outbox WHERE project = %s ORDER BY id"),
        (line_id,),
    )
    return [(sequence, events, bytes(body)) for sequence, events, body in cursor.fetchall()]


async def _published(s: Series, line: Line) -> list[dict[str, Any]]:
    """Every event of the line in the outbox, as the relay publishes them: rows decoded."""
    found: list[dict[str, Any]] = []
    for sequence, count, body in await s.store.read(_rows, line.id):
        bodies = [body] if count is None else [e.body for e in outbox_rounds.decode(body, count)]
        for n, event in enumerate(orjson.loads(b) for b in bodies):
            assert int(event["sequence"]) == sequence + n  # the row numbers its round's events
            found.append(event)
    for event in found:
        assert s.contracts.line_change.problems(event) == (), event
    return found


def replayed(events: list[dict[str, Any]]) -> dict[str, str]:
    """A consumer's copy, built from nothing: subject -> open or suppressed."""
    unique = {e["id"]: e for e in events}.values()
    copy_: dict[str, str] = {}
    for event in sorted(unique, key=lambda e: int(e["sequence"])):
        change, subject = event["data"]["change"], event["subject"]
        kind = change["kind"]
        if kind in ("opened", "reopened"):
            copy_[subject] = "open"
        elif kind in SUPPRESSING:
            copy_[subject] = "suppressed"
        elif kind in CLOSING:
            copy_.pop(subject, None)
        else:  # changed: the status stays; unknown, an upsert with the status it had
            copy_.setdefault(subject, change["previous_status"])
    return copy_


async def _check(s: Series, line: Line) -> set[str]:
    """The replayed open set is the store's; returns it."""
    events = await _published(s, line)
    assert [int(e["sequence"]) for e in events] == list(range(1, len(events) + 1))
    stored = await s.store.line(line.id)
    state = line_state.unpack(line, await s.store.line_state(line.id, stored.revision))
    held = replayed(events)
    open_ids = {f.id for f in state.open}
    assert {i for i, status in held.items() if status == "open"} == open_ids
    assert {i for i, st in held.items() if st == "suppressed"} == {
        f.id for f in state.findings.values() if f.status == "suppressed"
    }
    (report,) = [r for r in await s.store.lines() if r.id == line.id]
    assert sum(report.open_counts.values()) == len(open_ids)
    return open_ids


def _again(document: Document, seconds: int = 60) -> Document:
    """The same version exported again, later."""
    out = copy.deepcopy(document)
    out["meta"]["timestamp"] = _later(document["meta"]["timestamp"], seconds)
    return out


async def _gone(s: Series, document: Document) -> Any:
    project = document["project"]["uuid"]
    s.dt.projects = [p for p in s.dt.projects if p["uuid"] != project]
    s.dt.exports.pop(project, None)
    job = Job(
        job_id=str(uuid.uuid4()),
        project_uuid=project,
        project_name=document["project"]["name"],
        trigger="TEST",
        notification_id="gone",
        accepted_at="2026-11-30T10:00:00.000000Z",
        correlation_id="test",
    )
    return await s.deltas.gone(job, {"job_id": job.job_id})


async def test_replaying_a_scripted_series_gives_the_stored_open_set(series) -> None:
    s = await series()
    full = _document(PHP)
    line = _line(full)
    ghsa_only = copy.deepcopy(full)  # DT had mirrored GitHub's advisories only
    ghsa_only["findings"] = [r for r in full["findings"] if r["vulnerability"]["source"] != "NVD"]
    steps: list[tuple[str, Document]] = []

    async def apply(what: str, document: Document, *, latest: bool = True) -> set[str]:
        s.publish(document, latest=latest)
        await s.sync(document)
        steps.append((what, document))
        return await _check(s, line)

    assert len(await apply("first, GHSA rows only", ghsa_only)) == 8
    v2 = next_version(full, "2", bump={"phpseclib": "3.0.50"})  # NVD's CVE rows join, a bump
    await apply("bump, CVE rows", v2)
    v3 = next_version(full, "3", bump={"phpseclib": "3.0.50"}, seconds=7200,
                      keep=lambda r: r["component"]["name"] != "composer")  # fmt: skip
    new = copy.deepcopy(v3["findings"][0])
    new["vulnerability"] |= {"uuid": str(uuid.uuid4()), "vulnId": "CVE-2026-55555",
                             "source": "NVD", "aliases": []}  # fmt: skip
    new["matrix"] = new["matrix"].rsplit(":", 1)[0] + ":" + new["vulnerability"]["uuid"]
    v3["findings"].append(new)
    assert len(await apply("a fix, a new vulnerability", v3)) == 7
    hidden = _again(v3)  # psysh suppressed in DT: left out of the export, listed suppressed
    hidden["findings"] = [r for r in v3["findings"] if r["component"]["name"] != "psysh"]
    s.dt.suppressed[v3["project"]["uuid"]] = _suppress(v3["findings"], "psysh")
    assert len(await apply("a suppression", hidden)) == 5
    v4 = next_version(v3, "4", seconds=3600)  # new rows: DT lost the analysis; carried
    assert len(await apply("triage lost in DT", v4)) == 5
    rescored = _again(v4)
    rescored["findings"][1]["vulnerability"]["severity"] = "CRITICAL"
    await apply("a severity changed", rescored)
    written_back = _again(rescored)  # the analysis written back to DT on the new rows
    written_back["findings"] = [
        r for r in rescored["findings"] if r["component"]["name"] != "psysh"
    ]
    s.dt.suppressed[v4["project"]["uuid"]] = _suppress(rescored["findings"], "psysh")
    assert len(await apply("the analysis written back", written_back)) == 5
    s.dt.suppressed.pop(v4["project"]["uuid"])
    assert len(await apply("un-suppressed in DT", _again(rescored, 120))) == 7
    old = next_version(full, "0.9", bump={"phpseclib": "3.0.10"}, seconds=60)
    await apply("a version that is not current", old, latest=False)
    v5 = next_version(v4, "5", seconds=3600, keep=lambda r: r["component"]["name"] != "phpunit")
    assert len(await apply("a version without phpunit", v5)) == 5
    gone = await _gone(s, v5)  # the current version deleted: the line follows 4 by its export
    (job,) = gone.follow
    assert job.project_uuid == v4["project"]["uuid"]
    assert len(await _check(s, line)) == 5  # nothing moves without an export
    back = _again(rescored, 7200)  # the queued job's export of 4
    s.publish(back)
    await s.sync(back)
    assert len(await _check(s, line)) == 7
    for _, document in steps:  # every version deleted
        await _gone(s, document)
    assert await _check(s, line) == set()
    kinds = {e["data"]["change"]["kind"] for e in await _published(s, line)}
    assert kinds == {"opened", "changed", "resolved", "suppressed", "reopened"}


@pytest.mark.parametrize(("name", "seed"), [(STATES, 1), (STATES, 2), (NPM, 3)])
async def test_replaying_a_random_series_gives_the_stored_open_set(
    series, name: str, seed: int
) -> None:
    s = await series()
    first = _document(name)
    # one row per matrix: DT's findings list has one; the export repeats a row per attribution
    first["findings"] = list({r["matrix"]: r for r in first["findings"][::-1]}.values())[::-1]
    line = _line(first)
    rng = random.Random(seed)
    names = sorted({r["component"]["name"] for r in first["findings"]})
    s.publish(first)
    await s.sync(first)
    await _check(s, line)
    current = first
    for n in range(5):
        dropped = set(rng.sample(names, rng.randint(0, len(names) // 4)))
        bumped = {c: f"{n + 9}.0.{rng.randint(0, 3)}" for c in rng.sample(names, 2)}
        gone = frozenset(dropped)

        def kept(row: dict[str, Any], gone: frozenset[str] = gone) -> bool:
            return row["component"]["name"] not in gone

        later = next_version(first, f"{n + 2}", bump=bumped, seconds=3600 * (n + 1), keep=kept)
        rng.shuffle(later["findings"])
        s.publish(later)
        await s.sync(later)
        await _check(s, line)
        hide = set(rng.sample(names, rng.randint(0, 3)))  # suppressed in DT meanwhile
        again = _again(later)
        again["findings"] = [r for r in later["findings"] if r["component"]["name"] not in hide]
        s.dt.suppressed[later["project"]["uuid"]] = [
            row for c in sorted(hide) for row in _suppress(later["findings"], c)
        ]
        await s.sync(again)
        await _check(s, line)
        current = later
    (follow,) = (await _gone(s, current)).follow  # the current version deleted: a sync queued
    assert await _check(s, line)  # nothing moves without an export
    s.dt.projects.clear()  # DT deletes every version before that job runs: it finds its gone
    await _gone(s, {"project": {"uuid": follow.project_uuid, "name": follow.project_name}})
    assert await _check(s, line) == set()
