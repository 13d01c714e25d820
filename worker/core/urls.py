"""Passwords as we show them: never, not even in part, whatever form they take. Pure.

``redact`` is the one redaction: every text we log, print, answer, publish, park or put in a
span that may quote a URL or a connection string goes through it, driver errors included.
It masks

* a URL's user information, ``scheme://user:PASSWORD@host``: everything between the user's
  ``:`` and the *last* ``@`` of the URL is the password, whatever it holds (``,``, ``@``,
  ``:``, ``/``, ``?``, ``#``, ``%``, spaces). A URL with an ``@`` further on (in its path, or in
  text after it) hides more than its password: the safe way to be wrong. A URL cut before
  its host (``amqp://guest:gu``) hides what stands where its port would be;
* a query's ``password`` and ``sslpassword`` (any case), up to the next ``&name=``;
* libpq keyword strings: ``password=secret``, ``password='with spaces'``.

A password already shown as ``***`` stays so and ends there (our own messages are redacted
again as they are logged): a password that itself begins with ``***`` and then ``@``, ``&``, a
space or a quote would show its rest; no other does.

A text may quote several URLs (a cluster's nodes, an error naming two): each begins at its
scheme (``amqp://``, ``amqp:/``, ``postgresql:``...) at the text's start or after a space, a
comma, a quote or a bracket, and ends where the next begins.

``connection_secrets`` takes the passwords out of a PostgreSQL URL, by the same rules, so that
the driver gets them apart and none of its errors can quote them.
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import unquote

MASK = "***"

# where a URL begins: any scheme with a slash or two, the ones we use without (amqp:guest:pw@h)
_START = re.compile(
    r"(?:^|(?<=[\s,;'\"(\[<{=|]))"
    r"(?:[A-Za-z][A-Za-z0-9+.\-]*:/{1,2}|(?i:amqps?|postgres(?:ql)?|https?):(?=[^\s/]))"
)
# anything worth a closer look; most log values have none of these
_TRIGGER = re.compile(r"@|:/|(?i:password)|(?i:amqps?|postgres(?:ql)?|https?):")
_QUERY_PASSWORD = re.compile(r"(?<=[?&])(?i:(?:ssl)?password)=")
_NEXT_PARAMETER = re.compile(r"&[A-Za-z_][A-Za-z0-9_.\-]*=")
_KEYWORD_PASSWORD = re.compile(r"(?<![\w.?&\-])(?i:(?:ssl)?password)\s*=\s*")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*(?:'|\\?$)", re.DOTALL)
_UNQUOTED = re.compile(r"\S*")
# redacted already (our own messages, logged again): the rest of the text is not a password
_REDACTED = re.compile(r"(?:[^\s:@/?#]*:)?\*\*\*@")
_DONE = re.compile(r"\*\*\*(?=[&#\s'\"]|$)")
_AUTHORITY = re.compile(r"[^/?#\s'\"<>()\[\]]*")
_PLAIN_USER = re.compile(r"[^\s/?#'\"<>()\[\]]+")
# schemes whose lone user information is a user name (elsewhere it may be a token)
_USER_SCHEMES = frozenset({"amqp", "amqps", "postgres", "postgresql"})


def redact(text: str, *, url: bool = False) -> str:
    """``text`` with every password in it replaced by ``***``.

    ``url``: the text is one URL as someone gave it (a setting), so user information at its
    start counts even without a scheme (``guest:pw@host``).
    """
    if not url and not _TRIGGER.search(text):
        return text
    marks = [(match.start(), match.end()) for match in _START.finditer(text)]
    if url and (not marks or marks[0][0] != 0):
        marks.insert(0, (0, 0))
    if not marks:
        return _keywords(_queries(text))
    pieces = [_keywords(_queries(text[: marks[0][0]]))]
    for index, (start, after_scheme) in enumerate(marks):
        end = marks[index + 1][0] if index + 1 < len(marks) else len(text)
        scheme = text[start:after_scheme]
        pieces.append(scheme + _url_rest(text[after_scheme:end], scheme))
    return "".join(pieces)


def without_userinfo(url: str) -> str:
    """``url`` with no user information at all (and no password anywhere): for identifiers,
    such as an event's source."""
    scheme = _START.match(url)
    head = url[: scheme.end()] if scheme else ""
    rest = url[len(head) :]
    at = rest.rfind("@")
    return redact(head + (rest[at + 1 :] if at >= 0 else rest))


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionSecrets:
    """A PostgreSQL URL without its passwords, and the passwords (decoded), for the driver."""

    url: str
    password: str | None
    sslpassword: str | None


def connection_secrets(url: str) -> ConnectionSecrets:
    """The passwords of ``url`` taken out: ``?password=``, ``?sslpassword=`` (each up to the
    next ``&name=``; a query wins over the user information, as in libpq), and the user
    information's, up to the last ``@``. An ``@`` elsewhere (in another query parameter) must
    be written ``%40``."""
    scheme = _START.match(url)
    head = url[: scheme.end()] if scheme else ""
    rest = url[len(head) :]
    taken: dict[str, str] = {}
    for key in ("sslpassword", "password"):
        found = re.search(rf"([?&]){key}=", rest)
        if found is None:
            continue
        following = _NEXT_PARAMETER.search(rest, found.end())
        stop = following.start() if following else len(rest)
        taken[key] = unquote(rest[found.end() : stop])
        if found.group(1) == "?":  # the next parameter, if any, comes first now
            rest = rest[: found.start()] + ("?" + rest[stop + 1 :] if following else "")
        else:
            rest = rest[: found.start()] + rest[stop:]
    at = rest.rfind("@")
    password = None
    if at >= 0:
        user, colon, secret = rest[:at].partition(":")
        if colon:
            password = unquote(secret)
            rest = (f"{user}@" if user else "") + rest[at + 1 :]
    return ConnectionSecrets(
        url=head + rest,
        password=taken.get("password", password),
        sslpassword=taken.get("sslpassword"),
    )


def _url_rest(rest: str, scheme: str) -> str:
    """What follows a URL's scheme, up to the next URL: passwords in its query, in keyword
    strings after it, then in its user information."""
    rest = _keywords(_queries(rest))
    done = _REDACTED.match(rest)
    at = done.end() - 1 if done else rest.rfind("@")
    if at < 0:
        return _port_like(rest)
    userinfo = rest[:at]
    user, colon, _ = userinfo.partition(":")
    if colon and _PLAIN_USER.fullmatch(user):
        shown = f"{user}:{MASK}"
    elif not colon and scheme.rstrip(":/").lower() in _USER_SCHEMES and _PLAIN_USER.fullmatch(user):
        shown = user  # amqp://guest@mq/: a user name without a password
    else:
        shown = MASK  # https://TOKEN@host/, or user information we cannot split
    return f"{shown}@{rest[at + 1 :]}"


def _port_like(rest: str) -> str:
    """A host part without ``@`` whose "port" is no number: ``guest:gu`` of ``amqp://guest:gu``
    (a URL cut short) is a user and the start of a password."""
    authority = _AUTHORITY.match(rest)
    assert authority is not None  # it matches the empty string
    entries = authority.group().split(",")  # libpq: several hosts
    changed = False
    for index, entry in enumerate(entries):
        host, colon, port = entry.partition(":")
        if colon and port and not port.isdigit():
            entries[index] = f"{host}:{MASK}"
            changed = True
    if not changed:
        return rest
    return ",".join(entries) + rest[authority.end() :]


def _queries(text: str) -> str:
    """``?password=...`` and ``&sslpassword=...``, each up to the next ``&name=``."""
    pieces = []
    position = 0
    while (found := _QUERY_PASSWORD.search(text, position)) is not None:
        pieces += [text[position : found.end()], MASK]
        if done := _DONE.match(text, found.end()):
            position = done.end()
            continue
        following = _NEXT_PARAMETER.search(text, found.end())
        position = following.start() if following else len(text)
    return "".join(pieces) + text[position:] if pieces else text


def _keywords(text: str) -> str:
    """libpq's ``password=value`` and ``password='quoted value'``."""
    pieces = []
    position = 0
    while (found := _KEYWORD_PASSWORD.search(text, position)) is not None:
        value = (_QUOTED if text.startswith("'", found.end()) else _UNQUOTED).match(
            text, found.end()
        )
        assert value is not None  # both match at least the empty string or the quote
        pieces += [text[position : found.end()], MASK]
        position = value.end()
    return "".join(pieces) + text[position:] if pieces else text
