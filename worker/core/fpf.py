"""FPF bytes -> parsed -> validated -> normalized finding events. Pure: no I/O, no clock.

Real exports differ from the FPF docs (see ``docs/events.md``, "What the export really holds"):
absent means null, numbers lose their fraction, aliases come in two shapes, CWEs in two places,
and DT 4.x dates carry no zone. Everything below reads a document the FPF contract has accepted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, tzinfo
from typing import Any

import orjson
from orjson import dumps

from worker.core import split
from worker.core.dates import instant
from worker.core.errors import InvalidExport, Problem
from worker.core.events import (
    DATA_CONTENT_TYPE,
    DEFAULT_SOURCE,
    FINDING_EVENT_SCHEMA,
    FINDING_EVENT_TYPE,
    SEVERITY_RANK,
    SPEC_VERSION,
    Event,
    EventIds,
    finding_routing_key,
)
from worker.core.validation import Contract, excerpt, json_type


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Export:
    """One project's validated export: what it is, and its findings as events.

    Exports read in runs (``worker.split``, the usual way) carry their events already made:
    the runs' parsed findings are not kept. An export parsed whole makes its events on demand
    from the parsed findings, one at a time.
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
    _made: tuple[Event, ...] | None = dataclasses.field(repr=False, default=None)
    _zone: tzinfo = dataclasses.field(repr=False, default=UTC)

    def events(self, severities: dict[str, int] | None = None) -> Iterator[Event]:
        """The findings' events; counts them by severity into ``severities``."""
        for event in self._made if self._made is not None else self._make(self._findings):
            if severities is not None:
                severity = event.routing_key.removeprefix("finding.")
                severities[severity] = severities.get(severity, 0) + 1
            yield event

    def _make(self, findings: Iterable[Mapping[str, Any]]) -> Iterator[Event]:
        envelope = _Envelope(self)
        event_id = EventIds(self.source, self.project_uuid, self.exported_at)
        zone = self._zone
        for finding in findings:
            yield _event(finding, envelope, event_id, zone)


def parse(raw: bytes) -> dict[str, Any]:
    """The export as a JSON object, or InvalidExport saying why not."""
    try:
        document = orjson.loads(raw)
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


def _head(raw: bytes) -> str:
    text = raw[:60].decode("utf-8", "replace")
    return text + ("..." if len(raw) > 60 else "")


def process(
    raw: bytes,
    contract: Contract,
    *,
    source: str | None = None,
    zone: tzinfo = UTC,
    run_bytes: int = split.RUN_BYTES,
) -> Export:
    """The whole pure pipeline: parse, validate against ``contract``, normalize.

    The findings are read in runs of about ``run_bytes`` (see ``worker.split``); the result is
    the same as for the whole document, only faster and in less memory.
    """
    pieces = split.split(raw, run_bytes)
    export = _process_runs(pieces, contract, source, zone) if pieces is not None else None
    if export is not None:
        return export
    # unsplittable, or a run was refused: the whole document, which also gives the precise report
    document = parse(raw)
    contract.check(document, InvalidExport, "FPF export")
    return normalize(document, source=source, zone=zone)


def _process_runs(
    pieces: split.Pieces, contract: Contract, source: str | None, zone: tzinfo
) -> Export | None:
    """The export read run by run, each run validated with the head; None if one is refused.

    The contract has no rule across findings (a test holds it to that), so the runs together
    pass exactly when the whole document does. Nothing leaves before every run has passed.
    """
    described: Export | None = None
    made: list[Event] = []
    keys: set[str] = set()
    rows = 0
    for run in pieces.runs:
        try:
            findings = pieces.findings(run)
        except orjson.JSONDecodeError:
            return None
        if not contract.is_valid({**pieces.head, "findings": findings}):
            return None
        if described is None:
            try:
                described = _described(pieces.head, source, zone, finding_count=0, repeated_rows=0)
            except InvalidExport:  # the whole document's way reports schema problems first
                return None
            make = described._make
        rows += len(findings)
        # one event per finding key, from its first row (see normalize)
        firsts = []
        for row in findings:
            key = row["matrix"]
            if key not in keys:
                keys.add(key)
                firsts.append(row)
        made.extend(make(firsts))
    if described is None:
        return None
    return dataclasses.replace(
        described, finding_count=len(keys), repeated_rows=rows - len(keys), _made=tuple(made)
    )


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
        source=source or meta.get("baseUrl") or DEFAULT_SOURCE,
        finding_count=finding_count,
        repeated_rows=repeated_rows,
        _findings=findings,
        _zone=zone,
    )


class _Envelope:
    """An export's events differ only in a few values: the rest is serialized once, here.

    A body is these fragments joined around the event's id, its finding key and its finding's
    own data, byte for byte what ``orjson.dumps`` writes for the whole CloudEvent.
    """

    __slots__ = ("after_id", "after_key", "after_subject", "tail")

    head = b'{"specversion":' + dumps(SPEC_VERSION) + b',"id":"'

    def __init__(self, export: Export) -> None:
        project = {
            "uuid": export.project_uuid,
            "name": export.project_name,
            "version": export.project_version,
        }
        fpf = {
            "version": export.fpf_version,
            "dt_version": export.dt_version,
            "exported_at": export.exported_at,
        }
        self.after_id = (
            b'","source":' + dumps(export.source)
            + b',"type":' + dumps(FINDING_EVENT_TYPE)
            + b',"subject":'
        )  # fmt: skip
        self.after_subject = (
            b',"time":' + dumps(export.exported_at)
            + b',"datacontenttype":' + dumps(DATA_CONTENT_TYPE)
            + b',"dataschema":' + dumps(FINDING_EVENT_SCHEMA)
            + b',"data":{"finding_key":'
        )  # fmt: skip
        self.after_key = b',"project":' + dumps(project) + b","
        self.tail = b',"fpf":' + dumps(fpf) + b"}}"


def _event(
    finding: Mapping[str, Any], envelope: _Envelope, event_id: EventIds, zone: tzinfo
) -> Event:
    key: str = finding["matrix"]  # the finding key
    vulnerability = _vulnerability(finding["vulnerability"], zone)
    analysis = finding.get("analysis") or _EMPTY
    attribution = finding.get("attribution") or _EMPTY
    state = analysis.get("state")
    identifier = event_id(key)
    quoted_key = dumps(key)
    own = dumps(
        {
            "component": _component(finding["component"]),
            "vulnerability": vulnerability,
            "analysis": {
                "state": state.lower() if state else None,
                "suppressed": analysis.get("isSuppressed", False),
                "detail": analysis.get("detail"),
            },
            "attribution": {
                "analyzer": attribution.get("analyzerIdentity"),
                "attributed_on": instant(attribution.get("attributedOn"), zone),
                "alternate_identifier": attribution.get("alternateIdentifier"),
                "reference_url": attribution.get("referenceUrl"),
            },
        }
    )
    body = b"".join(
        (
            envelope.head,
            identifier.encode(),
            envelope.after_id,
            quoted_key,
            envelope.after_subject,
            quoted_key,
            envelope.after_key,
            own[1:-1],  # its keys, into the envelope's "data"
            envelope.tail,
        )
    )
    return Event(identifier, _ROUTING_KEYS[vulnerability["severity"]], body)


_EMPTY: Mapping[str, Any] = {}
_ROUTING_KEYS = {severity: finding_routing_key(severity) for severity in SEVERITY_RANK}


def _component(component: Mapping[str, Any]) -> dict[str, Any]:
    get = component.get
    scope = get("scope")
    return {
        "uuid": component["uuid"],
        "name": component["name"],
        "group": get("group"),
        "version": get("version"),
        "purl": get("purl"),
        "cpe": get("cpe"),
        "latest_version": get("latestVersion"),
        "scope": scope.lower() if scope else None,
    }


def _vulnerability(vulnerability: Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
    get = vulnerability.get
    vuln_id: str = vulnerability["vulnId"]
    severity = (get("severity") or "UNASSIGNED").lower()
    return {
        "uuid": get("uuid"),
        "source": vulnerability["source"],
        "id": vuln_id,
        "aliases": aliases(get("aliases"), vuln_id),
        "title": get("title"),
        "subtitle": get("subtitle"),
        "description": get("description"),
        "recommendation": get("recommendation"),
        "references": get("references"),
        "severity": severity,
        "severity_rank": SEVERITY_RANK[severity],
        "cvss": {
            "v2": {"score": get("cvssV2BaseScore"), "vector": get("cvssV2Vector")},
            "v3": {"score": get("cvssV3BaseScore"), "vector": get("cvssV3Vector")},
            "v4": {"score": get("cvssV4Score"), "vector": get("cvssV4Vector")},
        },
        "owasp_rr": {
            "likelihood": get("owaspLikelihoodScore"),
            "technical_impact": get("owaspTechnicalImpactScore"),
            "business_impact": get("owaspBusinessImpactScore"),
            "vector": get("owaspRRVector"),
        },
        "epss": {"score": get("epssScore"), "percentile": get("epssPercentile")},
        "cwes": cwes(get("cwes"), get("cweId")),
        "published": instant(get("published"), zone),
        "kev": get("isKev"),
    }


def aliases(raw: list[Mapping[str, Any]] | None, own_id: str) -> list[str]:
    """One sorted list of every other identifier, from either alias shape.

    1.2+: ``{"cveId": "CVE-…", "ghsaId": "GHSA-…"}``. 1.1 (DT 4.6-4.7): the same keys plus a
    database ``id`` (skipped) and ``allBySource`` (``{"NVD": "CVE-…"}``, read too).
    """
    if not raw:
        return []
    found: set[str] = set()
    for alias in raw:
        for key, value in alias.items():
            if type(value) is str:
                found.add(value)
            elif key == "allBySource":
                found.update(value.values())
    found.discard(own_id)
    found.discard("")  # DT drops blank ids; an empty one is no identifier
    return sorted(found)


def cwes(items: list[Mapping[str, Any]] | None, first_cwe: int | None) -> list[int]:
    """CWE ids from ``cwes`` (FPF 1.1+), else the deprecated single ``cweId`` (FPF 1.0, DT 4.x)."""
    if items:
        if len(items) == 1:  # the common case, without the generator
            return [items[0]["cweId"]]
        return list(dict.fromkeys(item["cweId"] for item in items))
    return [first_cwe] if first_cwe is not None else []
