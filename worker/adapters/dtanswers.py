"""What Dependency-Track's answers mean: its error statuses as the errors callers see, a page
of projects checked, X-Total-Count read, and whether /api/version is DT's."""

from __future__ import annotations

import re
from typing import Any

import orjson

from worker.adapters import dthttp
from worker.core.errors import DtMisconfigured, DtRejected

_DT_NAMES = re.compile(r"dependency[- ]?track|hyades", re.IGNORECASE)


def failure(status: int, retry_after: str | None, text: str, path: str) -> Exception:
    if status in dthttp.RETRYABLE_STATUSES:
        return dthttp.retry_for(status, retry_after, path)
    if status == 401:
        return DtRejected(
            "DT answered 401: the API key (DTRACK_WORKER_DT_API_KEY) is missing, wrong or revoked",
            status=status,
        )
    if status == 403:
        detail = f" ({text.strip()[:120]})" if text.strip() else ""
        return DtRejected(
            "DT answered 403: the API key's team lacks VIEW_VULNERABILITY, or portfolio "
            f"access control keeps it from this project{detail}",
            status=status,
        )
    return DtRejected(f"GET /{path}: DT answered {status}: {text.strip()[:120]}", status=status)


def peek(body: bytes) -> str:
    return body[:120].decode("utf-8", "replace")


def is_dt(about: dict[str, Any]) -> bool:
    framework = about.get("framework")
    return bool(
        _DT_NAMES.search(str(about.get("application", "")))
        or (isinstance(framework, dict) and framework.get("name") == "Alpine")
    )


def projects(body: bytes, path: str) -> list[dict[str, Any]]:
    """A page of projects, or DtMisconfigured saying what came instead."""
    try:
        page = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise DtMisconfigured(
            f"GET /{path} answered 200 with something that is not JSON ({peek(body)!r}): "
            "is DTRACK_WORKER_DT_URL Dependency-Track's API server?"
        ) from None
    if not isinstance(page, list):
        raise DtMisconfigured(
            f"GET /{path} answered a JSON {type(page).__name__}, not a list of projects: "
            "is DTRACK_WORKER_DT_URL Dependency-Track's API server?"
        )
    for index, project in enumerate(page):
        if not isinstance(project, dict) or not isinstance(project.get("uuid"), str):
            raise DtMisconfigured(
                f"GET /{path}: item {index} is not a project with a uuid "
                f"({orjson.dumps(project)[:80].decode()})"
            )
    return page


def total(header: str | None, path: str) -> int | None:
    if header is None:
        return None
    if not header.strip().isdigit():
        raise DtMisconfigured(f"GET /{path}: X-Total-Count is {header[:40]!r}, not a number")
    return int(header)
