"""A per-project store's findings as a line's state, for `dtrack-worker state migrate`. Pure.

The per-project store keeps each finding's last known parts (``tracking.snapshot`` of
``finding.parts``), not the export's row. ``row_of`` turns a stored finding back into the FPF row
shape ``line_findings.group`` and ``line_state`` read, so that a line's state built from the store
is the state building it from the export would give: the same line finding ids, statuses,
instances, tracked fields and snapshots (tests/test_line_migration.py holds it to that on the real
exports). ``state_of`` builds it; ``current_of`` picks the version a line starts from.

What the snapshot no longer says, and how it is read back (docs/lines.md, "Moving a store"):

* an alias's kind (FPF's ``cveId``, ``osvId``, ...): guessed from its form (``ALIAS_KEYS``).
  Only CVE and GHSA aliases join findings, and their form is certain: ids never depend on the
  guess; an alias of another kind might be listed under another source in the line finding's
  ``aliases`` (an OSV advisory id is taken as OSV's);
* the long texts (description, recommendation, references, subtitle): absent, as in every
  ``resolved`` event the store describes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any

from worker.core.line_findings import group
from worker.core.line_state import LineState, StoredFinding, representative, status_of, stored
from worker.core.lines import Line, LineBy, ProjectVersion, current, line_of
from worker.core.transitions import Stored

# an alias's FPF key, by the form of its id; the first that matches (OSV is everything else:
# PYSEC-, RUSTSEC-, GO-, DLA-, DSA-, ...)
ALIAS_KEYS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"CVE-\d+-\d+", re.IGNORECASE), "cveId"),
    (re.compile(r"GHSA(-[0-9a-z]{4}){3}", re.IGNORECASE), "ghsaId"),
    (re.compile(r"sonatype-.*", re.IGNORECASE), "sonatypeId"),
    (re.compile(r"SNYK-.*"), "snykId"),
    (re.compile(r"GSD-.*"), "gsdId"),
    (re.compile(r"\d+"), "vulnDbId"),
)


def _alias(text: str) -> dict[str, str]:
    key = next((k for pattern, k in ALIAS_KEYS if pattern.fullmatch(text)), "osvId")
    return {key: text}


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def row_of(finding: Stored) -> dict[str, Any]:
    """A stored finding as the FPF row it was read from (as far as ``finding.parts`` kept it).
    DT's suppression: the snapshot's, or the store's status (a finding that left the export
    suppressed)."""
    snap = finding.snapshot
    component, vuln = snap["component"], snap["vulnerability"]
    analysis, attribution = snap.get("analysis") or {}, snap.get("attribution") or {}
    cvss, owasp = vuln.get("cvss") or {}, vuln.get("owasp_rr") or {}
    epss = vuln.get("epss") or {}

    def score(version: str) -> tuple[Any, Any]:
        part = cvss.get(version) or {}
        return part.get("score"), part.get("vector")

    v2, v3, v4 = score("v2"), score("v3"), score("v4")
    return {
        "matrix": finding.key,
        "component": {
            "uuid": component["uuid"],
            "name": component["name"],
            "group": component.get("group"),
            "version": component.get("version"),
            "purl": component.get("purl"),
            "cpe": component.get("cpe"),
            "latestVersion": component.get("latest_version"),
            "scope": _upper(component.get("scope")),
            "project": finding.key.partition(":")[0],
        },
        "vulnerability": {
            "uuid": vuln.get("uuid"),
            "source": vuln["source"],
            "vulnId": vuln["id"],
            "aliases": [_alias(a) for a in vuln.get("aliases") or ()],
            "title": vuln.get("title"),
            "severity": _upper(vuln.get("severity")),
            "cvssV2BaseScore": v2[0],
            "cvssV2Vector": v2[1],
            "cvssV3BaseScore": v3[0],
            "cvssV3Vector": v3[1],
            "cvssV4Score": v4[0],
            "cvssV4Vector": v4[1],
            "owaspLikelihoodScore": owasp.get("likelihood"),
            "owaspTechnicalImpactScore": owasp.get("technical_impact"),
            "owaspBusinessImpactScore": owasp.get("business_impact"),
            "owaspRRVector": owasp.get("vector"),
            "epssScore": epss.get("score"),
            "epssPercentile": epss.get("percentile"),
            "cwes": [{"cweId": c} for c in vuln.get("cwes") or ()],
            "published": vuln.get("published"),
            "isKev": vuln.get("kev"),
        },
        "analysis": {
            "state": _upper(analysis.get("state")),
            "isSuppressed": analysis.get("suppressed") is True or finding.status == "suppressed",
            "detail": analysis.get("detail"),
        },
        "attribution": {
            "analyzerIdentity": attribution.get("analyzer"),
            "attributedOn": attribution.get("attributed_on"),
            "alternateIdentifier": attribution.get("alternate_identifier"),
            "referenceUrl": attribution.get("reference_url"),
        },
    }


def state_of(
    line: Line, findings: Sequence[Stored], zone: tzinfo, *, project_version: str | None
) -> LineState:
    """The line's state from one project's stored findings (open and suppressed; resolved ones
    are not DT findings any more and are left out). A line finding was first seen, and opened,
    when the earliest of its instances was."""
    kept = [f for f in findings if f.status in ("open", "suppressed")]
    rows = {f.key: row_of(f) for f in kept}
    by_key = {f.key: f for f in kept}
    grouped = group(line, rows.values(), project_version=project_version)
    found: dict[str, StoredFinding] = {}
    for line_finding in grouped.findings:
        behind = [by_key[i.matrix] for i in line_finding.instances]
        status = status_of(line_finding, rows)
        opened = [b.opened_at for b in behind if b.status == "open"] or [
            b.opened_at for b in behind
        ]
        found[line_finding.id] = stored(
            line_finding,
            rows,
            zone,
            status=status,
            carried=False,
            described=representative(line_finding),
            first_seen=min(b.first_seen for b in behind),
            opened_at=min(opened),
        )
    return LineState(line, grouped.known, found)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StoredProject:
    """A project the per-project store holds: what a line needs of it, offline."""

    uuid: str
    name: str
    version: str | None
    revision: int
    last_applied_at: float | None  # when an export of it was last applied


@dataclasses.dataclass(frozen=True, slots=True)
class Planned:
    """One line to build: its versions (DT's facts, or the store's), the stored project its state
    is taken from, and why that one."""

    line: Line
    versions: tuple[ProjectVersion, ...]
    start: StoredProject
    because: str


def plan(
    stored_projects: Sequence[StoredProject],
    listed: Mapping[str, Sequence[ProjectVersion]] | None,
    rule: LineBy,
    source: str,
) -> list[Planned]:
    """The lines the store's projects make, each with the project its state starts from.

    ``listed``: DT's versions of each stored name (``line_delta.versions_of``), or None when DT
    is not asked. With DT: lines as a job makes them (group, tags, flags), starting from DT's
    current version when the store holds it, else from the line's stored version applied last
    (the current version's first job then publishes its differences from that one). Without:
    each project's own name and version (no group, no tags), starting from the version applied
    last."""
    by_uuid = {p.uuid: p for p in stored_projects}
    lines: dict[Line, list[ProjectVersion]] = {}
    if listed is None:
        for p in stored_projects:
            version = ProjectVersion(uuid=p.uuid, name=p.name, version=p.version)
            lines.setdefault(line_of(version, rule, source), []).append(version)
    else:
        for versions in listed.values():
            for version in versions:
                lines.setdefault(line_of(version, rule, source), []).append(version)
    found: list[Planned] = []
    for line, versions in sorted(lines.items(), key=lambda item: item[0].key):
        held = [by_uuid[v.uuid] for v in versions if v.uuid in by_uuid]
        if not held:
            continue  # DT lists it, the store holds none of its versions: nothing to move
        latest = max(held, key=lambda p: (p.last_applied_at or 0.0, p.uuid))
        head = current(versions) if listed is not None else None
        if head is not None and head.uuid in by_uuid:
            start, because = by_uuid[head.uuid], "DT's current version"
        elif head is not None:
            start = latest
            because = (
                f"the version applied last: DT's current version {head.version or head.uuid} "
                "is not in the store yet"
            )
        else:
            start, because = latest, "the version applied last"
        found.append(Planned(line, tuple(sorted(versions, key=lambda v: v.uuid)), start, because))
    return found
