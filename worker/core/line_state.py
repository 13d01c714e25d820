"""A line's stored state: its findings as the last comparison left them, and its alias map.
Pure.

The live stream compares each export of a line's current version against this state, not
against an older export (``line_compare.compare``); the offline ``diff`` builds OLD's state from
OLD's export with ``of_export`` and compares the same way. What a finding keeps is what the
events need once its rows are gone: the representative instance's tracked fields, EPSS and
snapshot (``tracking.snapshot``), and every instance with DT's suppression of it. See
docs/lines.md.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any, Literal

import orjson

from worker.core import finding, vulnid
from worker.core.line_findings import Grouped, Instance, Known, LineFinding, version_order
from worker.core.lines import Line
from worker.core.package import Package
from worker.core.tracking import epss, snapshot, tracked

LineStatus = Literal["open", "suppressed"]
Rows = Mapping[str, Mapping[str, Any]]  # an export's first row of each matrix

FORMAT = 1  # the first byte of ``pack``: zlib-compressed JSON


@dataclasses.dataclass(frozen=True, slots=True)
class StoredInstance:
    instance: Instance
    suppressed: bool  # DT's own analysis of this DT finding


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StoredFinding:
    """A line finding as stored: identity, status, instances, and its representative's parts
    (what a ``changed`` compares against, and a ``resolved`` describes)."""

    id: str
    package: Package
    vulnerability: str
    aliases: tuple[str, ...]
    status: LineStatus
    carried: bool  # kept suppressed though DT lost the analysis (DTRACK_WORKER_CARRY_TRIAGE)
    instances: tuple[StoredInstance, ...]
    matrix: str  # the representative instance's
    severity: str
    tracked: dict[str, Any]
    epss: float | None
    snapshot: dict[str, Any]  # tracking.snapshot of the representative's parts
    first_seen: float
    opened_at: float

    def finding(self, line: Line) -> LineFinding:
        return LineFinding(
            id=self.id,
            line=line,
            package=self.package,
            vulnerability=self.vulnerability,
            aliases=self.aliases,
            instances=tuple(i.instance for i in self.instances),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class LineState:
    """A line's findings (open or suppressed, by id) and its alias map (``Grouped.known``)."""

    line: Line
    known: Known
    findings: Mapping[str, StoredFinding]

    @property
    def open(self) -> list[StoredFinding]:
        return [f for f in self.findings.values() if f.status == "open"]


def empty(line: Line) -> LineState:
    return LineState(line, {}, {})


def status_of(line_finding: LineFinding, rows: Rows) -> LineStatus:
    """Open while any instance is; suppressed when DT suppressed every one."""
    for instance in line_finding.instances:
        analysis = rows[instance.matrix].get("analysis") or {}
        if analysis.get("isSuppressed") is not True:
            return "open"
    return "suppressed"


def representative(line_finding: LineFinding) -> Instance:
    """The instance an event describes: the DT finding whose own id is the finding's id (the
    CVE row of a GHSA/CVE pair), then the lowest version, then the matrix."""
    if len(line_finding.instances) == 1:
        return line_finding.instances[0]
    return min(
        line_finding.instances,
        key=lambda i: (
            vulnid.token(i.source, i.vuln_id) != line_finding.vulnerability,
            version_order(i),
        ),
    )


def stored(
    line_finding: LineFinding,
    rows: Rows,
    zone: tzinfo,
    *,
    status: LineStatus,
    carried: bool,
    described: Instance,
    first_seen: float,
    opened_at: float,
    parts: Mapping[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
    shot: dict[str, Any] | None = None,
) -> StoredFinding:
    """``line_finding`` as stored, described by its instance ``described`` (a row of ``rows``;
    ``parts``, ``fields``, ``shot``: its ``finding.parts``, ``tracked`` and the ``snapshot`` of
    those parts, when the caller made them)."""
    row = rows[described.matrix]
    if fields is None:
        fields = tracked(row)
    return StoredFinding(
        id=line_finding.id,
        package=line_finding.package,
        vulnerability=line_finding.vulnerability,
        aliases=line_finding.aliases,
        status=status,
        carried=carried,
        instances=tuple(
            StoredInstance(i, _suppressed(rows[i.matrix])) for i in line_finding.instances
        ),
        matrix=described.matrix,
        severity=fields["severity"],
        tracked=fields,
        epss=epss(row),
        snapshot=shot
        if shot is not None
        else snapshot(parts if parts is not None else finding.parts(row, zone)),
        first_seen=first_seen,
        opened_at=opened_at,
    )


def _suppressed(row: Mapping[str, Any]) -> bool:
    return (row.get("analysis") or {}).get("isSuppressed") is True


def of_export(grouped: Grouped, rows: Rows, zone: tzinfo, *, at: float) -> LineState:
    """The state one export gives its line, as if every finding had been seen first at ``at``
    (the offline diff's OLD)."""
    line = grouped.findings[0].line if grouped.findings else None
    findings = {
        f.id: stored(
            f,
            rows,
            zone,
            status=status_of(f, rows),
            carried=False,
            described=representative(f),
            first_seen=at,
            opened_at=at,
        )
        for f in grouped.findings
    }
    return LineState(line or Line("", "", ""), grouped.known, findings)


def oldest_open(state: LineState) -> float | None:
    """When the longest-open of the line's open findings opened (None: none is open)."""
    return min((f.opened_at for f in state.open), default=None)


def entry_oldest_open(entries: Mapping[str, list[Any]]) -> float | None:
    """``oldest_open`` of packed entries."""
    return min((e[OPENED_AT] for e in entries.values() if e[STATUS] == "open"), default=None)


def counts(state: LineState) -> dict[str, int]:
    """Open findings by severity."""
    found: dict[str, int] = {}
    for f in state.open:
        found[f.severity] = found.get(f.severity, 0) + 1
    return found


# -- packing: compact bytes for the store ------------------------------------------------------


def packed_instance(i: Instance, suppressed: bool) -> list[Any]:
    """An instance as ``pack`` stores it: its fields in their order, then DT's suppression
    (spelled out: this runs for every instance of a line)."""
    return [i.matrix, i.project_uuid, i.project_version, i.component_uuid, i.component_version,
            i.purl, i.vulnerability_uuid, i.source, i.vuln_id, suppressed]  # fmt: skip


def _instance(packed_instance: list[Any]) -> Instance:
    (matrix, project, version, component, component_version, purl, vulnerability, source,
     vuln_id, _) = packed_instance  # fmt: skip
    return Instance(matrix=matrix, project_uuid=project, project_version=version,
                    component_uuid=component, component_version=component_version, purl=purl,
                    vulnerability_uuid=vulnerability, source=source, vuln_id=vuln_id)  # fmt: skip


def pack(state: LineState) -> bytes:
    """The findings and the alias map as compressed JSON (the line itself is stored beside)."""
    return pack_entries(state.known, {f.id: packed(f) for f in state.findings.values()})


def pack_entries(known: Known, entries: Mapping[str, list[Any]]) -> bytes:
    """``pack`` of findings given as packed entries (``packed``, or ``Decoded.entries``), by
    id: an entry decoded and packed again is the same bytes."""
    document = {"known": known, "findings": [entries[k] for k in sorted(entries)]}
    return bytes([FORMAT]) + zlib.compress(orjson.dumps(document), 1)  # 6: 2x the time


def packed(f: StoredFinding) -> list[Any]:
    """One finding as ``pack`` stores it."""
    return [
        f.id,
        [f.package.key, f.package.kind, f.package.problem],
        f.vulnerability,
        list(f.aliases),
        f.status,
        f.carried,
        [packed_instance(i.instance, i.suppressed) for i in f.instances],
        f.matrix,
        f.severity,
        f.tracked,
        f.epss,
        f.snapshot,
        f.first_seen,
        f.opened_at,
    ]


@dataclasses.dataclass(frozen=True, slots=True)
class Decoded:
    """A packed state read but not built: its alias map and each finding's packed entry by id
    (``built`` makes one a ``StoredFinding``; an entry left as it is packs to the same bytes)."""

    known: Known
    entries: dict[str, list[Any]]


# positions in a packed entry
PACKAGE, STATUS, CARRIED, INSTANCES, SEVERITY, TRACKED, EPSS, FIRST_SEEN, OPENED_AT = (
    1, 4, 5, 6, 8, 9, 10, 12, 13,
)  # fmt: skip


def decode(data: bytes | None) -> Decoded:
    """What ``pack`` made, read; nothing for no bytes."""
    if not data:
        return Decoded({}, {})
    if data[0] != FORMAT:
        raise ValueError(f"line state format {data[0]} is not one this release reads")
    document = orjson.loads(zlib.decompress(data[1:]))
    return Decoded(document["known"], {entry[0]: entry for entry in document["findings"]})


def purl_packages(decoded: Decoded) -> dict[str, Package]:
    """purl -> package of the stored purl-keyed findings' instances (``line_findings.group``'s
    ``purls``): each instance of a purl-keyed finding has a purl that gave its key."""
    found: dict[str, Package] = {}
    for entry in decoded.entries.values():
        key, kind, problem = entry[PACKAGE]
        if kind != "purl":
            continue
        package = Package(key, kind, problem)
        for stored_instance in entry[INSTANCES]:
            if stored_instance[5]:  # the instance's purl
                found.setdefault(stored_instance[5], package)
    return found


def unpack(line: Line, data: bytes | None) -> LineState:
    """What ``pack`` made; an empty state for no bytes."""
    decoded = decode(data)
    findings = {ident: built(entry) for ident, entry in decoded.entries.items()}
    return LineState(line, decoded.known, findings)


def built(entry: list[Any]) -> StoredFinding:
    """A packed entry as a finding."""
    (ident, package, vuln, aliases, status, carried, instances, matrix, severity, fields,
     score, snap, first, opened) = entry  # fmt: skip
    return StoredFinding(
        id=ident,
        package=Package(package[0], package[1], package[2]),
        vulnerability=vuln,
        aliases=tuple(aliases),
        status=status,
        carried=carried,
        instances=tuple(StoredInstance(_instance(i), i[-1]) for i in instances),
        matrix=matrix,
        severity=severity,
        tracked=fields,
        epss=score,
        snapshot=snap,
        first_seen=first,
        opened_at=opened,
    )


def entry_counts(entries: Mapping[str, list[Any]]) -> tuple[int, dict[str, int]]:
    """``counts`` of packed entries, and how many are open."""
    found: dict[str, int] = {}
    opened = 0
    for entry in entries.values():
        if entry[STATUS] == "open":
            opened += 1
            found[entry[SEVERITY]] = found.get(entry[SEVERITY], 0) + 1
    return opened, found


def open_ids(findings: Sequence[StoredFinding]) -> set[str]:
    return {f.id for f in findings if f.status == "open"}
