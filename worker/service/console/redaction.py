"""Nothing the console renders shows a secret: every value a template prints passes here.

Two passes: the configured secrets' values (and the passwords inside the configured URLs) are
replaced wherever they occur, then every URL in the text goes through the project's one URL
redaction, so a password in a URL nobody configured is hidden too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

from worker.core import urls
from worker.core.config import Settings

HIDDEN = "***"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
_MIN_SECRET = 4  # shorter values would blank out ordinary words


def redact_url(url: str) -> str:
    """The one call of the project's URL redaction (worker.core.urls)."""
    return urls.redact(url)


class Scrubber:
    def __init__(self, secrets: Iterable[str]) -> None:
        found = {value for value in secrets if len(value) >= _MIN_SECRET}
        found |= {unquote(value) for value in found}
        self._secrets = sorted(found, key=len, reverse=True)  # the longest first

    @classmethod
    def of(cls, settings: Settings, *extra: str) -> Scrubber:
        return cls([*extra, *settings.secret_values()])  # the log lines' list: one source

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, HIDDEN)
        if "://" in text:
            text = _URL.sub(lambda match: redact_url(match.group(0)), text)
        return text

    def finalize(self, value: object) -> object:
        """Jinja's ``finalize``: every printed string, before it is escaped."""
        return self(value) if isinstance(value, str) else value
