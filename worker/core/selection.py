"""The finding filter (DTRACK_WORKER_FILTER): a CEL expression over each finding event, the
language DT 5 uses for its own notification filters.

It is compiled at start-up and tried on a complete example of each kind of finding event
(snapshot and change): a syntax error, a field that exists in neither, an operation on the wrong
type or a result that is not a boolean stops the service before the first job (ConfigError,
with the position CEL reports). One that holds for one kind only (``data.change.kind``) is
accepted. At run time any error of the evaluation is the event's: a failed Verdict with its
reason, and the event is published. It decides what is published, never what is recorded:
changing it never invents transitions.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
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
        "dataschema": "urn:dtrack-worker:schema:finding-change:1.2.0",
        "sequence": "7",
        "data": copy.deepcopy(_FINDING) | {"change": dict(_CHANGE)},
    }
    return [snapshot, change]


def line_examples() -> list[dict[str, Any]]:
    """A complete finding-change.v2 event (a line finding's change), for a filter on what
    ``dtrack-worker diff --by line`` prints."""
    data = {key: value for key, value in copy.deepcopy(_FINDING).items() if key != "finding_key"}
    identity = {
        "finding_id": "2f6d1c0e-5b7a-5e3c-9d1f-0a4b8c6e2d13",
        "line": {
            "id": "7a1b2c3d-4e5f-5a6b-8c7d-9e0f1a2b3c4d",
            "key": "https:%2F%2Fdtrack.example.org//example",
            "group": "",
            "name": "example",
            "track": None,
        },
        "package": {"key": "pkg:npm/lodash", "kind": "purl", "problem": None},
        "vulnerability_id": "CVE-2021-23337",
        "aliases": ["CVE-2021-23337", "GHSA-35jh-r3h4-6jhm"],
        "matrix": "p:c:v",
        "instances": [
            {
                "matrix": "p:c:v",
                "project_uuid": "8c2c7ad0-3b9e-4a52-9b0f-5f3c0e2a1d11",
                "project_version": "1.0",
                "component_uuid": "1f0e7a2e-6d8b-4c1e-8a8f-2f7e4d3c2b10",
                "component_version": "4.17.20",
                "purl": "pkg:npm/lodash@4.17.20",
                "vulnerability_uuid": "6a3e1c9b-2f4d-4e8a-9b7c-1d2e3f4a5b6c",
                "source": "NVD",
                "vuln_id": "CVE-2021-23337",
            }
        ],
    }
    change = dict(_CHANGE) | {
        "changes": [{"field": "component.version", "old": "4.17.19", "new": "4.17.20"}],
        "merged_into": None,
        "analysis_lost_in_dt": False,
    }
    return [
        {
            "specversion": "1.0",
            "id": "0b1c2d3e-4f50-5a6b-8c7d-9e0f1a2b3c4e",
            "source": "https://dtrack.example.org",
            "type": "dtrack-worker.finding.changed.v2",
            "subject": identity["finding_id"],
            "time": "2026-12-01T00:00:00.000Z",
            "datacontenttype": "application/json",
            "dataschema": "urn:dtrack-worker:schema:finding-change:2.0.0",
            "sequence": "00000000000000000007",
            "data": identity | data | {"change": change},
        }
    ]


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """What the filter says of one event: PASSED, FILTERED_OUT, or FAILED with its reason (a
    name from REASONS; the error's own text is never kept: it can quote the event)."""

    outcome: str
    reason: str = ""


# Why an evaluation failed; every such event is published (docs/events.md).
REASONS = {
    "missing_field": "a field the expression names is not in the event (guard with has())",
    "index_out_of_range": "an index past the end of a list",
    "division_by_zero": "a division or modulo by zero",
    "overflow": "an integer overflow, or a conversion out of range",
    "wrong_type": "an operation on a value of the wrong type (a null, say)",
    "function_error": "a function that failed on its argument, or that CEL does not have",
    "not_boolean": "a result that is not true or false",
    "evaluation_error": "another error of the evaluation",
    "over_budget": "the evaluation took longer than DTRACK_WORKER_FILTER_BUDGET_MS",
    "evaluator_failed": "the process that evaluates the filter failed",
}
PASS, FILTER_OUT = Verdict(PASSED), Verdict(FILTERED_OUT)
FAILURES = {reason: Verdict(FAILED, reason) for reason in REASONS}
VERDICTS = (PASS, FILTER_OUT, *FAILURES.values())  # every verdict there is, in a fixed order

# What CEL raises, by the reason it means (the most specific first: IndexError and KeyError
# are both LookupErrors, ZeroDivisionError and OverflowError both ArithmeticErrors).
_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (KeyError, "missing_field"),
    (IndexError, "index_out_of_range"),
    (ZeroDivisionError, "division_by_zero"),
    (OverflowError, "overflow"),
    (TypeError, "wrong_type"),
    (RuntimeError, "function_error"),
)
# Errors that depend on the values of an event, not on its shape: an example event cannot
# show the expression wrong by failing with one of these.
_VALUE_ERRORS = frozenset({"index_out_of_range", "division_by_zero", "overflow"})


def reason_of(exc: Exception) -> str:
    for kind, reason in _ERRORS:
        if isinstance(exc, kind):
            return reason
    return "evaluation_error"


@dataclasses.dataclass(frozen=True, slots=True)
class Unevaluable:
    """An example event the expression fails on, though it was accepted (it holds for the
    other kind, or fails only for the example's values)."""

    type: str
    problem: str


class Filter:
    """A compiled DTRACK_WORKER_FILTER; ``judge`` says whether an event is published."""

    def __init__(
        self,
        expression: str,
        *,
        name: str = "DTRACK_WORKER_FILTER",
        tried: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """``tried``: example events of what will be judged (``examples()`` by default: what
        the workers publish)."""
        import cel  # 140 ms to import: only when a filter is set, not for every command

        self.expression = expression
        try:
            self._program = cel.compile(expression)
        except ValueError as exc:
            raise ConfigError(f"{name} does not compile: {_first_lines(exc)}") from None
        # the names it uses: CEL converts every value it is given, ~3 us a string or a map,
        # so an event's attributes it never reads are not given (data alone, often)
        self._names = tuple(self._program.variables())
        self.unevaluable = self._check(name, examples() if tried is None else tried)

    def _check(self, name: str, tried: Sequence[Mapping[str, Any]]) -> tuple[Unevaluable, ...]:
        """Refuse an expression that cannot say true or false of any example event (a
        filter on ``data.change`` alone holds for change events: accepted)."""
        failures: list[tuple[str, Exception]] = []
        for example in tried:
            try:
                result = self._program.execute(self._variables(example))
            except Exception as exc:  # whatever CEL raises: IndexError, OverflowError...
                failures.append((example["type"], exc))
                continue
            if not isinstance(result, bool):
                raise ConfigError(
                    f"{name} must be true or false for an event, not "
                    f"{type(result).__name__} ({result!r})"
                )
        if len(failures) == len(tried):
            for type_, error in failures:
                if reason_of(error) not in _VALUE_ERRORS:
                    raise ConfigError(
                        f"{name} fails on a {type_} event: {_problem(error)} "
                        "(the fields: docs/events.md)"
                    )
        return tuple(Unevaluable(type_, _problem(error)) for type_, error in failures)

    def judge(self, event: Mapping[str, Any]) -> Verdict:
        """PASS, FILTER_OUT, or a failure with its reason when the expression cannot say
        true or false of this event: such an event is published, never lost."""
        try:
            result = self._program.execute(self._variables(event))
        except Exception as exc:  # any error of the evaluation is the event's, never ours
            return FAILURES[reason_of(exc)]
        if result is True:
            return PASS
        if result is False:
            return FILTER_OUT
        return FAILURES["not_boolean"]

    def _variables(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The CloudEvent's attributes and ``data`` the expression names, as its variables."""
        return {name: event[name] for name in self._names if name in event}


def _first_lines(exc: Exception) -> str:
    """CEL's message: the error with its line:column, and the caret under the expression."""
    return str(exc).replace("Failed to parse expression", "cannot parse").strip()


def _problem(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no field {exc.args[0]!r}"
    return str(exc).split(". CEL does not coerce", 1)[0]
