"""The operators' console over HTTP (aiohttp's client): login, CSRF, read-only, secrets never
shown, DT's text escaped, syncs followed by Server-Sent Events, parked jobs replayed and purged.
Against serve in this process, the real RabbitMQ, a SQLite store and the fake DT."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import uuid
from typing import Any

import psycopg
import pytest

from tests import console_env
from tests.console_env import HTML, TOKEN, XSS, add_project, park
from tests.fake_dt import API_KEY, Fault
from tests.rabbit import depth, eventually
from tests.state_db import fresh_database
from worker.adapters import dthttp
from worker.adapters.state.backend import Dialect
from worker.adapters.state.store import Store
from worker.service import progress, sync
from worker.service.console import runs
from worker.service.console.app import create_app

pytestmark = pytest.mark.rabbitmq
console = console_env.console  # the fixture

PAGES = ("/", "/projects", "/lines", "/sync", "/parked")


async def test_every_page_asks_for_the_token_first(console):
    app = await console(login=False)
    for path in (*PAGES, "/projects/0b8f4a52-3c1e-4d8e-9d55-2a7f6c1e9b30", "/parked/x"):
        response = await app.client.get(path, headers=HTML)
        assert response.status == 401, path
        page = await response.text()
        assert 'action="/login"' in page, path
        assert "Log out" not in page
        response = await app.client.get(path)  # not a browser: JSON
        assert response.status == 401
        assert "log in first" in (await response.json())["error"]
    for path in ("/sync", "/parked/replay", "/parked/purge", "/logout"):
        response = await app.post(path, {"csrf": "anything"})
        assert response.status == 401, path
    response = await app.client.get("/login?token=not-the-token", headers=HTML)
    assert response.status == 401
    assert "not this console" in await response.text()
    response = await app.client.get("/static/console.css")
    assert response.status == 200  # the login page's style needs no session


async def test_the_login_url_opens_a_strict_http_only_session(console):
    app = await console(login=False)
    response = await app.client.get(f"/login?token={TOKEN}", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert TOKEN not in cookie
    page = await app.client.get("/", headers=HTML)
    assert page.status == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in await page.text()  # no inline script anywhere


async def test_a_post_without_the_csrf_token_is_refused(console):
    app = await console()
    project = add_project(app.dt, "acme-shop")
    for form in ({"project": project}, {"project": project, "csrf": "forged"}):
        response = await app.post("/sync", form)
        assert response.status == 403
        assert "CSRF" in (await response.json())["error"]
        response = await app.post("/sync", form, headers=HTML)
        assert response.status == 403
        assert "CSRF" in await response.text()
    assert app.dt.fetches_of(project) == []
    assert await depth(app.topology.jobs_queue.name) == 0


async def test_read_only_hides_and_refuses_sync_replay_and_purge(console):
    app = await console(readonly=True)
    project = add_project(app.dt, "acme-shop")
    job = await park(app.topology, project, "invalid_export", "bad")
    for path, form in (
        ("/sync", {"project": project}),
        ("/sync", {"line": str(uuid.uuid4())}),
        ("/parked/replay", {"id": job}),
        ("/parked/purge", {"reason": ""}),
        ("/parked/purge", {"confirm": "yes", "id": job}),
    ):
        response = await app.post(path, {"csrf": app.csrf, **form})
        assert response.status == 403, path
        assert "DTRACK_WORKER_CONSOLE_READONLY=true" in (await response.json())["error"]
        response = await app.post(path, {"csrf": app.csrf, **form}, headers=HTML)
        assert response.status == 403
        assert "read-only" in await response.text()
    for path in PAGES:
        page = await (await app.client.get(path, headers=HTML)).text()
        assert "read-only" in page
        assert 'method="post" action="/sync"' not in page, path
        assert "Replay" not in page, path
        assert "Purge" not in page, path
    assert await depth(app.topology.parked_queue.name) == 1
    assert app.dt.fetches_of(project) == []


async def test_a_sync_is_followed_to_the_end_by_server_sent_events(console):
    app = await console()
    first, second = add_project(app.dt, "acme-shop"), add_project(app.dt, "acme-blog")
    form = [("csrf", app.csrf), ("project", first), ("project", second)]
    response = await app.post("/sync", form)
    assert response.status == 303
    run = response.headers["Location"].removeprefix("/sync/runs/")
    stream = await app.events(run)
    messages = re.findall(r"^data: (.*)$", stream, re.MULTILINE)
    assert messages[-1] == "sync: 2 of 2 projects synced"
    for name, project in (("acme-shop@1.0", first), ("acme-blog@1.0", second)):
        assert any(m.startswith(f"{name}: queued (job ") for m in messages)
        size = len(app.dt.exports[project]) / 1024
        steps = [m.removeprefix(f"{name}: ") for m in messages if m.startswith(f"{name}: ")]
        assert steps[1:] == [
            "a worker took the job (attempt 1)",
            f"fetched the export ({size:.1f} KiB)",
            "validating the export and comparing it with the stored state",
            "applied: 13 transitions committed, 14 events in the outbox for the relay to publish",
            "synced: 13 transitions",
            "published: the relay sent its 14 events",
        ], messages
    assert re.findall(r"^id: (\d+)$", stream, re.MULTILINE) == [str(n) for n in range(15)]
    # a browser that reconnects resumes after the last event it saw
    resumed = await app.client.get(f"/sync/runs/{run}/events", headers={"Last-Event-ID": "12"})
    assert re.findall(r"^id: (\d+)$", await resumed.text(), re.MULTILINE) == ["13", "14"]
    page = await (await app.client.get(f"/sync/runs/{run}", headers=HTML)).text()
    assert "sync: 2 of 2 projects synced" in page
    assert 'data-done="true"' in page
    listed = await (await app.client.get("/projects", headers=HTML)).text()
    assert "acme-shop" in listed
    assert "acme-blog" in listed
    shown = await (await app.client.get(f"/projects/{first}", headers=HTML)).text()
    assert "opened" in shown  # the timeline


async def test_dt_text_is_escaped_everywhere(console):
    app = await console(track="line")
    project = add_project(app.dt, XSS)
    app.dt.projects[-1]["tags"] = [{"name": XSS}]  # DT's tags are its text too
    run = await app.sync(project)
    pages = [
        "/",
        "/projects",
        f"/projects?tag={XSS}",
        f"/projects/{project}",
        "/sync",
        f"/sync/runs/{run}",
        f"/projects?q={XSS}",
        "/lines",
        f"/lines?tag={XSS}",
        f"/lines?q={XSS}",
    ]
    lines = await (await app.client.get("/lines", headers=HTML)).text()
    pages.append(LINK.findall(lines)[0])
    for path in pages:
        page = await (await app.client.get(path, headers=HTML)).text()
        assert XSS not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path


async def test_no_page_shows_a_secret(console):
    password, key = "dt-proxy-password-x1", API_KEY
    app = await console()
    project = add_project(app.dt, "acme-shop")
    await app.sync(project)
    # a parked job whose error names the DT URL with its password, and the key
    await park(
        app.topology,
        project,
        "dt_rejected",
        f"DT at https://ops:{password}@dt.example.org/api answered 401 for key {key}",
    )
    secrets = (password, key, TOKEN, "guest:guest")
    pages = [*PAGES, f"/projects/{project}", "/parked?reason=dt_rejected"]
    parked = await (await app.client.get("/parked", headers=HTML)).text()
    pages += re.findall(r'href="(/parked/[^"?]+)"', parked)
    assert len(pages) == 8
    for path in pages:
        response = await app.client.get(path, headers=HTML)
        assert response.status == 200, path
        page = await response.text()
        for secret in secrets:
            assert secret not in page, (path, secret)
    shown = await (await app.client.get(pages[-1], headers=HTML)).text()
    assert "https://ops:***@dt.example.org/api" in shown
    assert "for key ***" in shown


async def test_parked_jobs_are_filtered_replayed_and_purged(console):
    app = await console()
    one, two = add_project(app.dt, "acme-shop"), add_project(app.dt, "acme-blog")
    first = await park(app.topology, one, "invalid_export", "export: findings is not a list")
    await park(app.topology, two, "dt_rejected", "DT answered 403", n=1)
    await park(app.topology, two, "dt_rejected", "DT answered 403", n=2)

    async def count(query: str) -> str:
        page = await (await app.client.get(f"/parked?{query}", headers=HTML)).text()
        found = re.search(r'<p id="count">(\d+ of \d+)', page)
        assert found, page
        return found.group(1)

    assert await count("") == "3 of 3"
    assert await count("reason=dt_rejected") == "2 of 3"
    assert await count(f"project={one}") == "1 of 3"
    assert await count("project=ACME") == "0 of 3"  # parked jobs carry their own names
    assert await count("project=parked-1") == "1 of 3"
    assert await count("since=1h") == "3 of 3"
    detail = await (await app.client.get(f"/parked/{first}", headers=HTML)).text()
    assert "invalid_export" in detail
    assert "findings is not a list" in detail
    assert f"&#34;project_uuid&#34;: &#34;{one}&#34;" in detail  # the message, indented JSON
    # replay one: back to the jobs queue, and the worker syncs it
    response = await app.post("/parked/replay", {"csrf": app.csrf, "id": first})
    assert response.status == 303
    assert await count("") == "2 of 2"
    await eventually(lambda: len(app.dt.fetches_of(one)) == 1)
    # purge what matches, after a page that says how many
    response = await app.post("/parked/purge", {"csrf": app.csrf, "reason": "dt_rejected"})
    assert response.status == 200
    confirm = await response.text()
    assert "Purge 2 parked job(s)?" in confirm
    ids = re.findall(r'name="id" value="([^"]+)"', confirm)
    await park(app.topology, two, "dt_rejected", "parked after the confirmation page", n=3)
    response = await app.post(
        "/parked/purge", [("csrf", app.csrf), ("confirm", "yes"), *(("id", i) for i in ids)]
    )
    assert response.status == 303
    assert response.headers["Location"] == "/parked?done=deleted+2"
    assert await count("") == "1 of 1"  # the one parked since is still there
    response = await app.post("/parked/replay", {"csrf": app.csrf, "id": first})
    assert response.status == 404
    assert f"not parked: {first}" in (await response.json())["error"]


async def test_the_overview_shows_health_queues_and_the_last_jobs(console):
    app = await console()
    project = add_project(app.dt, "acme-shop")
    await app.sync(project)
    await park(app.topology, project, "invalid_export", "bad")

    async def checked() -> str:
        return str(await (await app.client.get("/", headers=HTML)).text())

    page = await checked()
    for _ in range(100):  # the checks run in the background from the start
        if "Checking" not in page:
            break
        await asyncio.sleep(0.1)
        page = await checked()
    assert "Checking" not in page, "the health checks did not finish within 10 s"
    assert "<td>rabbitmq</td><td>ok</td>" in page
    assert "<td>api key</td><td>ok</td>" in page
    assert "<td>state</td><td>ok</td>" in page
    assert re.search(r"<dt>Parked jobs</dt><dd><a href=\"/parked\">1</a>", page), page
    assert '<td>jobs.parked</td><td class="num">1</td>' in page
    assert re.search(r"acme-shop@1.0</a></td><td>SYNC \(<a [^>]+>run</a>\)</td><td>done</td>", page)


async def test_the_project_pages_read_either_store(console, state_url: str):
    app = await console(state_url=state_url)
    shop, blog = add_project(app.dt, "acme-shop"), add_project(app.dt, "acme-blog")
    await app.sync(shop, blog)

    async def page(path: str) -> str:
        response = await app.client.get(path, headers=HTML)
        assert response.status == 200, path
        return str(await response.text())

    listed = await page("/projects")
    assert listed.index("acme-blog") < listed.index("acme-shop")  # by name
    assert re.search(r"<td>done</td>\s*<td class=\"num\">0</td><td class=\"num\">9</td>", listed)
    assert "acme-blog" not in await page("/projects?q=SHOP")
    assert "acme-shop" in await page(f"/projects?q={shop[:8]}")
    assert "acme-shop" not in await page("/projects?q=acme%25")  # % is a character, not a pattern
    shown = await page(f"/projects/{shop}?status=all")
    assert shown.count("<td>open</td>") == 13
    resolved = await page(f"/projects/{shop}?status=resolved")
    assert "<td>open</td>" not in resolved
    assert "None." in resolved
    assert shown.count("<td>opened</td>") == 13  # the timeline
    assert re.search(r"acme-shop@1.0</a></td><td>SYNC \(.*?\)</td><td>done</td>", await page("/"))
    response = await app.client.get(f"/projects/{shop}?status=closed")
    assert response.status == 400
    assert "status='closed'" in (await response.json())["error"]
    response = await app.client.get("/projects/3b1c0e1e-5a0f-4c6e-9d43-6a1b2c3d4e5f")
    assert response.status == 404
    for path in ("/projects?offset=-1", f"/projects/{shop}?changes=x"):
        response = await app.client.get(path)
        assert response.status == 400
        assert "must be a whole number" in (await response.json())["error"]


LINK = re.compile(r'href="(/lines/[0-9a-f-]{36})"')


async def test_the_line_pages_read_either_store(console, state_url: str):
    app = await console(state_url=state_url, track="line")
    shop, blog = add_project(app.dt, "acme-shop"), add_project(app.dt, "acme-blog")
    await app.sync(shop, blog)

    async def page(path: str) -> str:
        response = await app.client.get(path, headers=HTML)
        assert response.status == 200, path
        return str(await response.text())

    assert '<a href="/lines" aria-current="page">Lines</a>' in await page("/lines")
    listed = await page("/lines")
    assert listed.index("acme-blog") < listed.index("acme-shop")  # by name
    assert f'<a href="/projects/{shop}">1.0</a>' in listed  # the current version
    # line findings: one per package and vulnerability, however many DT rows each has
    opened = r'<td>done</td>\s*<td class="num">0</td><td class="num">5</td><td class="num">2</td>'
    assert re.search(opened, listed)
    assert "acme-blog" not in await page("/lines?q=SHOP")
    assert "acme-shop" not in await page("/lines?q=acme%25")  # % is a character
    assert "acme-shop" in await page("/lines?tag=team-a")
    assert "No line matches" in await page("/lines?tag=team-b")
    line = LINK.findall(await page("/lines?q=shop"))[0]
    shown = await page(line)
    assert f'<a href="/projects/{shop}"><code>{shop}</code></a>' in shown  # its version
    assert "<strong>(current)</strong>" in shown
    assert shown.count("<td>open</td>") == 8  # its findings, from the line's state
    line_id = line.rsplit("/", 1)[1]
    response = await app.post("/sync", [("csrf", app.csrf), ("line", line_id)])
    assert response.status == 303, await response.text()  # its current version, one job
    run = str(response.headers["Location"]).rsplit("/", 1)[1]
    assert "acme-shop@1.0" in await app.events(run)
    response = await app.post("/sync", [("csrf", app.csrf), ("line", str(uuid.uuid4()))])
    assert response.status == 400
    assert "knows no line" in (await response.json())["error"]
    response = await app.client.get("/lines/3b1c0e1e-5a0f-4c6e-9d43-6a1b2c3d4e5f")
    assert response.status == 404
    assert "knows no line" in (await response.json())["error"]
    assert (await app.client.get("/lines/nope")).status == 404
    response = await app.client.get("/lines?offset=-1")
    assert response.status == 400
    assert "gone from DT" not in await page("/lines")
    # DT deleted the current version (as a job that met its 404 marks it): the line says so
    async with Store.open(app.settings.state) as store:
        await store.write(_deleted, shop)
    assert f'<a href="/projects/{shop}">1.0</a> (gone from DT)' in await page("/lines")
    assert "1.0</a> (gone from DT)" in await page(line)
    assert f'<a href="/projects/{blog}">1.0</a></td>' in await page("/lines")


def _deleted(cursor: Any, dialect: Dialect, project: str) -> None:
    cursor.execute(dialect.sql("UPDATE projects SET deleted_at = 1 WHERE uuid = %s"), (project,))


async def _run_page_after_restart(aiohttp_client: Any, app: Any, run: str) -> str:
    """The run's page as the console that starts next on the same store shows it."""
    again = await aiohttp_client(create_app(app.settings, TOKEN))
    await again.get(f"/login?token={TOKEN}")
    return str(await (await again.get(f"/sync/runs/{run}", headers=HTML)).text())


async def test_a_live_stream_ends_when_the_console_stops(console, aiohttp_client):
    """A sync can take minutes; stopping the console must not wait for its open streams. The
    console that starts next shows the run as interrupted."""
    app = await console()
    project = add_project(app.dt, "acme-slow")
    app.dt.delay = 10  # the export takes longer than the test waits
    response = await app.post("/sync", {"csrf": app.csrf, "project": project})
    run = response.headers["Location"].removeprefix("/sync/runs/")
    stream = await app.client.get(f"/sync/runs/{run}/events")
    first = await stream.content.readuntil(b"\n\n")
    assert b"acme-slow@1.0: queued" in first
    async with asyncio.timeout(5):  # the 10 s export, or aiohttp's 60 s shutdown wait: fails
        closing = asyncio.create_task(app.client.server.close())
        rest = await stream.content.read()
        await closing
    assert b"event: end" not in rest  # ended unfinished; the job goes on in the worker
    page = await _run_page_after_restart(aiohttp_client, app, run)
    assert "acme-slow@1.0: queued (job " in page
    assert "interrupted: the console stopped before this run ended" in page
    assert "None has settled yet" in page  # the worker still fetches (10 s)


async def test_a_run_stopped_before_its_lines_were_stored_keeps_them(
    console, aiohttp_client, tmp_path
):
    """The console stops while the store is slow to take the run (a worker's transaction holds
    SQLite's write lock): stopping waits for the lines said so far, it does not drop them."""
    app = await console()
    project = add_project(app.dt, "acme-slow")
    app.dt.delay = 10
    holder = sqlite3.connect(tmp_path / "state.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the run's first write waits for it
    try:
        response = await app.post("/sync", {"csrf": app.csrf, "project": project})
        run = response.headers["Location"].removeprefix("/sync/runs/")
        asyncio.get_running_loop().call_later(0.5, holder.rollback)
        async with asyncio.timeout(5):
            await app.client.server.close()
    finally:
        holder.close()
    page = await _run_page_after_restart(aiohttp_client, app, run)
    assert "acme-slow@1.0: queued (job " in page
    assert "interrupted: the console stopped before this run ended" in page


async def test_a_run_whose_jobs_settled_is_stored_ended_though_the_console_stops_first(
    console, aiohttp_client
):
    """The console stops while the run's last lines wait for a store that is slow to take them
    (PostgreSQL: a lock held by another session): the stop waits for them and for how the run
    ended, so the console that starts next shows it ended, not interrupted."""
    with fresh_database() as url:
        app = await console(state_url=url)
        project = add_project(app.dt, "acme-shop")
        holder = psycopg.connect(url)
        holder.execute("LOCK TABLE sync_run_lines IN EXCLUSIVE MODE")  # its lines wait for it
        try:
            response = await app.post("/sync", {"csrf": app.csrf, "project": project})
            run = response.headers["Location"].removeprefix("/sync/runs/")
            stream = await app.client.get(f"/sync/runs/{run}/events")
            shown = b""
            async with asyncio.timeout(30):
                while b"published: the relay sent" not in shown:  # then it waits for its lines
                    shown += await stream.content.readuntil(b"\n\n")
            asyncio.get_running_loop().call_later(0.5, holder.rollback)
            async with asyncio.timeout(10):
                await app.client.server.close()
        finally:
            holder.close()
        page = await _run_page_after_restart(aiohttp_client, app, run)
        assert "acme-shop@1.0: published: the relay sent" in page
        assert "sync: 1 of 1 projects synced" in page
        assert "interrupted" not in page


async def test_a_run_no_longer_listed_in_memory_goes_on_to_its_end(console, monkeypatch):
    """More runs than the console keeps in memory: the oldest leaves memory while its job
    still runs, and is still followed to its end in the store, not cut off as interrupted."""
    monkeypatch.setattr(runs, "MAX_RUNS", 1)
    app = await console()
    slow, other = add_project(app.dt, "acme-slow"), add_project(app.dt, "acme-shop")
    app.dt.always[slow] = Fault(delay=3.0)  # its export outlasts the second run
    response = await app.post("/sync", {"csrf": app.csrf, "project": slow})
    first = response.headers["Location"].removeprefix("/sync/runs/")
    await app.sync(other)  # the first leaves memory as this one starts
    page = await (await app.client.get(f"/sync/runs/{first}", headers=HTML)).text()
    assert "running… (this page updates itself" in page  # live, not interrupted
    assert "interrupted" not in page
    for _ in range(200):  # its job takes a few seconds more
        if "sync: 1 of 1 projects synced" in page:
            break
        await asyncio.sleep(0.1)
        page = await (await app.client.get(f"/sync/runs/{first}", headers=HTML)).text()
    assert "sync: 1 of 1 projects synced" in page
    assert "interrupted" not in page


async def test_past_the_most_runs_followed_at_once_a_sync_is_refused(console, monkeypatch):
    """Each followed run holds a connection to RabbitMQ for up to ten minutes: past
    MAX_FOLLOWED at once a new sync is refused (503, nothing queued), not followed unbounded."""
    monkeypatch.setattr(runs, "MAX_RUNS", 1)
    monkeypatch.setattr(runs, "MAX_FOLLOWED", 2)
    app = await console()
    slow = [add_project(app.dt, f"acme-slow-{n}") for n in range(3)]
    for project in slow:
        app.dt.always[project] = Fault(delay=3.0)
    for project in slow[:2]:
        response = await app.post("/sync", {"csrf": app.csrf, "project": project})
        assert response.status == 303, await response.text()
    response = await app.post("/sync", {"csrf": app.csrf, "project": slow[2]})
    assert response.status == 503
    assert (
        "2 sync runs are still followed (at most 2 at once): nothing queued"
        in (await response.json())["error"]
    )
    assert f"/api/v1/finding/project/{slow[2]}/export" not in {p for _, p, _ in app.dt.requests}


def test_the_fetched_step_names_the_export_size():
    assert sync.describe("fetched", {"bytes": 38}) == "fetched the export (38 bytes)"
    assert "(2.0 KiB)" in sync.describe("fetched", {"bytes": 2048})
    assert "(3.5 MiB)" in sync.describe("fetched", {"bytes": int(3.5 * 2**20)})


def test_the_steps_between_fetched_and_settled_are_described():
    assert sync.describe("validating", {}) == (
        "validating the export and comparing it with the stored state"
    )
    assert sync.describe("applied", {"transitions": 2, "outbox": 3, "sequence": 41}) == (
        "applied: 2 transitions committed, 3 events in the outbox for the relay to publish"
    )
    assert sync.describe(progress.ANALYSIS_PENDING, {}) == (
        "waiting for DT's analysis of the project"
    )
    assert sync.describe(progress.ANALYSIS_PENDING, {"detail": "BOM processed 3 s ago"}) == (
        "waiting for DT's analysis of the project: BOM processed 3 s ago"
    )


async def test_a_download_reports_its_bytes_so_far(console, monkeypatch: pytest.MonkeyPatch):
    """Every chunk reports here (PROGRESS_SECONDS 0); a worker reports once a second."""
    monkeypatch.setattr(dthttp, "PROGRESS_SECONDS", 0.0)
    app = await console()
    project = add_project(app.dt, "acme-shop")
    run = await app.sync(project)
    page = await (await app.client.get(f"/sync/runs/{run}", headers=HTML)).text()
    steps = re.findall(r"<li>acme-shop@1.0: (.*?)</li>", page)
    fetching = [s for s in steps if s.startswith("fetching the export: ")]
    assert fetching, steps
    assert steps.index(fetching[0]) == 2  # after queued and taken
    assert steps[2 + len(fetching)].startswith("fetched the export (")
    assert all(re.fullmatch(r"fetching the export: [\d.]+ (bytes|KiB) so far", s) for s in fetching)
