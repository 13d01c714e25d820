"""Contracts: one bundled JSON Schema, checked fast on the hot path and explained on failure.

The compiled validator (jsonschema-rs) answers "valid or not" for every document. Only when it
says no does ``jsonschema`` walk the document again to produce the human report: a JSON Pointer,
a message and a short excerpt of the offending value for each problem.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import jsonschema_rs
import orjson

from worker.core.errors import InvalidDocument, Problem

if TYPE_CHECKING:
    import jsonschema

MAX_PROBLEMS = 20
_EXCERPT_CHARS = 80
_MESSAGE_CHARS = 300


class Contract:
    """A JSON Schema (2020-12) with its ``$id`` and version, compiled once.

    jsonschema (about 80 ms to import, and as much to check six schemas against the meta-schema)
    is loaded only for a report: the compiled validator checks the schema itself, and refuses
    one that breaks its draft's meta-schema (tests/test_validation.py checks the bundled ones
    with jsonschema too).
    """

    __slots__ = ("_fast", "_reporter", "id", "schema", "version")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.id: str = schema["$id"]
        self.version: str = schema["x-schema-version"]
        self._fast = jsonschema_rs.validator_for(schema)
        self._reporter: jsonschema.Draft202012Validator | None = None  # made for the first report

    def is_valid(self, document: object) -> bool:
        return bool(self._fast.is_valid(document))

    def problems(self, document: object, *, limit: int = MAX_PROBLEMS) -> tuple[Problem, ...]:
        """The human report; the slow path, for documents already found invalid."""
        if self._reporter is None:
            self._reporter = _reporter_class()(self.schema)
        errors = sorted(self._reporter.iter_errors(document), key=_error_order)
        return tuple(_problem(error) for error in errors[:limit])

    def check(self, document: object, error: type[InvalidDocument], what: str) -> None:
        """Raise ``error`` with the report when ``document`` breaks this contract."""
        if self.is_valid(document):
            return
        problems = self.problems(document) or (
            Problem("", "rejected by the compiled validator; jsonschema found no detail"),
        )
        raise error(f"{what} does not match schema {self.id}", problems=problems)


def _ecma_pattern(
    validator: jsonschema.protocols.Validator, pattern: str, instance: object, schema: object
) -> Iterator[jsonschema.ValidationError]:
    """``pattern`` as ECMA-262 (and jsonschema-rs) read it: a final ``$`` is the very end.

    Python's ``$`` also matches before a trailing newline, so "1.3\\n" would pass here and
    fail on the hot path.
    """
    import jsonschema  # a report is being made: see Contract

    if not isinstance(instance, str):
        return
    if _search(pattern, instance) is None:
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _search(pattern: str, text: str) -> re.Match[str] | None:
    return _compiled(pattern).search(text)


def prepare_reports() -> None:
    """Import jsonschema now: for a service, whose first invalid document should not stall its
    event loop for the import."""
    _reporter_class()


@functools.cache
def _reporter_class() -> type[jsonschema.Draft202012Validator]:
    import jsonschema  # a report is being made, or prepared: see Contract

    extended: type[jsonschema.Draft202012Validator] = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        jsonschema.Draft202012Validator, {"pattern": _ecma_pattern}
    )
    return extended


def _error_order(error: jsonschema.ValidationError) -> tuple[int, str]:
    return (len(error.absolute_path), _pointer(error.absolute_path))


def _pointer(path: Iterable[str | int]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _problem(error: jsonschema.ValidationError) -> Problem:
    # for a missing or unexpected key the value is the whole parent object: no use to show
    about_keys = error.validator in ("required", "additionalProperties")
    pointer = _pointer(error.absolute_path)
    return Problem(
        pointer=pointer,
        message=_message(error)[:_MESSAGE_CHARS],
        # an analyst's detail of the wrong type is still their text
        excerpt="" if about_keys or pointer.endswith("/detail") else excerpt(error.instance),
    )


def excerpt(value: object) -> str:
    """The value as short JSON text, cut to a readable length; an analyst's ``detail`` in it
    is withheld (free text: reports end up in logs and parked messages)."""
    try:
        text = orjson.dumps(_withheld(value)).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 3] + "..."


def _withheld(value: object) -> object:
    if isinstance(value, dict):
        return {
            key: "(withheld)" if key == "detail" and item is not None else _withheld(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_withheld(item) for item in value]
    return value


_JSON_TYPES = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type."""
    if value is None:
        return "null"
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), "unknown")


def _message(error: jsonschema.ValidationError) -> str:  # noqa: C901 - one branch per keyword
    keyword, value = error.validator, error.instance
    expected: Any = error.validator_value
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if keyword == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return f"expected {' or '.join(kinds)}, not {json_type(value)}"
    if keyword == "required" and isinstance(value, dict):
        missing = [key for key in expected if key not in value]
        return "missing required key " + ", ".join(f'"{key}"' for key in missing)
    if keyword == "enum":
        return "expected one of " + ", ".join(excerpt(option) for option in expected)
    if keyword == "const":
        return f"expected {excerpt(expected)}"
    if keyword == "pattern":
        return f"does not match the pattern {expected}"
    if keyword in ("minimum", "maximum"):
        return f"must be {'at least' if keyword == 'minimum' else 'at most'} {expected}"
    if keyword == "maxLength":
        return f"must be at most {expected} characters"
    if keyword == "minLength":
        return "must not be empty" if expected == 1 else f"must be at least {expected} characters"
    if keyword == "additionalProperties" and isinstance(value, dict):
        known = schema.get("properties", {})
        extra = sorted(key for key in value if key not in known)
        return "unexpected key " + ", ".join(f'"{key}"' for key in extra)
    if keyword in ("oneOf", "anyOf"):
        hint = schema.get("description")
        return f"matches none of the allowed forms{': ' + hint if hint else ''}"
    return str(error.message)
