"""FPF bytes -> parsed -> validated -> normalized finding events. Pure: no I/O, no clock.

Real exports differ from the FPF docs (see ``docs/events.md``, "What the export really holds"):
absent means null, numbers lose their fraction, aliases come in two shapes, CWEs in two places,
and DT 4.x dates carry no zone. Everything below reads a document the FPF contract has accepted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, tzinfo
from typing import Any, TypeVar

import orjson

from worker.core import finding, split, urls
from worker.core.dates import instant
from worker.core.errors import InvalidExport, Problem
from worker.core.events import (
    DEFAULT_SOURCE,
    Event,
    EventIds,
)
from worker.core.validation import Contract, excerpt, json_type

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectFacts:
    """What DT says of a project that its export does not: its tags and whether it is active;
    None where that is not known."""

    tags: list[str] | None = None
    active: bool | None = None


UNKNOWN = ProjectFacts()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Export:
    """One project's validated export: what it is, and its findings as events.

    Exports read in runs (``worker.split``, the usual way) carry their events already made:
    the runs' parsed findings are not kept. An export parsed whole makes its events on demand
    from the parsed findings, one at a time. A streamed export (``process``) makes them from
    its runs again as they are read, once.
    """

    project_uuid: str
    project_name: str
    project_version: str | None
    fpf_version: str
    dt_version: str
    exported_at: str
    source: str
    finding_count: int
    repeated_rows: int  # rows listing a finding again under another attribution (folded)
    _findings: tuple[Mapping[str, Any], ...] = dataclasses.field(repr=False, default=())
    _made: Iterable[Event] | None = dataclasses.field(repr=False, default=None)
    _zone: tzinfo = dataclasses.field(repr=False, default=UTC)

    def project(self, facts: ProjectFacts = UNKNOWN) -> dict[str, Any]:
        """The project in events: the export's identity, and what DT says of it elsewhere."""
        return {
            "uuid": self.project_uuid,
            "name": self.project_name,
            "version": self.project_version,
            "tags": facts.tags,
            "active": facts.active,
        }

    def events(self, severities: dict[str, int] | None = None) -> Iterator[Event]:
        """The findings' events; counts them by severity into ``severities``."""
        for event in self._made if self._made is not None else self._make(self._findings):
            if severities is not None:
                severity = event.routing_key.removeprefix("finding.")
                severities[severity] = severities.get(severity, 0) + 1
            yield event

    def _make(
        self, findings: Iterable[Mapping[str, Any]], facts: ProjectFacts = UNKNOWN
    ) -> Iterator[Event]:
        envelope = finding.Envelope(
            source=self.source,
            exported_at=self.exported_at,
            project=self.project(facts),
            fpf={
                "version": self.fpf_version,
                "dt_version": self.dt_version,
                "exported_at": self.exported_at,
            },
        )
        event_id = EventIds(self.source, self.project_uuid, self.exported_at)
        zone = self._zone
        make = finding.event
        for row in findings:
            yield make(row, envelope, event_id, zone)


# what a caller makes of an export's rows: events, or a comparison with the state store
Make = Callable[[Export, Sequence[Mapping[str, Any]]], Iterable[T]]


def parse(raw: split.Raw) -> dict[str, Any]:
    """The export as a JSON object, or InvalidExport saying why not."""
    try:
        with memoryview(raw) as text:  # a mapped file is read in place
            document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidExport(
            "export is not valid JSON", problems=(Problem("", str(exc), _head(raw)),)
        ) from exc
    if not isinstance(document, dict):
        raise InvalidExport(
            "export is not a JSON object",
            problems=(Problem("", f"top level is {json_type(document)}", excerpt(document)),),
        )
    return document


def _head(raw: split.Raw) -> str:
    text = raw[:60].decode("utf-8", "replace")
    return text + ("..." if len(raw) > 60 else "")


def process(
    raw: split.Raw,
    contract: Contract,
    *,
    source: str | None = None,
    zone: tzinfo = UTC,
    project: str | None = None,
    facts: ProjectFacts = UNKNOWN,
    run_bytes: int = split.RUN_BYTES,
    release: split.Release = split.keep,
    streamed: bool = False,
) -> Export:
    """The whole pure pipeline: parse, validate against ``contract``, normalize.

    ``project``: the project the export must be about (a worker's job); an export of another
    project, or with a finding of another, is refused. ``facts``: the project's tags and
    activity, which the export does not carry. The findings are read in runs of about
    ``run_bytes`` (see ``worker.split``); the result is the same as for the whole document,
    only faster and in less memory. ``release`` is told how far the text has been read.

    ``streamed``: in two passes, for a text that stays as it is until the events are read (a
    spool): every run is validated here, then ``events()`` (once) parses each run again and
    makes its events as they are read. Only the run at hand is held, never all the events;
    an invalid export still makes none (InvalidExport comes from here).
    """
    export, made = read(
        raw,
        contract,
        _nothing if streamed else lambda described, rows: described._make(rows, facts),
        source=source,
        zone=zone,
        project=project,
        run_bytes=run_bytes,
        release=release,
    )
    if not streamed:
        return dataclasses.replace(export, _made=tuple(made))
    if export._findings:  # its findings could not be read in runs: parsed whole, they are here
        return dataclasses.replace(export, _made=export._make(export._findings, facts))
    return dataclasses.replace(export, _made=_again(raw, run_bytes, export, facts, release))


def _nothing(_: Export, rows: Sequence[Mapping[str, Any]]) -> tuple[Event, ...]:
    return ()


def _again(
    raw: split.Raw, run_bytes: int, export: Export, facts: ProjectFacts, release: split.Release
) -> Iterator[Event]:
    """The second pass of a streamed ``process``: the same runs (the same text cut the same
    way), each finding key's first row made into its event."""
    pieces = split.split(raw, run_bytes, release)
    if pieces is None:  # no findings (the whole-document way had none either)
        return
    keys: set[str] = set()
    for run in pieces.runs:
        findings = pieces.findings(run)
        release(run[1])
        yield from export._make(_firsts(findings, keys), facts)


def _firsts(rows: Iterable[Mapping[str, Any]], keys: set[str]) -> list[Mapping[str, Any]]:
    """Each finding key's first row (one event per key, see normalize), ``keys`` the keys
    of the runs before."""
    firsts = []
    for row in rows:
        key = row["matrix"]
        if key not in keys:
            keys.add(key)
            firsts.append(row)
    return firsts


def read(
    raw: split.Raw,
    contract: Contract,
    make: Make[T],
    *,
    source: str | None = None,
    zone: tzinfo = UTC,
    project: str | None = None,
    run_bytes: int = split.RUN_BYTES,
    release: split.Release = split.keep,
) -> tuple[Export, list[T]]:
    """Parse and validate ``raw``, handing each finding key's first row to ``make``.

    ``make(export, rows)`` turns the rows into what the caller needs (serialized events, or a
    state comparison); nothing it returned is given back unless the whole export passed.
    ``release(offset)``: the text before ``offset`` has been parsed (see ``split.Release``).
    """
    pieces = split.split(raw, run_bytes, release)
    if pieces is not None:
        _refuse_duplicated_keys(pieces.duplicated_keys)
        outcome = _process_runs(pieces, contract, source, zone, project, make, release)
        if outcome is not None:
            export, made, misfiled = outcome
            _check_project(project, export.project_uuid, misfiled)
            return export, made
    # unsplittable, or a run was refused: the whole document, which also gives the precise report
    document = parse(raw)
    contract.check(document, InvalidExport, "FPF export")
    if pieces is None:  # the head could not be told apart: any repeated key is refused
        _refuse_duplicated_keys(split.duplicated_keys(raw))
    _check_project(project, document["project"]["uuid"], _misfiled(document["findings"], project))
    export = normalize(document, source=source, zone=zone)
    return export, list(make(export, export._findings))


def _refuse_duplicated_keys(keys: tuple[str, ...]) -> None:
    if keys:
        raise InvalidExport(
            "export names a key twice in one object: which value counts is undefined",
            problems=tuple(Problem("", f'duplicated key "{key}"') for key in keys),
        )


def _misfiled(
    rows: Iterable[Mapping[str, Any]], project: str | None, start: int = 0
) -> tuple[int, str] | None:
    """The first finding (index, key) whose key names another project than ``project``."""
    if project is None:
        return None
    prefix = project + ":"
    for index, row in enumerate(rows, start):
        key: str = row["matrix"]
        if not key.startswith(prefix) and key[: len(prefix)].lower() != prefix:
            return index, key
    return None


def _check_project(expected: str | None, actual: str, misfiled: tuple[int, str] | None) -> None:
    """InvalidExport unless the export, and each of its findings, is about ``expected``."""
    if expected is None:
        return
    if actual.lower() != expected:
        raise InvalidExport(
            f"export is for another project: the job is for {expected}, the export for {actual}",
            problems=(Problem("/project/uuid", f"expected {expected}", excerpt(actual)),),
        )
    if misfiled is not None:
        index, key = misfiled
        raise InvalidExport(
            f"export holds a finding of another project: the job is for {expected}",
            problems=(
                Problem(f"/findings/{index}/matrix", f"expected {expected}:...", excerpt(key)),
            ),
        )


def _process_runs(
    pieces: split.Pieces,
    contract: Contract,
    source: str | None,
    zone: tzinfo,
    project: str | None,
    make: Make[T],
    release: split.Release,
) -> tuple[Export, list[T], tuple[int, str] | None] | None:
    """The export read run by run, each run validated with the head; None if one is refused.

    The contract has no rule across findings (a test holds it to that), so the runs together
    pass exactly when the whole document does. Nothing leaves before every run has passed.
    Also returns the first finding (index, key) of a project other than ``project``.
    """
    described: Export | None = None
    made: list[T] = []
    keys: set[str] = set()
    rows = 0
    misfiled: tuple[int, str] | None = None
    for run in pieces.runs:
        try:
            findings = pieces.findings(run)
        except orjson.JSONDecodeError:
            return None
        release(run[1])  # parsed: its text is no longer needed, unless the runs fail
        if not contract.is_valid({**pieces.head, "findings": findings}):
            return None
        if described is None:
            try:
                described = _described(pieces.head, source, zone, finding_count=0, repeated_rows=0)
            except InvalidExport:  # the whole document's way reports schema problems first
                return None
        if misfiled is None:
            misfiled = _misfiled(findings, project, rows)
        rows += len(findings)
        made.extend(make(described, _firsts(findings, keys)))
    if described is None:
        return None
    export = dataclasses.replace(described, finding_count=len(keys), repeated_rows=rows - len(keys))
    return export, made, misfiled


def normalize(
    document: Mapping[str, Any], *, source: str | None = None, zone: tzinfo = UTC
) -> Export:
    """Events for a schema-valid export.

    ``source`` names the DT instance (else the export's ``meta.baseUrl``); ``zone`` is the DT
    server's time zone, applied to the zone-less dates DT 4.x writes.
    """
    # DT lists a finding once per attribution (two analyzers, two rows, one matrix): one event
    # per finding key, carrying the first row's attribution.
    rows = document["findings"]
    firsts: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        firsts.setdefault(row["matrix"], row)
    return _described(
        document,
        source,
        zone,
        finding_count=len(firsts),
        repeated_rows=len(rows) - len(firsts),
        findings=tuple(firsts.values()),
    )


def _described(
    document: Mapping[str, Any],
    source: str | None,
    zone: tzinfo,
    *,
    finding_count: int,
    repeated_rows: int,
    findings: tuple[Mapping[str, Any], ...] = (),
) -> Export:
    """The export's identity from its head (everything but the findings)."""
    meta, project = document["meta"], document["project"]
    source = (
        urls.without_userinfo(source or meta.get("baseUrl") or DEFAULT_SOURCE) or DEFAULT_SOURCE
    )
    exported_at = instant(meta["timestamp"], zone)
    if exported_at is None:  # a calendar-impossible date the pattern let through
        raise InvalidExport(
            "export has no usable timestamp",
            problems=(Problem("/meta/timestamp", "not a real date", excerpt(meta["timestamp"])),),
        )
    return Export(
        project_uuid=project["uuid"],
        project_name=project["name"],
        project_version=project.get("version"),
        fpf_version=document["version"],
        dt_version=meta["version"],
        exported_at=exported_at,
        source=source,
        finding_count=finding_count,
        repeated_rows=repeated_rows,
        _findings=findings,
        _zone=zone,
    )
