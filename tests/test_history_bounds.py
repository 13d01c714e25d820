"""The console's history tables stay bounded (migration 0007), on SQLite and PostgreSQL: the job
history keeps its latest rows and none past the retention; a project's finding history loses
what was recorded before the retention when the project is written again; tags are rewritten
only when they change; the console keeps its latest sync runs, with their lines."""

from __future__ import annotations

import time
from typing import Any

import pytest

from worker.adapters.state import (
    backend,
    console_activity,
    console_queries,
    console_runs,
    history_queries,
)
from worker.adapters.state.console_runs import StoredRun
from worker.adapters.state.history_queries import JobEntry
from worker.adapters.state.store import Apply, Store
from worker.core import outbox_rounds
from worker.core.config import Secret, StateSettings
from worker.core.transitions import Transition

PROJECT = "6f1c2b1e-0d7a-4c55-9b7e-2f3d4c5b6a70"


def _settings(url: str, days: int = 90) -> StateSettings:
    return StateSettings(
        url=Secret(url), emit="delta", baseline=False, epss_delta=None, history_days=days
    )


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    connection = backend.connector(url)()
    try:
        cursor = connection.cursor()
        cursor.execute(query)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        connection.close()


def _job(n: int, finished_at: float) -> JobEntry:
    return JobEntry(
        job_id=f"job-{n}", project=PROJECT, name=None, kind="SYNC", run_id=None, attempt=1,
        outcome="done", reason=None, error=None, started_at=finished_at - 0.5,
        finished_at=finished_at, events=None, transitions=n,
    )  # fmt: skip


def _opened(key: str, at: float) -> Transition:
    return Transition(
        kind="opened", key=key, severity="high", parts={}, previous_status=None, changes=(),
        first_seen=at, opened_at=at, resolved_at=None,
    )  # fmt: skip


def _apply(transitions: list[Transition], tags: list[str] | None = None) -> Apply:
    return Apply(
        project=PROJECT, name="acme", version="1", expected_revision=None, writes=(),
        events=lambda first: outbox_rounds.framed([]), exported_at=None, outcome="done",
        now=time.time(), transitions=transitions, tags=tags,
    )  # fmt: skip


async def test_the_job_history_keeps_the_latest_rows_within_the_retention(
    state_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(history_queries, "MAX_JOBS", 5)
    now = time.time()
    async with Store.open(_settings(state_url, days=1)) as store:
        for n in range(8):
            await store.record_job(_job(n, now - 60 + n))
        await store.record_job(_job(99, now - 2 * 86400))  # settled before the retention
        activity = await store.read(console_activity.activity, now, 50)
    assert [job.job_id for job in activity.recent] == [f"job-{n}" for n in (7, 6, 5, 4, 3)]
    assert activity.recent[0].seconds == pytest.approx(0.5)
    assert activity.settled_recently == 5
    assert _rows(state_url, "SELECT COUNT(*) FROM job_history") == [(5,)]


async def test_a_projects_finding_history_loses_what_is_past_the_retention(state_url: str):
    async with Store.open(_settings(state_url, days=1)) as store:
        await store.apply(_apply([_opened("a", 1.0), _opened("b", 2.0)]))
        # recorded three days ago, as far as the store can tell
        connection = backend.connector(state_url)()
        connection.cursor().execute("UPDATE finding_history SET recorded_at = recorded_at - 259200")
        connection.close()
        await store.apply(_apply([_opened("c", 3.0)]))
        timeline = await store.read(console_queries.timeline, PROJECT, 0, 50)
    assert timeline.recorded
    assert [change.finding_key for change in timeline.page.rows] == ["c"]


async def test_a_first_syncs_many_transitions_are_all_recorded(state_url: str):
    """Past history_queries.COPY_FROM rows PostgreSQL takes them by COPY."""
    many = [_opened(f"k{n:04d}", float(n)) for n in range(history_queries.COPY_FROM + 100)]
    async with Store.open(_settings(state_url)) as store:
        await store.apply(_apply(many))
        page = await store.read(console_queries.timeline, PROJECT, 0, 10)
    assert _rows(state_url, "SELECT COUNT(*), MIN(at), MAX(at) FROM finding_history") == [
        (len(many), 0.0, float(len(many) - 1))
    ]
    assert page.page.more
    assert {change.what for change in page.page.rows} == {"opened"}


@pytest.mark.parametrize("common", [1, 1000], ids=["walk by name", "tag first"])
async def test_tags_are_kept_and_filtered_exactly(
    state_url: str, common: int, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(console_queries, "COMMON_TAG", common)  # the two ways to a tag's page
    async with Store.open(_settings(state_url)) as store:
        await store.apply(_apply([], tags=["team-a", "pci"]))
        await store.apply(_apply([], tags=None))  # not known this time: kept
        tagged = await store.read(console_queries.projects, None, 0, 50, "pci")
        assert [row.tags for row in tagged.rows] == [["pci", "team-a"]]
        assert await store.read(console_queries.tags) == ["pci", "team-a"]
        await store.apply(_apply([], tags=["team-a"]))
        assert (await store.read(console_queries.projects, None, 0, 50, "pci")).rows == []
        assert (await store.read(console_queries.projects, None, 0, 50, "team")).rows == []
        assert await store.read(console_queries.tags) == ["team-a"]


async def test_the_console_keeps_its_latest_sync_runs(
    state_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(console_runs, "MAX_RUNS", 3)
    async with Store.open(_settings(state_url)) as store:
        for n in range(5):
            run = StoredRun(f"sync:run-{n}", 1000.0 + n, {"j": (PROJECT, "acme", None)}, None,
                            None, [])  # fmt: skip
            await store.write(console_runs.save_run, run)
            await store.write(console_runs.add_lines, run.run_id, 0, [f"line {n}", "again"])
        await store.write(console_runs.add_lines, "sync:run-4", 1, ["again", "third"])
        await store.write(console_runs.finish_run, "sync:run-4", "sync: 1 of 1", {"j": "done"})
        latest = await store.write(console_runs.latest_runs, 10)
        found = await store.read(console_runs.load_run, "sync:run-4")
    assert [run.run_id for run in latest] == ["sync:run-4", "sync:run-3", "sync:run-2"]
    assert found is not None
    assert found.lines == ["line 4", "again", "third"]  # a line stored twice is kept once
    assert found.settled == {"j": "done"}
    assert found.targets == {"j": (PROJECT, "acme", None)}
    assert _rows(state_url, "SELECT COUNT(DISTINCT run) FROM sync_run_lines") == [(3,)]
