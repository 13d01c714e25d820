"""How the console answers: a page, or an error as HTML for a browser and JSON for the rest."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

CSRF = web.RequestKey("console_csrf", str)  # the session's CSRF token, set by auth.required
READONLY = web.AppKey("console_readonly", bool)


def wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


async def page(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    context = {
        "csrf": request.get(CSRF, ""),
        "readonly": request.app[READONLY],
        "path": request.path,
        **context,
    }
    return aiohttp_jinja2.render_template(template, request, context, status=status)


async def login_page(request: web.Request, *, status: int, failed: bool = False) -> web.Response:
    return await page(request, "login.html", {"failed": failed}, status=status)


def error(request: web.Request, status: int, message: str) -> web.Response:
    if wants_html(request):
        return aiohttp_jinja2.render_template(
            "error.html",
            request,
            {"status": status, "message": message, "csrf": ""},
            status=status,
        )
    return web.json_response({"error": message}, status=status)


def see_other(location: str) -> web.Response:
    """After a POST: the browser GETs ``location`` (303)."""
    return web.Response(status=303, headers={"Location": location})
