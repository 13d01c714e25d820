"""FPF bytes -> parsed -> validated -> normalized finding events. Pure: no I/O, no clock.

Real exports differ from the FPF docs (see ``docs/events.md``, "What the export really holds"):
absent means null, numbers lose their fraction, aliases come in two shapes, CWEs in two places,
and DT 4.x dates carry no zone. Everything below reads a document the FPF contract has accepted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import orjson
from orjson import dumps

from worker.errors import InvalidExport, Problem
from worker.events import (
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
from worker.validation import Contract, excerpt, json_type


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Export:
    """One project's validated export: what it is, and its findings as events, made on demand.

    ``events()`` builds and serializes one event at a time, so a 50k-finding export never holds
    50k events at once: the worker publishes them as they come.
    """

    project_uuid: str
    project_name: str
    project_version: str | None
    fpf_version: str
    dt_version: str
    exported_at: str
    source: str
    repeated_rows: int  # rows listing a finding again under another attribution (folded)
    _findings: tuple[Mapping[str, Any], ...] = dataclasses.field(repr=False)
    _zone: tzinfo = dataclasses.field(repr=False)

    @property
    def finding_count(self) -> int:
        return len(self._findings)

    def events(self, severities: dict[str, int] | None = None) -> Iterator[Event]:
        """The findings' events, one at a time; counts them by severity into ``severities``."""
        project = {
            "uuid": self.project_uuid,
            "name": self.project_name,
            "version": self.project_version,
        }
        fpf = {
            "version": self.fpf_version,
            "dt_version": self.dt_version,
            "exported_at": self.exported_at,
        }
        event_id = EventIds(self.source, self.project_uuid, self.exported_at)
        for finding in self._findings:
            event = _event(
                finding, self.source, project, fpf, self.exported_at, event_id, self._zone
            )
            if severities is not None:
                severity = event.routing_key.removeprefix("finding.")
                severities[severity] = severities.get(severity, 0) + 1
            yield event


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
    raw: bytes, contract: Contract, *, source: str | None = None, zone: tzinfo = UTC
) -> Export:
    """The whole pure pipeline: parse, validate against ``contract``, normalize."""
    document = parse(raw)
    contract.check(document, InvalidExport, "FPF export")
    return normalize(document, source=source, zone=zone)


def normalize(
    document: Mapping[str, Any], *, source: str | None = None, zone: tzinfo = UTC
) -> Export:
    """Events for a schema-valid export.

    ``source`` names the DT instance (else the export's ``meta.baseUrl``); ``zone`` is the DT
    server's time zone, applied to the zone-less dates DT 4.x writes.
    """
    meta, project = document["meta"], document["project"]
    source = source or meta.get("baseUrl") or DEFAULT_SOURCE
    exported_at = instant(meta["timestamp"], zone)
    if exported_at is None:  # a calendar-impossible date the pattern let through
        raise InvalidExport(
            "export has no usable timestamp",
            problems=(Problem("/meta/timestamp", "not a real date", excerpt(meta["timestamp"])),),
        )
    # DT lists a finding once per attribution (two analyzers, two rows, one matrix): one event
    # per finding key, carrying the first row's attribution.
    rows = document["findings"]
    firsts: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        firsts.setdefault(row["matrix"], row)
    return Export(
        project_uuid=project["uuid"],
        project_name=project["name"],
        project_version=project.get("version"),
        fpf_version=document["version"],
        dt_version=meta["version"],
        exported_at=exported_at,
        source=source,
        repeated_rows=len(rows) - len(firsts),
        _findings=tuple(firsts.values()),
        _zone=zone,
    )


def _event(
    finding: Mapping[str, Any],
    source: str,
    project: Mapping[str, Any],
    fpf: Mapping[str, Any],
    exported_at: str,
    event_id: EventIds,
    zone: tzinfo,
) -> Event:
    key: str = finding["matrix"]  # the finding key
    vulnerability = _vulnerability(finding["vulnerability"], zone)
    analysis = finding.get("analysis") or _EMPTY
    attribution = finding.get("attribution") or _EMPTY
    state = analysis.get("state")
    identifier = event_id(key)
    severity = vulnerability["severity"]
    body = dumps(
        {
            "specversion": SPEC_VERSION,
            "id": identifier,
            "source": source,
            "type": FINDING_EVENT_TYPE,
            "subject": key,
            "time": exported_at,
            "datacontenttype": DATA_CONTENT_TYPE,
            "dataschema": FINDING_EVENT_SCHEMA,
            "data": {
                "finding_key": key,
                "project": project,
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
                "fpf": fpf,
            },
        }
    )
    return Event(identifier, _ROUTING_KEYS[severity], body)


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


def instant(value: str | int | None, zone: tzinfo = UTC) -> str | None:
    """A DT date as ISO 8601 UTC (``…T…Z``); zone-less DT 4.x dates are read in ``zone``.

    Milliseconds are written when they carry the whole fraction, else microseconds (nanoseconds
    are cut). None when there is no date, or when the text names a day that does not exist.
    """
    if value is None:
        return None
    if zone is UTC and type(value) is str:
        quick = _utc_text(value)
        if quick is not None:
            return quick
    return _instant(value, zone)


def _utc_text(value: str) -> str | None:
    """The common shapes (``2026-02-04 22:16:00.813``, ``…T…Z``) by slicing, or None.

    Only for text the FPF contract accepted, read as UTC; days after the 28th go the slow way,
    which knows the calendar.
    """
    if len(value) < 19 or value[16] != ":" or value[8:10] > "28":
        return None
    rest = value[19:].removesuffix("Z")
    if not rest:
        fraction = "000"
    elif rest[0] == "." and rest[1:].isdigit():
        micro = rest[1:7].ljust(6, "0")
        fraction = micro[:3] if micro[3:] == "000" else micro
    else:
        return None
    return f"{value[:10]}T{value[11:19]}.{fraction}Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _instant(value: str | int, zone: tzinfo) -> str | None:
    try:
        if isinstance(value, int):
            moment = _EPOCH + timedelta(milliseconds=value)
        else:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    spec = "milliseconds" if moment.microsecond % 1000 == 0 else "microseconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"
