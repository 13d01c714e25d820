"""The finding filter (DTRACK_WORKER_FILTER): a CEL expression over each finding event, the
language DT 5 uses for its own notification filters.

It is compiled at start-up and tried on a complete example of each kind of finding event, so a
syntax error, a field that does not exist or an operation on the wrong type stops the service
before the first job (ConfigError, with the position CEL reports), and a result that is not a
boolean too. It decides what is published, never what is recorded: changing it never invents
transitions.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from worker.core.errors import ConfigError

PASSED, FILTERED_OUT, FAILED = "passed", "filtered_out", "error"

_FINDING = {
    "finding_key": "p:c:v",
    "project": {
        "uuid": "8c2c7ad0-3b9e-4a52-9b0f-5f3c0e2a1d11",
        "name": "example",
        "version": "1.0",
        "tags": ["team-a"],
        "active": True,
    },
    "component": {
        "uuid": "1f0e7a2e-6d8b-4c1e-8a8f-2f7e4d3c2b10",
        "name": "lodash",
        "group": None,
        "version": "4.17.20",
        "purl": "pkg:npm/lodash@4.17.20",
        "cpe": None,
        "latest_version": "4.17.21",
        "scope": "required",
    },
    "vulnerability": {
        "uuid": "6a3e1c9b-2f4d-4e8a-9b7c-1d2e3f4a5b6c",
        "source": "NVD",
        "id": "CVE-2021-23337",
        "aliases": ["GHSA-35jh-r3h4-6jhm"],
        "title": None,
        "subtitle": None,
        "description": "Command injection via template.",
        "recommendation": None,
        "references": None,
        "severity": "high",
        "severity_rank": 1,
        "cvss": {
            "v2": {"score": 6.5, "vector": "AV:N/AC:L/Au:S/C:P/I:P/A:P"},
            "v3": {"score": 7.2, "vector": "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"},
            "v4": {"score": None, "vector": None},
        },
        "owasp_rr": {
            "likelihood": None,
            "technical_impact": None,
            "business_impact": None,
            "vector": None,
        },
        "epss": {"score": 0.0123, "percentile": 0.85},
        "cwes": [94],
        "published": "2021-02-15T13:15:12.000Z",
        "kev": False,
    },
    "analysis": {"state": None, "suppressed": False, "detail": None},
    "attribution": {
        "analyzer": "INTERNAL_ANALYZER",
        "attributed_on": "2026-11-20T10:00:00.000Z",
        "alternate_identifier": None,
        "reference_url": None,
    },
    "fpf": {"version": "1.2", "dt_version": "4.14.1", "exported_at": "2026-12-01T00:00:00.000Z"},
}
_CHANGE = {
    "kind": "changed",
    "previous_status": "open",
    "changes": [{"field": "severity", "old": "medium", "new": "high"}],
    "reason": None,
    "resync": False,
    "first_seen": "2026-11-20T10:00:00.000Z",
    "opened_at": "2026-11-20T10:00:00.000Z",
    "resolved_at": None,
    "time_open_seconds": None,
}


def examples() -> list[dict[str, Any]]:
    """A complete finding event and a complete change event (the filter is tried on both)."""
    attributes = {
        "specversion": "1.0",
        "id": "0b1c2d3e-4f50-5a6b-8c7d-9e0f1a2b3c4d",
        "source": "https://dtrack.example.org",
        "subject": "p:c:v",
        "time": "2026-12-01T00:00:00.000Z",
        "datacontenttype": "application/json",
    }
    snapshot = attributes | {
        "type": "dtrack-worker.finding.v1",
        "dataschema": "urn:dtrack-worker:schema:finding-event:1.1.0",
        "data": copy.deepcopy(_FINDING),
    }
    change = attributes | {
        "type": "dtrack-worker.finding.changed.v1",
        "dataschema": "urn:dtrack-worker:schema:finding-change:1.1.0",
        "sequence": "7",
        "data": copy.deepcopy(_FINDING) | {"change": dict(_CHANGE)},
    }
    return [snapshot, change]


class Filter:
    """A compiled DTRACK_WORKER_FILTER; ``matches`` says whether an event is published."""

    def __init__(self, expression: str, *, name: str = "DTRACK_WORKER_FILTER") -> None:
        import cel  # 140 ms to import: only when a filter is set, not for every command

        self.expression = expression
        try:
            self._program = cel.compile(expression)
        except ValueError as exc:
            raise ConfigError(f"{name} does not compile: {_first_lines(exc)}") from None
        for example in examples():
            try:
                result = self._program.execute(_variables(example))
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise ConfigError(
                    f"{name} fails on a {example['type']} event: "
                    f"{_problem(exc)} (the fields: docs/events.md)"
                ) from None
            if not isinstance(result, bool):
                raise ConfigError(
                    f"{name} must be true or false for an event, not "
                    f"{type(result).__name__} ({result!r})"
                )

    def matches(self, event: Mapping[str, Any]) -> str:
        """PASSED, FILTERED_OUT, or FAILED when it cannot be evaluated on this event (a null
        where the expression expects a value): such an event is published, never lost."""
        try:
            result = self._program.execute(_variables(event))
        except (KeyError, TypeError, ValueError, RuntimeError):
            return FAILED
        return PASSED if result is True else FILTERED_OUT


def _variables(event: Mapping[str, Any]) -> dict[str, Any]:
    """The CloudEvent's attributes and ``data``, as top-level names of the expression."""
    return dict(event)


def _first_lines(exc: Exception) -> str:
    """CEL's message: the error with its line:column, and the caret under the expression."""
    return str(exc).replace("Failed to parse expression", "cannot parse").strip()


def _problem(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no field {exc.args[0]!r}"
    return str(exc).split(". CEL does not coerce", 1)[0]
