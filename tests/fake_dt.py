"""A fake Dependency-Track: a real aiohttp server on loopback serving real FPF fixtures.

It answers ``GET /api/v1/finding/project/{uuid}/export`` as DT does (200 JSON with
Content-Disposition; 401 and 403 with empty bodies; 404 with DT's text), and a test can script
faults per project: a list of responses to give first (status, Retry-After, delay, a truncated
body), then the export. Every request is recorded with the time it started.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

API_KEY = "fake-dt-api-key-never-logged"


def rehomed(raw: bytes, project: str) -> bytes:
    """An export fixture made the export of ``project``: its own project uuid replaced
    everywhere (``project.uuid``, every ``matrix``, every ``component.project``), as DT would
    serve it. Bytes that are no export are left as they are."""
    try:
        own = orjson.loads(raw)["project"]["uuid"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return raw
    if not isinstance(own, str) or not own:
        return raw
    return raw.replace(own.encode(), project.encode())


class Exports(dict[str, bytes]):
    """project uuid -> export; a fixture set here is served as that project's own export."""

    def __setitem__(self, project: str, raw: bytes) -> None:
        super().__setitem__(project, rehomed(raw, project))

    def as_is(self, project: str, raw: bytes) -> None:
        """Serve ``raw`` unchanged for ``project``: an export of another project, say."""
        super().__setitem__(project, raw)


@dataclasses.dataclass
class Fault:
    status: int = 200
    retry_after: str | None = None
    delay: float = 0.0
    truncate: bool = False  # announce the whole body, send half, close the connection


@dataclasses.dataclass
class Fetch:
    project: str
    started: float  # time.time() when the request arrived
    status: int


class FakeDt:
    def __init__(self) -> None:
        self.exports = Exports()
        self.faults: dict[str, list[Fault]] = {}
        self.always: dict[str, Fault] = {}
        self.fetches: list[Fetch] = []
        self.forbidden: set[str] = set()
        self.delay = 0.0
        # GET /api/v1/project: the portfolio, paged as DT pages it
        self.projects: list[dict[str, Any]] = []
        self.portfolio_forbidden = False
        self.on_page: Callable[[int], None] | None = None  # called before a page is served
        self._server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def __aenter__(self) -> FakeDt:
        app = web.Application()
        app.router.add_get("/api/v1/finding/project/{uuid}/export", self._export)
        app.router.add_get("/api/v1/project", self._projects)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        await self._server.close()

    def fetches_of(self, project: str) -> list[Fetch]:
        return [fetch for fetch in self.fetches if fetch.project == project]

    async def _projects(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != API_KEY:
            return web.Response(status=401)
        if self.portfolio_forbidden:
            return web.Response(status=403)
        page = int(request.query.get("pageNumber", "1"))
        size = int(request.query.get("pageSize", "100"))  # DT pages even without parameters
        if self.on_page is not None:
            self.on_page(page)
        projects = self.projects
        if request.query.get("excludeInactive") == "true":
            projects = [p for p in projects if p.get("active", True)]
        chunk = projects[(page - 1) * size : page * size]
        return web.json_response(chunk, headers={"X-Total-Count": str(len(projects))})

    async def _export(self, request: web.Request) -> web.StreamResponse:
        project = request.match_info["uuid"]
        started = time.time()
        fault = self.faults.get(project, []).pop(0) if self.faults.get(project) else None
        fault = fault or self.always.get(project) or Fault()
        if request.headers.get("X-Api-Key") != API_KEY:
            status = 401
        elif project in self.forbidden:
            status = 403
        elif project not in self.exports and fault.status == 200:
            status = 404
        else:
            status = fault.status
        self.fetches.append(Fetch(project, started, status))
        if fault.delay or self.delay:
            await asyncio.sleep(fault.delay or self.delay)
        if status == 404:
            return web.Response(status=404, text="The project could not be found.")
        if status in (401, 403):
            return web.Response(status=status)
        if status != 200:
            retry = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return web.Response(status=status, text="unavailable", headers=retry)
        body = self.exports[project]
        headers: dict[str, Any] = {
            "Content-Disposition": f"inline; filename=findings-{project}.fpf",
        }
        if not fault.truncate:
            return web.Response(body=body, content_type="application/json", headers=headers)
        response = web.StreamResponse(
            headers=headers | {"Content-Length": str(len(body)), "Content-Type": "application/json"}
        )
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        assert request.transport is not None
        request.transport.close()
        return response
