"""What the console keeps beyond each finding's latest state (migration 0007): the jobs that
settled with their duration, a finding's transitions with old and new values, a project's DT
tags, and the sync runs, which a restarted console still shows. Against serve in this process,
the real RabbitMQ, a SQLite store and the fake DT (tests/console_env.py)."""

from __future__ import annotations

import asyncio
import re

import orjson
import psycopg
import pytest

from tests import console_env
from tests.console_env import HTML, TOKEN, add_project
from tests.rabbit import eventually
from tests.state_db import fresh_database
from worker.adapters.state import backend
from worker.service import job_history
from worker.service.console.app import create_app

pytestmark = pytest.mark.rabbitmq
console = console_env.console  # the fixture


async def _page(client, path: str) -> str:
    response = await client.get(path, headers=HTML)
    assert response.status == 200, (path, response.status, await response.text())
    return str(await response.text())


async def test_a_restarted_console_still_shows_its_sync_runs(console, aiohttp_client):
    app = await console()
    project = add_project(app.dt, "acme-shop")
    run = await app.sync(project)
    before = await _page(app.client, f"/sync/runs/{run}")
    assert "sync: 1 of 1 projects synced" in before
    # the console restarts (a new application on the same store); the runs are still there
    again = await aiohttp_client(create_app(app.settings, TOKEN))
    response = await again.get(f"/login?token={TOKEN}", allow_redirects=False)
    assert response.status == 303
    shown = await _page(again, f"/sync/runs/{run}")
    assert "sync: 1 of 1 projects synced" in shown
    assert "acme-shop@1.0: queued (job " in shown
    assert "acme-shop@1.0: synced: 13 transitions" in shown
    assert f'href="/sync/runs/{run}"' in await _page(again, "/sync")
    assert f'href="/sync/runs/{run}"' in await _page(again, "/")
    stream = await again.get(f"/sync/runs/{run}/events")
    assert "event: end\nid: " in await stream.text()


async def test_an_interrupted_run_shows_what_its_jobs_did(console, aiohttp_client):
    app = await console()
    project = add_project(app.dt, "acme-shop")
    run = await app.sync(project)
    # as if the console had stopped while it followed the run: its end was never stored
    connection = backend.connector(app.settings.state.url.reveal())()
    connection.cursor().execute("UPDATE sync_runs SET summary = NULL, settled = NULL")
    connection.close()
    again = await aiohttp_client(create_app(app.settings, TOKEN))
    await again.get(f"/login?token={TOKEN}")
    page = await _page(again, f"/sync/runs/{run}")
    assert "interrupted: the console stopped before this run ended" in page
    assert re.search(r"acme-shop@1.0</a></td><td><code>[^<]+</code></td><td>done</td>", page)


async def test_the_timeline_shows_changes_with_old_and_new_values(console):
    app = await console()
    project = add_project(app.dt, "acme-shop")
    await app.sync(project)
    document = orjson.loads(app.dt.exports[project])
    first = document["findings"][0]
    first["vulnerability"] |= {"severity": "HIGH", "cvssV3BaseScore": 8.1}
    document["findings"].pop(1)
    app.dt.exports[project] = orjson.dumps(document)
    await app.sync(project)
    page = await _page(app.client, f"/projects/{project}")
    timeline = page[page.index('id="timeline"') :]
    rows = re.findall(r"<tr>(.*?)</tr>", timeline, re.S)
    assert len(rows) == 16, rows  # the header; 13 opened, then one changed and one resolved
    kinds = sorted(re.findall(r"<td>(changed|resolved)</td>", " ".join(rows[1:3])))
    assert kinds == ["changed", "resolved"], rows[1:3]  # the newest: the second sync's
    changed = next(row for row in rows if "<td>changed</td>" in row)
    assert "severity: medium → high; cvss_v3_score: 6.7 → 8.1" in changed
    resolved = next(row for row in rows if "<td>resolved</td>" in row)
    assert "<td>not_in_export</td>" in resolved
    assert sum("opened" in row for row in rows) == 13
    # paged, newest first: past the second sync's two, the first sync's opened only
    older = await _page(app.client, f"/projects/{project}?changes=2")
    shown = older.split('id="timeline"')[1].split("</table>")[0]
    assert "<td>changed</td>" not in shown
    assert "<td>resolved</td>" not in shown
    assert shown.count("<td>opened</td>") == 13


async def test_the_overview_shows_the_last_jobs_with_their_duration(console):
    app = await console()
    shop, blog = add_project(app.dt, "acme-shop"), add_project(app.dt, "acme-blog")
    run = await app.sync(shop, blog)
    page = await _page(app.client, "/")
    last = page[page.index('id="last"') :]
    for name in ("acme-shop@1.0", "acme-blog@1.0"):
        row = re.search(rf"<tr>(?:(?!</tr>).)*{re.escape(name)}(?:(?!</tr>).)*</tr>", last, re.S)
        assert row, last
        cells = re.findall(r"<td>(.*?)</td>", row.group(0), re.S)
        assert cells[1].startswith("SYNC ("), cells  # the kind, with its run's link
        assert cells[2] == "done", cells
        assert any(re.fullmatch(r"\d+ ms|\d+(\.\d)? s", c) for c in cells), cells
        assert f'href="/sync/runs/{run.split(":")[-1]}"' in row.group(0)
    per_minute = re.search(r"<dt>Jobs per minute \(5 min\)</dt><dd>([\d.]+)</dd>", page)
    assert per_minute, page
    assert per_minute.group(1) == "0.4"  # 2 jobs in 5 minutes


async def test_projects_are_filtered_by_tag(console):
    app = await console()
    shop, blog = add_project(app.dt, "acme-shop"), add_project(app.dt, "acme-blog")
    app.dt.projects[-1]["tags"] = [{"name": "team-b"}, {"name": "pci"}]
    await app.sync(shop, blog)
    listed = await _page(app.client, "/projects")
    assert '<option value="team-b">' in listed
    assert '<option value="pci">' in listed
    assert "acme-shop" in listed
    assert "acme-blog" in listed
    tagged = await _page(app.client, "/projects?tag=team-b")
    assert "acme-blog" in tagged
    assert "acme-shop" not in tagged
    tagged = await _page(app.client, "/projects?tag=team-a&q=acme")
    assert "acme-shop" in tagged
    assert "acme-blog" not in tagged
    assert "acme-" not in (await _page(app.client, "/projects?tag=team"))  # exact, not part


async def test_a_job_reported_settled_is_in_the_job_history_already(console):
    """Whoever is told a job settled (`sync --wait`, a console run) finds it in the job
    history: its row is written before the report, though the store is slow to take it
    (PostgreSQL: a lock another session holds on the table for a moment)."""
    with fresh_database() as url:
        app = await console(state_url=url)
        project = add_project(app.dt, "acme-shop")
        holder = psycopg.connect(url)
        holder.execute("LOCK TABLE job_history IN EXCLUSIVE MODE")
        asyncio.get_running_loop().call_later(1.0, holder.rollback)
        try:
            run = await app.sync(project)  # its stream ends with the job's last report
            with psycopg.connect(url) as reader:
                rows = reader.execute("SELECT outcome FROM job_history").fetchall()
        finally:
            holder.close()
        assert rows == [("done",)]
        assert "sync: 1 of 1 projects synced" in await _page(app.client, f"/sync/runs/{run}")


async def test_a_store_slow_to_take_the_history_row_does_not_hold_the_report_back(console):
    """The row is written before the last report, but a store that holds it for longer than
    job_history.WAIT_SECONDS does not hold the report (and `sync --wait`) back: the row is
    written on its own once the store takes it."""
    with fresh_database() as url:
        app = await console(state_url=url)
        project = add_project(app.dt, "acme-shop")
        holder = psycopg.connect(url)
        holder.execute("LOCK TABLE job_history IN EXCLUSIVE MODE")
        released = asyncio.Event()

        def release() -> None:
            holder.rollback()
            released.set()

        asyncio.get_running_loop().call_later(job_history.WAIT_SECONDS + 6.0, release)
        try:
            await app.sync(project)  # its stream ends with the job's last report
            assert not released.is_set()  # reported while the row still waited
            await released.wait()
            with psycopg.connect(url) as reader:
                await eventually(
                    lambda: reader.execute("SELECT count(*) FROM job_history").fetchone() == (1,)
                )
        finally:
            holder.close()
