"""The console under test: ``serve`` (receiver and worker) in this process against the real
RabbitMQ, a SQLite state store and the fake DT, and the console's application beside it."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import pytest

from tests.fake_dt import FakeDt
from tests.harness import REAL
from tests.rabbit import AMQP_URL
from worker.core import jobs
from worker.core.config import Secret, Settings
from worker.core.console_settings import ConsoleSettings
from worker.core.topology import PARKED_KEY, Topology
from worker.service.console.app import create_app

TOKEN = "console-token-never-shown-0123456789"
XSS = "<script>alert(1)</script>"


def add_project(dt: FakeDt, name: str, export: bytes = REAL) -> str:
    """A project DT lists, whose export names it as DT does (the store keeps that name)."""
    project = str(uuid.uuid4())
    dt.projects.append({"uuid": project, "name": name, "version": "1.0", "active": True,
                        "tags": [{"name": "team-a"}]})  # fmt: skip
    document = orjson.loads(export)
    document["project"] |= {"name": name, "version": "1.0"}
    dt.exports[project] = orjson.dumps(document)
    return project


def console_settings(settings: Settings, **fields: Any) -> Settings:
    return dataclasses.replace(settings, console=ConsoleSettings(**fields))


@dataclasses.dataclass
class Console:
    client: Any  # aiohttp's TestClient, logged in unless asked otherwise
    topology: Topology
    settings: Settings
    dt: FakeDt
    csrf: str = ""

    async def login(self) -> None:
        response = await self.client.get(f"/login?token={TOKEN}", allow_redirects=False)
        assert response.status == 303, await response.text()
        page = await (await self.client.get("/", headers=HTML)).text()
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found, page
        self.csrf = found.group(1)

    async def post(self, path: str, data: Any, **options: Any) -> Any:
        return await self.client.post(path, data=data, allow_redirects=False, **options)

    async def sync(self, *projects: str) -> str:
        """Synchronize from the console; the run's id once every job settled."""
        form = [("csrf", self.csrf)] + [("project", p) for p in projects]
        response = await self.post("/sync", form)
        assert response.status == 303, await response.text()
        run = str(response.headers["Location"]).rsplit("/", 1)[1]
        text = await self.events(run)
        assert "event: end" in text, text
        return run

    async def events(self, run: str) -> str:
        """The run's whole event stream: it ends with the run."""
        async with asyncio.timeout(30):
            response = await self.client.get(f"/sync/runs/{run}/events")
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/event-stream"
            return str(await response.text())


HTML = {"Accept": "text/html"}


async def park(topology: Topology, project: str, reason: str, error: str, n: int = 0) -> str:
    """A job message in the parked queue, as a worker parks it."""
    job_id = str(uuid.uuid4())
    body = jobs.Job(
        job_id=job_id,
        project_uuid=project,
        project_name=f"parked-{n}",
        trigger="SYNC",
        notification_id=f"test:{job_id}",
        accepted_at=jobs.utc_timestamp(datetime.now(UTC)),
        correlation_id=f"test:{job_id}",
    ).to_json()
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.jobs_exchange.name)
        message = aio_pika.Message(
            body,
            message_id=job_id,
            content_type="application/json",
            headers={
                "x-park-reason": reason,
                "x-park-error": error,
                "x-attempt": 3,
                "x-parked-at": datetime.now(UTC).isoformat(),
            },
        )
        await exchange.publish(message, PARKED_KEY)
    return job_id


@pytest.fixture
async def console(serve, dt: FakeDt, aiohttp_client, tmp_path: Path):
    """``start(**console_fields)``: serve (delta mode, SQLite; ``track="line"`` for lines) and a
    logged-in console."""

    async def start(
        login: bool = True, state_url: str | None = None, track: str = "project", **fields: Any
    ) -> Console:
        _, topo, _, settings = await serve(
            EMIT="delta", STATE_URL=state_url or f"sqlite:///{tmp_path}/state.sqlite3", TRACK=track
        )
        fields.setdefault("token", Secret(TOKEN))
        shown = console_settings(settings, **fields)
        client = await aiohttp_client(create_app(shown, TOKEN))
        found = Console(client, topo, shown, dt)
        if login:
            await found.login()
        return found

    return start
