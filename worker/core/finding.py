"""One finding of a validated export as its finding event, serialized. Pure.

This runs once per finding: the envelope is serialized once per export, and each event is the
envelope's fragments joined around the finding's own data.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from orjson import dumps

from worker.core.dates import instant
from worker.core.events import (
    DATA_CONTENT_TYPE,
    FINDING_EVENT_SCHEMA,
    FINDING_EVENT_TYPE,
    SEVERITY_RANK,
    SPEC_VERSION,
    Event,
    EventIds,
    finding_routing_key,
)


class Envelope:
    """An export's events differ only in a few values: the rest is serialized once, here.

    A body is these fragments joined around the event's id, its finding key and its finding's
    own data, byte for byte what ``orjson.dumps`` writes for the whole CloudEvent.
    """

    __slots__ = ("after_id", "after_key", "after_subject", "tail")

    head = b'{"specversion":' + dumps(SPEC_VERSION) + b',"id":"'

    def __init__(
        self, *, source: str, exported_at: str, project: dict[str, Any], fpf: dict[str, Any]
    ) -> None:
        self.after_id = (
            b'","source":' + dumps(source)
            + b',"type":' + dumps(FINDING_EVENT_TYPE)
            + b',"subject":'
        )  # fmt: skip
        self.after_subject = (
            b',"time":' + dumps(exported_at)
            + b',"datacontenttype":' + dumps(DATA_CONTENT_TYPE)
            + b',"dataschema":' + dumps(FINDING_EVENT_SCHEMA)
            + b',"data":{"finding_key":'
        )  # fmt: skip
        self.after_key = b',"project":' + dumps(project) + b","
        self.tail = b',"fpf":' + dumps(fpf) + b"}}"


def parts(finding: Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
    """A finding's own data in events: component, vulnerability, analysis, attribution."""
    analysis = finding.get("analysis") or _EMPTY
    attribution = finding.get("attribution") or _EMPTY
    state = analysis.get("state")
    return {
        "component": _component(finding["component"]),
        "vulnerability": _vulnerability(finding["vulnerability"], zone),
        "analysis": {
            "state": state.lower() if state else None,
            "suppressed": analysis.get("isSuppressed") or False,
            "detail": analyst_text(analysis.get("detail")),
        },
        "attribution": {
            "analyzer": attribution.get("analyzerIdentity"),
            "attributed_on": instant(attribution.get("attributedOn"), zone),
            "alternate_identifier": attribution.get("alternateIdentifier"),
            "reference_url": attribution.get("referenceUrl"),
        },
    }


def event(
    finding: Mapping[str, Any], envelope: Envelope, event_id: EventIds, zone: tzinfo
) -> Event:
    key: str = finding["matrix"]  # the finding key
    own_parts = parts(finding, zone)
    identifier = event_id(key)
    quoted_key = dumps(key)
    own = dumps(own_parts)
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
    return Event(identifier, _ROUTING_KEYS[own_parts["vulnerability"]["severity"]], body)


# FPF 1.4's analysis.detail is an analyst's free text, of any length in DT: events carry at most
# this many characters of it (the cut ones end with DETAIL_CUT); the rest stays in DT
MAX_DETAIL = 4096
DETAIL_CUT = " [cut by dtrack-worker]"


def analyst_text(detail: object) -> str | None:
    if not isinstance(detail, str):
        return None
    if len(detail) <= MAX_DETAIL:
        return detail
    return detail[: MAX_DETAIL - len(DETAIL_CUT)] + DETAIL_CUT


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
        "source": vulnerability["source"].upper(),  # DT's own spelling; its column says so
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
            elif key == "allBySource" and type(value) is dict:
                found.update(item for item in value.values() if type(item) is str)
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
