"""The console in a real browser: Debian's chromium driven by Playwright, against a running
``dtrack-worker serve`` (a process of its own, its console on a port of its own) with the fake
DT serving real exports. One browser for the module; each page's screenshot is saved in
tests/artifacts/console/ (or $DTRACK_TEST_ARTIFACTS). The same running serve also shows how
its console stops (no browser needed for that).

scripts/test installs chromium with apt when it is missing (scripts/ensure-chromium);
Playwright never downloads a browser here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import orjson
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import REPO
from tests.console_env import XSS, add_project
from tests.fake_dt import API_KEY, FakeDt
from tests.harness import SCRIPT, _free_port
from tests.rabbit import AMQP_URL, eventually, temporary_topology, unique_prefix
from worker.core import jobs
from worker.core.topology import JOB_KEY

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(120)]

CHROMIUM = Path("/usr/bin/chromium")
INSTALLED = CHROMIUM.exists()  # a missing browser fails the test: it is never skipped
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("DTRACK_TEST_ARTIFACTS", REPO / "tests" / "artifacts")) / "console"
LOGIN = re.compile(r"log in at (http://\S+/login\?token=\S+)")


class Served:
    def __init__(self, process: asyncio.subprocess.Process, console: str, prefix: str) -> None:
        self.process, self.console, self.prefix = process, console, prefix
        self.login_url = ""
        self.stderr: list[str] = []

    async def read_login_url(self) -> None:
        assert self.process.stderr is not None
        async with asyncio.timeout(30):
            while not self.login_url:
                line = (await self.process.stderr.readline()).decode()
                assert line, f"serve ended before printing the login URL: {self.stderr}"
                self.stderr.append(line)
                if found := LOGIN.search(line):
                    self.login_url = found.group(1)

    async def drain(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.stderr.append(line.decode())


@contextlib.asynccontextmanager
async def running_serve(dt: FakeDt, tmp_path: Path) -> AsyncIterator[Served]:
    prefix = unique_prefix()
    port, console_port = _free_port(), _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DTRACK_WORKER_PREFIX": prefix,
        "DTRACK_WORKER_AMQP_URL": AMQP_URL,
        "DTRACK_WORKER_DT_URL": dt.url,
        "DTRACK_WORKER_DT_API_KEY": API_KEY,
        "DTRACK_WORKER_DT_BACKOFF_SECONDS": "0.05",
        "DTRACK_WORKER_WEBHOOK_TOKEN": "webhook-token-never-logged",
        "DTRACK_WORKER_LISTEN": f"127.0.0.1:{port}",
        "DTRACK_WORKER_CONSOLE_LISTEN": f"127.0.0.1:{console_port}",
        "DTRACK_WORKER_STATE_URL": f"sqlite:///{tmp_path}/state.sqlite3",
        "DTRACK_WORKER_SHUTDOWN_GRACE": "2",
    }
    assert SCRIPT
    async with temporary_topology(prefix):
        with (tmp_path / "serve.log").open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                SCRIPT, "serve", env=env, stdout=log, stderr=asyncio.subprocess.PIPE
            )
            served = Served(process, f"http://127.0.0.1:{console_port}", prefix)
            try:
                await served.read_login_url()
                drain = asyncio.create_task(served.drain())
                await _ready(f"http://127.0.0.1:{port}/readyz")
                yield served
            finally:
                if process.returncode is None:
                    process.terminate()
                    async with asyncio.timeout(20):
                        await process.wait()
            await drain


async def _ready(url: str, within: float = 20.0) -> None:
    last = "no answer yet"
    async with aiohttp.ClientSession() as session:
        for _ in range(max(1, int(within / 0.1))):
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}: {(await response.text())[:500]}"
            except aiohttp.ClientError as exc:
                last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.1)
    raise AssertionError(f"serve did not answer 200 on {url} within {within:g} s; last: {last}")


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not INSTALLED:
        pytest.fail("no /usr/bin/chromium: run scripts/ensure-chromium (scripts/test does)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


async def reload_until(page: Page, check: Any, what: str, within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.2)
            await page.reload()
    assert await check(), what


async def test_the_readiness_wait_says_the_last_answer_it_got(aiohttp_server):
    async def not_ready(_: web.Request) -> web.Response:
        return web.json_response({"ready": False, "broker": "connecting"}, status=503)

    app = web.Application()
    app.router.add_get("/readyz", not_ready)
    server = await aiohttp_server(app)
    with pytest.raises(AssertionError) as failed:
        await _ready(str(server.make_url("/readyz")), within=0.3)
    assert 'last: HTTP 503: {"ready": false, "broker": "connecting"}' in str(failed.value)
    url = str(server.make_url("/readyz"))
    await server.close()
    with pytest.raises(AssertionError) as failed:
        await _ready(url, within=0.3)
    assert "last: ClientConnectorError" in str(failed.value)


async def test_the_console_in_a_browser(dt: FakeDt, tmp_path: Path):
    shop, hostile = add_project(dt, "acme-shop"), add_project(dt, XSS)
    dt.projects[-1]["tags"] = [{"name": "team-b"}]  # the hostile one: the tag filter's
    broken = add_project(dt, "acme-blog")
    good = dt.exports[broken]
    dt.exports.as_is(broken, orjson.dumps({"version": "1.2", "findings": "none"}))
    dt.delay = 0.5  # each export takes a moment: the progress is seen before the end
    dialogs: list[str] = []
    async with running_serve(dt, tmp_path) as served, chromium() as browser:
        base = served.console
        # without a session: the login page, with 401, for every page
        stranger = await browser.new_page()
        for path in ("/", "/projects", "/sync", "/parked"):
            response = await stranger.goto(base + path)
            assert response is not None
            assert response.status == 401, path
            await expect(stranger.get_by_label("Token")).to_be_visible()
        await shot(stranger, "login")

        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))
        await page.goto(served.login_url)
        assert page.url == base + "/"
        await reload_until(
            page, lambda: page.locator("td", has_text="rabbitmq").count(), "the health table"
        )
        health = page.locator("tr", has=page.locator("td", has_text="rabbitmq"))
        await expect(health.first).to_contain_text("ok")
        await expect(page.locator("tr", has_text="api key")).to_contain_text("ok")

        # a POST without the CSRF token is refused, even with the session's cookie
        refused = await context.request.post(base + "/sync", form={"project": shop})
        assert refused.status == 403
        assert "CSRF" in (await refused.json())["error"]

        # synchronize two projects from DT's list, and watch them to the end
        await page.get_by_role("link", name="Sync", exact=True).click()
        await page.get_by_label("acme-shop").check()
        await page.get_by_label(XSS).check()
        await shot(page, "sync")
        await page.get_by_role("button", name="Synchronize").click()
        await page.wait_for_url(re.compile(r".*/sync/runs/[0-9a-f-]+$"))
        # lines pushed while the run goes on: fetching is shown before the summary
        # one selector, matched at once (wait_for_function evaluates a string in the page,
        # which the console's CSP, no 'unsafe-eval', refuses at times: microsoft/playwright#36986)
        running = page.locator("body:has(#summary:not([data-done])):has(#log > li:nth-child(4))")
        await expect(running).to_be_attached()
        await expect(page.locator("#log")).to_contain_text("acme-shop@1.0: a worker took the job")
        summary = page.locator("#summary[data-done]")
        await expect(summary).to_have_text("sync: 2 of 2 projects synced", timeout=30_000)
        await expect(page.locator("#log")).to_contain_text("acme-shop@1.0: synced: ")
        await expect(page.locator("#log")).to_contain_text(f"{XSS}@1.0: synced: ")
        # the steps between: validated, applied with its counts, published by the relay
        log = page.locator("#log")
        await expect(log).to_contain_text("acme-shop@1.0: validating the export")
        await expect(log).to_contain_text("acme-shop@1.0: applied: 13 transitions committed")
        await expect(log).to_contain_text("acme-shop@1.0: published: the relay sent its")
        await shot(page, "run")

        # the lines (the default track), DT's hostile name shown as text
        await page.get_by_role("link", name="Lines", exact=True).click()
        await expect(page.get_by_role("link", name=XSS)).to_be_visible()
        await expect(page.locator("tr", has_text="acme-shop")).to_contain_text("done")
        await shot(page, "lines")
        await page.get_by_role("link", name="acme-shop").click()
        await expect(page.locator("h1")).to_contain_text("acme-shop")
        await expect(page.locator("#versions ~ table")).to_contain_text("(current)")
        await shot(page, "line")

        # the projects (each version on its own), from the Lines page's link
        await page.goto(base + "/lines")
        await page.get_by_role("link", name="Projects", exact=True).click()
        await expect(page.get_by_role("link", name=XSS)).to_be_visible()
        await expect(page.locator("tr", has_text="acme-shop")).to_contain_text("done")
        await shot(page, "projects")
        await page.get_by_label("Tag").select_option("team-b")
        await page.get_by_role("button", name="Search").click()
        await expect(page.get_by_role("link", name=XSS)).to_be_visible()
        await expect(page.get_by_role("link", name="acme-shop")).to_have_count(0)
        await page.goto(base + "/projects")
        await page.get_by_role("link", name="acme-shop").click()
        await expect(page.locator("h1")).to_contain_text("acme-shop")
        await expect(page.locator("#timeline ~ table")).to_contain_text("opened")
        await shot(page, "project")
        await page.goto(f"{base}/projects/{hostile}")
        await expect(page.locator("h1")).to_have_text(XSS + " 1.0")

        # a job that parks, seen with its reason and message, then replayed and processed
        dt.delay = 0
        await page.goto(base + "/sync?q=acme-blog")
        await page.get_by_label("acme-blog").check()
        await page.get_by_role("button", name="Synchronize").click()
        await expect(page.locator("#summary[data-done]")).to_have_text(
            "sync: 0 of 1 projects synced", timeout=30_000
        )
        await page.get_by_role("link", name="Parked", exact=True).click()
        row = page.locator("#parked tbody tr").first
        await expect(row).to_contain_text("invalid_export")
        await expect(row).to_contain_text(broken)
        await shot(page, "parked")
        await page.get_by_label("Reason").select_option("invalid_export")
        await page.get_by_role("button", name="Filter").click()
        await expect(page.locator("#count")).to_contain_text("1 of 1")
        await page.get_by_label("Project (UUID or name contains)").fill("no-such-project")
        await page.get_by_role("button", name="Filter").click()
        await expect(page.locator("#count")).to_contain_text("0 of 1")
        await page.get_by_label("Project (UUID or name contains)").fill(broken[:8])
        await page.get_by_role("button", name="Filter").click()
        await expect(page.locator("#count")).to_contain_text("1 of 1")
        await page.locator("#parked tbody tr a").first.click()
        await expect(page.locator("#message")).to_contain_text(f'"project_uuid": "{broken}"')
        await shot(page, "parked-job")
        dt.exports.as_is(broken, good)  # DT serves a good export now
        await page.get_by_role("button", name="Replay").click()
        await expect(page.locator("#count")).to_contain_text("0 of 0")

        async def synced() -> bool:
            await page.goto(base + "/projects?q=acme-blog")
            row = page.locator("tr", has_text="acme-blog").filter(has_text="done")
            return await row.count() > 0

        await reload_until(page, synced, "the replayed job processed")
        await page.goto(base + "/")
        last = page.locator("#last ~ table tbody tr", has_text="acme-blog")
        await expect(last.first).to_contain_text("SYNC")
        await expect(last.first).to_contain_text("done")
        await expect(last.first).to_contain_text(re.compile(r"\d+ ms|\d+\.\d s"))
        await shot(page, "overview")
    assert dialogs == []  # no script of DT's ran
    assert served.process.returncode == 0, "".join(served.stderr)
    # the generated token: printed once on stderr, never in the log
    token = served.login_url.split("token=", 1)[1]
    assert sum(token in line for line in served.stderr) == 1
    assert token not in (tmp_path / "serve.log").read_text()
    assert "console.starting" in (tmp_path / "serve.log").read_text()


async def test_serve_keeps_its_console_up_while_its_worker_drains(dt: FakeDt, tmp_path: Path):
    """On SIGTERM serve's worker stops taking jobs and drains first, and its console stops
    last: operators watch the drain on it (it used to stop first, the worker's drain after)."""
    project = add_project(dt, "acme-slow")
    dt.delay = 10.0  # the export outlasts the 2 s grace: the job is in flight all along
    export = f"/api/v1/finding/project/{project}/export"
    async with running_serve(dt, tmp_path) as served:
        job_id = str(uuid.uuid4())
        body = jobs.Job(job_id=job_id, project_uuid=project, project_name="acme-slow",
                        trigger="SYNC", notification_id=f"test:{job_id}",
                        accepted_at=jobs.utc_timestamp(datetime.now(UTC)),
                        correlation_id=f"test:{job_id}").to_json()  # fmt: skip
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(f"{served.prefix}.jobs")
            await exchange.publish(aio_pika.Message(body, message_id=job_id), JOB_KEY)
        await eventually(lambda: any(path == export for _, path, _ in dt.requests), within=20)
        served.process.terminate()
        log = tmp_path / "serve.log"
        await eventually(lambda: "worker.draining" in log.read_text(), within=10)
        async with aiohttp.ClientSession() as session, session.get(served.console) as response:
            assert response.status in (200, 303, 401)  # it answers: it has not stopped
        async with asyncio.timeout(20):
            await served.process.wait()
    assert served.process.returncode == 0
