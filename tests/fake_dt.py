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
    location: str | None = None  # with a 3xx status: where to
    drip: float | None = None  # send the body one byte every this many seconds


# What DT 4.14.3 answers on GET /api/version (Alpine's About, see alpine-model About.java)
VERSION = {
    "timestamp": "2025-11-20T10:00:00Z",
    "version": "4.14.3",
    "uuid": "6d8d6a3f-8b2b-4d61-8e2e-4b1b3f1d5d27",
    "systemUuid": "f1a2b3c4-1111-2222-3333-444455556666",
    "application": "Dependency-Track",
    "framework": {
        "timestamp": "2025-11-01T10:00:00Z",
        "version": "3.2.0",
        "uuid": "0c0c1a2b-3c4d-5e6f-7a8b-9c0d1e2f3a4b",
        "name": "Alpine",
    },
}
PERMISSIONS = ("VIEW_PORTFOLIO", "VIEW_VULNERABILITY")


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
        self.portfolio_status: int | None = None  # answer that status instead (a 503)
        self.on_page: Callable[[int], None] | None = None  # called before a page is served
        # a page of projects served as something else: raw bytes, and X-Total-Count (None: none)
        self.portfolio_body: bytes | None = None
        self.total_count: Callable[[int], str | None] = str
        self.permissions: list[str] = list(PERMISSIONS)
        self.version: dict[str, Any] | None = dict(VERSION)  # None: /api/version is a 404
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, X-Api-Key)
        self.traceparents: list[str | None] = []  # each request's W3C trace context, if any
        # GET /api/v1/finding/project/{uuid}?suppressed=true: the export's findings plus these
        # suppressed rows (DT leaves them out of the export); paged as DT 5 pages it, or the
        # whole list at once as DT 4.x answers (paged = False)
        self.suppressed: dict[str, list[dict[str, Any]]] = {}
        self.paged = True
        # a proxy (or a DT) that serves at most this many rows per page whatever pageSize asks,
        # while X-Total-Count stays DT's own count of the whole list
        self.page_cap: int | None = None
        # rows DT counts in X-Total-Count but never serves: a short read (a list that shrank
        # while it was paged, a proxy that cut it)
        self.uncounted = 0
        self.finding_lists: list[str] = []  # projects whose findings list was asked for
        # a project whose export changes with every fetch: called for each export request
        self.generators: dict[str, Callable[[], bytes]] = {}
        # GET /api/v1/event/token/{uuid} (DT 4.11+, 5.x): how many more polls of a token answer
        # {"processing": true}; then false, and ``analysed[token]`` (if set) is called once, as
        # DT's analysis ends. An unknown token answers false, as DT does. ``token_status``:
        # answer that status instead (401, 403, 500).
        self.analyses: dict[str, int] = {}
        self.analysed: dict[str, Callable[[], None]] = {}
        self.token_status: int | None = None
        self.token_polls: list[str] = []
        self.on_project: Callable[[str], None] | None = None  # before each GET project/{uuid}
        self._server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def __aenter__(self) -> FakeDt:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/api/v1/finding/project/{uuid}/export", self._export)
        app.router.add_get("/api/v1/project", self._projects)
        app.router.add_get("/api/v1/project/{uuid}", self._project)
        app.router.add_get("/api/v1/finding/project/{uuid}", self._findings)
        app.router.add_get("/api/v1/team/self", self._team)
        app.router.add_get("/api/v1/event/token/{uuid}", self._token)
        app.router.add_get("/api/version", self._version)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        await self._server.close()

    def fetches_of(self, project: str) -> list[Fetch]:
        return [fetch for fetch in self.fetches if fetch.project == project]

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path, request.headers.get("X-Api-Key")))
        self.traceparents.append(request.headers.get("traceparent"))
        response: web.StreamResponse = await handler(request)
        return response

    async def _version(self, request: web.Request) -> web.Response:
        if self.version is None:
            return web.Response(status=404, text="Not Found")
        return web.json_response(self.version)  # no key needed, as in DT

    async def _findings(self, request: web.Request) -> web.Response:
        """DT's findings API, Jackson-style: explicit nulls, attributedOn in epoch ms."""
        if request.headers.get("X-Api-Key") != API_KEY:
            return web.Response(status=401)
        project = request.match_info["uuid"]
        self.finding_lists.append(project)
        if project not in self.exports:
            return web.Response(status=404, text="The project could not be found.")
        rows = list(orjson.loads(self.exports[project]).get("findings") or [])
        if request.query.get("suppressed") == "true":
            rows += self.suppressed.get(project, [])
        total = len(rows) + self.uncounted
        if self.paged:  # DT 5: offset (page - 1) x size, as Alpine's Pagination computes it
            page = int(request.query.get("pageNumber", "1"))
            size = int(request.query.get("pageSize", "100"))
            rows = rows[(page - 1) * size : page * size]
        if self.page_cap is not None:
            rows = rows[: self.page_cap]
        return web.json_response(
            [_jackson(row) for row in rows], headers={"X-Total-Count": str(total)}
        )

    async def _token(self, request: web.Request) -> web.Response:
        """DT's EventResource: is a workflow labelled with this token still running?"""
        if request.headers.get("X-Api-Key") != API_KEY:
            return web.Response(status=401)
        token = request.match_info["uuid"]
        self.token_polls.append(token)
        if self.token_status is not None:
            return web.Response(status=self.token_status)
        left = self.analyses.get(token, 0)
        if left > 0:
            self.analyses[token] = left - 1
            return web.json_response({"processing": True})
        done = self.analysed.pop(token, None)
        if done is not None:
            done()
        return web.json_response({"processing": False})

    async def _team(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != API_KEY:
            return web.Response(status=401)
        permissions = [{"name": name, "description": name} for name in self.permissions]
        return web.json_response(
            {"uuid": "3b1c0e1e-0000-4000-8000-000000000001", "name": "dtrack-worker",
             "permissions": permissions}
        )  # fmt: skip

    async def _project(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != API_KEY:
            return web.Response(status=401)
        if "VIEW_PORTFOLIO" not in self.permissions:
            return web.Response(status=403)
        project = request.match_info["uuid"]
        if self.on_project is not None:
            self.on_project(project)
        known = {p["uuid"]: p for p in self.projects}
        if project in known:
            return web.json_response(known[project])
        if project in self.exports:
            return web.json_response({"uuid": project, "name": "p", "active": True, "tags": []})
        return web.Response(status=404, text="The project could not be found.")

    async def _projects(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != API_KEY:
            return web.Response(status=401)
        if self.portfolio_forbidden or "VIEW_PORTFOLIO" not in self.permissions:
            return web.Response(status=403)
        if self.portfolio_status is not None:
            return web.Response(status=self.portfolio_status)
        page = int(request.query.get("pageNumber", "1"))
        size = int(request.query.get("pageSize", "100"))  # DT pages even without parameters
        if self.on_page is not None:
            self.on_page(page)
        projects = self.projects
        if request.query.get("excludeInactive") == "true":
            projects = [p for p in projects if p.get("active", True)]
        if "name" in request.query:  # DT: exactly this name, every version
            projects = [p for p in projects if p.get("name") == request.query["name"]]
        if "searchText" in request.query:  # DT: names that contain it, any case
            text = request.query["searchText"].lower()
            projects = [p for p in projects if text in str(p.get("name", "")).lower()]
        chunk = projects[(page - 1) * size : page * size]
        total = self.total_count(len(projects))
        headers = {} if total is None else {"X-Total-Count": total}
        if self.portfolio_body is not None:
            return web.Response(body=self.portfolio_body, headers=headers)
        return web.json_response(chunk, headers=headers)

    def _status(self, request: web.Request, project: str, fault: Fault) -> int:
        if request.headers.get("X-Api-Key") != API_KEY:
            return 401
        if project in self.forbidden:
            return 403
        if project not in self.exports and fault.status == 200:
            return 404
        return fault.status

    async def _export(self, request: web.Request) -> web.StreamResponse:
        project = request.match_info["uuid"]
        started = time.time()
        fault = self.faults.get(project, []).pop(0) if self.faults.get(project) else None
        fault = fault or self.always.get(project) or Fault()
        status = self._status(request, project, fault)
        self.fetches.append(Fetch(project, started, status))
        if fault.delay or self.delay:
            await asyncio.sleep(fault.delay or self.delay)
        if status == 404:
            return web.Response(status=404, text="The project could not be found.")
        if status in (401, 403):
            return web.Response(status=status)
        if fault.location is not None:
            return web.Response(status=status, headers={"Location": fault.location})
        if status != 200:
            retry = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return web.Response(status=status, text="unavailable", headers=retry)
        if project in self.generators:
            self.exports.as_is(project, self.generators[project]())
        body = self.exports[project]
        headers: dict[str, Any] = {
            "Content-Disposition": f"inline; filename=findings-{project}.fpf",
        }
        if fault.drip is not None:
            return await self._drip(request, body, headers, fault.drip)
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

    @staticmethod
    async def _drip(
        request: web.Request, body: bytes, headers: dict[str, Any], every: float
    ) -> web.StreamResponse:
        """The export, one byte at a time: a DT (or a proxy) that never quite stops."""
        response = web.StreamResponse(
            headers=headers | {"Content-Length": str(len(body)), "Content-Type": "application/json"}
        )
        await response.prepare(request)
        for index in range(len(body)):
            await response.write(body[index : index + 1])
            await asyncio.sleep(every)
        return response


def _jackson(row: dict[str, Any]) -> dict[str, Any]:
    """A finding row as Jackson writes it: absent optional keys as explicit nulls."""
    out = {part: dict(value) if isinstance(value, dict) else value for part, value in row.items()}
    analysis = out.setdefault("analysis", {})
    analysis.setdefault("state", None)
    analysis.setdefault("isSuppressed", False)
    out["vulnerability"].setdefault("recommendation", None)
    return out
