"""URLs as we show them: never with a password, whatever the URL's shape. Pure.

A URL we log or publish may be malformed (``amqp:/guest:pw@host/`` is not a URL ``urlsplit``
finds a password in), so credentials are found by text, not by parsing: everything between the
scheme and the last ``@`` is user information. That can hide more than the password in a URL
with an ``@`` in its path, which is the safe way to be wrong.
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*:/*)?")


def _userinfo(url: str) -> tuple[str, str, str] | None:
    """(scheme and slashes, user information, the rest after its ``@``), or None."""
    at = url.rfind("@")
    if at < 0:
        return None
    scheme = _SCHEME.match(url)
    start = scheme.end() if scheme else 0
    if at < start:
        return None
    return url[:start], url[start:at], url[at + 1 :]


def redact(url: str) -> str:
    """``url`` with its password (or a lone token in the user part) replaced by ``***``.

    Several URLs separated by commas (a RabbitMQ cluster) are redacted one by one.
    """
    if "," in url:
        return ",".join(redact(part) for part in url.split(","))
    found = _userinfo(url)
    if found is None:
        return url
    head, userinfo, rest = found
    user, colon, _ = userinfo.partition(":")
    shown = f"{user}:***" if colon and user and "/" not in user else "***"
    return f"{head}{shown}@{rest}"


def without_userinfo(url: str) -> str:
    """``url`` with no user information at all: for identifiers, such as an event's source."""
    found = _userinfo(url)
    if found is None:
        return url
    head, _, rest = found
    return head + rest
