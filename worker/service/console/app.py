"""The console's aiohttp application: templates (autoescaped, every printed value scrubbed of
secrets), its own static files, the auth middlewares, the routes."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from worker.core.config import Settings
from worker.service.console import (
    auth,
    filters,
    lines,
    overview,
    parked_pages,
    projects,
    replies,
    sources,
    syncing,
)
from worker.service.console.redaction import Scrubber

HERE = Path(__file__).parent
MAX_FORM = 1024 * 1024  # a form of a few hundred ticked projects, no more


def create_app(settings: Settings, token: str) -> web.Application:
    """The console for ``settings``; ``token`` is the one to log in with. Nothing connects
    until the application starts."""
    app = web.Application(middlewares=[auth.headers, auth.required], client_max_size=MAX_FORM)
    scrub = Scrubber.of(settings, token)
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=scrub.finalize,
        default_helpers=False,
    )
    environment.filters.update(filters.ALL)
    environment.globals["static"] = lambda name: f"/static/{name}"
    # in the line track the Lines page is the main list; Projects stays, one row per version
    environment.globals["lines_first"] = settings.state.deltas and settings.state.track == "line"
    app[auth.SESSIONS] = auth.Sessions(token)
    app[replies.READONLY] = settings.console.readonly
    found = sources.create(settings, scrub)
    app[sources.SOURCES] = found
    app.cleanup_ctx.append(sources.lifecycle(found))
    app.on_shutdown.append(found.runs.end_streams)
    app.router.add_static("/static", HERE / "static")
    app.router.add_route("*", "/login", auth.login)
    app.router.add_post("/logout", auth.logout)
    app.router.add_get("/", overview.overview)
    app.router.add_get("/lines", lines.lines)
    app.router.add_get("/lines/{id}", lines.line)
    app.router.add_get("/projects", projects.projects)
    app.router.add_get("/projects/{uuid}", projects.project)
    app.router.add_get("/sync", syncing.sync_page)
    app.router.add_post("/sync", syncing.start)
    app.router.add_get("/sync/runs/{run}", syncing.run_page)
    app.router.add_get("/sync/runs/{run}/events", syncing.events)
    app.router.add_get("/parked", parked_pages.listing)
    app.router.add_get("/parked/{id}", parked_pages.detail)
    app.router.add_post("/parked/replay", parked_pages.replay)
    app.router.add_post("/parked/purge", parked_pages.purge)
    return app
