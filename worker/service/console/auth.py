"""Who may use the console: a token, exchanged once for a session cookie; CSRF tokens on every
state-changing request; the security headers every response carries.

The token is DTRACK_WORKER_CONSOLE_TOKEN (or _FILE); without it a random one is made at start
and printed once as a login URL. The session cookie is HttpOnly and SameSite=Strict; every POST
but the login's carries the session's CSRF token in a form field, compared in constant time.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web

from worker.service.console import replies
from worker.service.console.replies import CSRF, READONLY

COOKIE = "dtrack_console"
SESSION_SECONDS = 12 * 3600.0
MAX_SESSIONS = 1000
# no inline script or style anywhere: what the pages run comes from /static only
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PUBLIC = ("/login", "/static/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    csrf: str
    expires_at: float


class Sessions:
    def __init__(self, token: str) -> None:
        self._token = token
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def token_matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self._token.encode())

    def open(self) -> tuple[str, Session]:
        key = secrets.token_urlsafe(32)
        session = Session(secrets.token_urlsafe(32), time.monotonic() + SESSION_SECONDS)
        self._sessions[key] = session
        while len(self._sessions) > MAX_SESSIONS:  # the oldest goes first
            self._sessions.popitem(last=False)
        return key, session

    def get(self, key: str | None) -> Session | None:
        if not key:
            return None
        session = self._sessions.get(key)
        if session is None or session.expires_at < time.monotonic():
            self._sessions.pop(key, None)
            return None
        return session

    def close(self, key: str | None) -> None:
        if key:
            self._sessions.pop(key, None)


SESSIONS = web.AppKey("console_sessions", Sessions)


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    # the login URL carries the token: never let it leave in a Referer
    response.headers["Referrer-Policy"] = "no-referrer"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def required(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A session for every page but the login's; a CSRF token with every POST."""
    if request.path == "/login" or request.path.startswith("/static/"):
        return await handler(request)
    session = request.app[SESSIONS].get(request.cookies.get(COOKIE))
    if session is None:
        if replies.wants_html(request) and request.method == "GET":
            return await replies.login_page(request, status=401)
        return replies.error(request, 401, "log in first: this console needs its token")
    if request.method not in ("GET", "HEAD"):
        form = await request.post()
        offered = form.get("csrf")
        if not isinstance(offered, str) or not hmac.compare_digest(
            offered.encode(), session.csrf.encode()
        ):
            return replies.error(
                request, 403, "refused: the form's CSRF token is missing or wrong (reload the page)"
            )
    request[CSRF] = session.csrf
    return await handler(request)


def refuse_if_readonly(request: web.Request) -> web.Response | None:
    if request.app[READONLY]:
        return replies.error(
            request,
            403,
            "refused: this console is read-only (DTRACK_WORKER_CONSOLE_READONLY=true): "
            "sync, replay and purge are off",
        )
    return None


async def login(request: web.Request) -> web.StreamResponse:
    """GET /login?token=...: the printed URL; POST /login: the form. Both set the cookie."""
    if request.method == "POST":
        offered = (await request.post()).get("token")
    else:
        offered = request.query.get("token")
        if offered is None:
            return await replies.login_page(request, status=200)
    sessions = request.app[SESSIONS]
    if not isinstance(offered, str) or not sessions.token_matches(offered):
        return await replies.login_page(request, status=401, failed=True)
    key, _ = sessions.open()
    response = replies.see_other("/")
    response.set_cookie(
        COOKIE, key, httponly=True, samesite="Strict", path="/", max_age=int(SESSION_SECONDS)
    )
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    request.app[SESSIONS].close(request.cookies.get(COOKIE))
    response = replies.see_other("/login")
    response.del_cookie(COOKIE, path="/")
    return response
