"""Transitions between two exports of one line (two versions of a DT project), offline. Pure.

What ``dtrack-worker diff OLD NEW`` (``--by line``, the default) prints: each export's findings
grouped into line findings (``worker.core.line_findings``: package, alias-group vulnerability
id, instances), OLD's ids carried into NEW (``vulnid.assign``), then compared finding by
finding. A version bump of the component that keeps the vulnerability is ``changed`` with
``component.version`` and ``component.purl`` old and new, not ``resolved`` + ``opened``; the
tracked fields are compared as the per-project stream compares them
(``transitions.tracked_changes``). A finding whose every instance is suppressed is not open:
files from DT's findings API (``?suppressed=true``) list such rows, exports leave them out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any

from worker.core import finding, fpf, split, vulnid
from worker.core.dates import epoch
from worker.core.diff import refuse_stale
from worker.core.errors import InvalidExport, Problem
from worker.core.line_findings import (
    Grouped,
    Instance,
    InstanceDiff,
    LineFinding,
    diff_instances,
    group,
    version_order,
)
from worker.core.lines import Line
from worker.core.tracking import Status, epss, snapshot, tracked, with_long_texts_absent
from worker.core.transitions import Kind, tracked_changes
from worker.core.validation import Contract

Rows = Mapping[str, Mapping[str, Any]]  # an export's first row of each matrix


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LineTransition:
    """One line finding's transition: what the finding-change.v2 event says."""

    kind: Kind
    finding: LineFinding  # as NEW has it; as OLD had it when it left
    matrix: str  # the instance ``parts`` describe
    parts: dict[str, Any]  # component, vulnerability, analysis, attribution (finding.parts)
    severity: str
    previous_status: Status | None
    changes: tuple[tuple[str, Any, Any], ...]
    first_seen: float
    opened_at: float
    resolved_at: float | None = None
    reason: str | None = None  # resolved: not_in_export, or merged (see merged_into)
    merged_into: str | None = None  # the line finding that absorbed this one
    analysis_lost_in_dt: bool = False  # reopened only because DT made new instances


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LineDiff:
    """The transitions from OLD to NEW, in order, and what the events need of the exports."""

    line: Line
    before: fpf.Export
    after: fpf.Export
    transitions: list[LineTransition]


def _rows(_: fpf.Export, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return list(rows)


def diff(
    old: split.Raw, new: split.Raw, contract: Contract, *, source: str | None, zone: tzinfo
) -> LineDiff:
    """The line transitions from ``old`` to ``new``; InvalidExport if either is not an export,
    they are not of one line (project name), or ``new`` is older (the stale rule)."""
    before, old_rows = fpf.read(old, contract, _rows, source=source, zone=zone)
    after, new_rows = fpf.read(new, contract, _rows, source=source, zone=zone)
    if after.project_name != before.project_name:
        raise InvalidExport(
            "the two exports are of different lines (project names)",
            problems=(
                Problem("/project/name", f"OLD is {before.project_name}, NEW {after.project_name}"),
            ),
        )
    refuse_stale(before, after)
    # FPF exports carry no project group (DT 4.x has none): a line is its name here
    line = Line(after.source, "", after.project_name)
    earlier = group(line, old_rows, project_version=before.project_version)
    later = group(line, new_rows, earlier.known, project_version=after.project_version)
    compared = _Compared(
        {row["matrix"]: row for row in old_rows},
        {row["matrix"]: row for row in new_rows},
        zone,
        then=epoch(before.exported_at),
        now=epoch(after.exported_at),
    )
    return LineDiff(
        line=line, before=before, after=after, transitions=compared.transitions(earlier, later)
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Compared:
    old_rows: Rows
    new_rows: Rows
    zone: tzinfo
    then: float
    now: float

    def transitions(self, earlier: Grouped, later: Grouped) -> list[LineTransition]:
        old_by = {f.id: f for f in earlier.findings}
        new_by = {f.id: f for f in later.findings}
        found: list[LineTransition] = []
        for after in later.findings:  # id order: the same in any order of rows and aliases
            before = old_by.get(after.id)
            transition = self._arrived(after) if before is None else self._compared(before, after)
            if transition is not None:
                found.append(transition)
        absorbed = _absorbed(later.assignments)
        for before in earlier.findings:
            if before.id not in new_by and _status(before, self.old_rows) == "open":
                into = _merged_into(before, absorbed, later.findings)
                found.append(self._left(before, into))
        return found

    def _parts(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return finding.parts(row, self.zone)

    def _arrived(self, after: LineFinding) -> LineTransition | None:
        if _status(after, self.new_rows) != "open":
            return None  # first seen suppressed: never open, nothing to report
        row = self.new_rows[_representative(after).matrix]
        return LineTransition(
            kind="opened",
            finding=after,
            matrix=row["matrix"],
            parts=self._parts(row),
            severity=tracked(row)["severity"],
            previous_status=None,
            changes=(),
            first_seen=self.now,
            opened_at=self.now,
        )

    def _left(self, before: LineFinding, merged_into: str | None) -> LineTransition:
        row = self.old_rows[_representative(before).matrix]
        return LineTransition(
            kind="resolved",
            finding=before,
            matrix=row["matrix"],
            # described as the stream describes a finding that left: from its stored copy
            parts=with_long_texts_absent(snapshot(self._parts(row))),
            severity=tracked(row)["severity"],
            previous_status="open",
            changes=(),
            first_seen=self.then,
            opened_at=self.then,
            resolved_at=self.now,
            reason="merged" if merged_into else "not_in_export",
            merged_into=merged_into,
        )

    def _compared(self, before: LineFinding, after: LineFinding) -> LineTransition | None:
        was, now_is = _status(before, self.old_rows), _status(after, self.new_rows)
        if now_is == "suppressed" and was == "suppressed":
            return None
        instances = diff_instances(before.instances, after.instances)
        old_row = self.old_rows[_representative(before).matrix]
        paired = {m.before.matrix: m.after for m in instances.moved} | {
            i.matrix: i for i in instances.kept
        }
        described = paired.get(old_row["matrix"]) or _representative(after)
        new_row = self.new_rows[described.matrix]
        kind: Kind
        if was == "open" and now_is == "open":
            kind = "changed"
            changes = tracked_changes(
                tracked(old_row), tracked(new_row), epss(old_row), epss(new_row), None
            ) + _instance_changes(instances)
            if not changes:
                return None
        else:
            kind = "suppressed" if now_is == "suppressed" else "reopened"
            changes = ()
        return LineTransition(
            kind=kind,
            finding=after,
            matrix=new_row["matrix"],
            parts=self._parts(new_row),
            severity=tracked(new_row)["severity"],
            previous_status=was,
            changes=changes,
            first_seen=self.then,
            opened_at=self.now if kind == "reopened" else self.then,
            resolved_at=self.now if kind == "suppressed" else None,
            # DT deletes an analysis with its component: reopened on new instances only
            analysis_lost_in_dt=kind == "reopened" and not instances.kept,
        )


def _status(line_finding: LineFinding, rows: Rows) -> Status:
    """Open while any instance is; suppressed when DT suppressed every one."""
    for instance in line_finding.instances:
        analysis = rows[instance.matrix].get("analysis") or {}
        if analysis.get("isSuppressed") is not True:
            return "open"
    return "suppressed"


def _representative(line_finding: LineFinding) -> Instance:
    """The instance an event describes: the DT finding whose own id is the finding's id (the
    CVE row of a GHSA/CVE pair), then the lowest version, then the matrix."""
    return min(
        line_finding.instances,
        key=lambda i: (
            vulnid.token(i.source, i.vuln_id) != line_finding.vulnerability,
            version_order(i),
        ),
    )


def _instance_changes(instances: InstanceDiff) -> tuple[tuple[str, Any, Any], ...]:
    """``component.version`` and ``component.purl`` of each instance whose version moved (once
    per component: a GHSA row and a CVE row share one), and ``instances`` when one came or
    went. A purl that changed alone (qualifiers another SBOM tool adds) is no change."""
    found: list[tuple[str, Any, Any]] = []
    for move in instances.moved:
        b, a = move.before, move.after
        if b.component_version == a.component_version:
            continue  # a new UUID, or a purl another SBOM tool wrote: the same artifact
        for change in (
            ("component.version", b.component_version, a.component_version),
            ("component.purl", b.purl, a.purl),
        ):
            if change not in found:
                found.append(change)
    if instances.added or instances.removed:
        before = [*instances.kept, *(m.before for m in instances.moved), *instances.removed]
        after = [*instances.kept, *(m.after for m in instances.moved), *instances.added]
        found.append(("instances", _summaries(before), _summaries(after)))
    return tuple(found)


def _summaries(instances: Sequence[Instance]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(i) for i in sorted(instances, key=version_order)]


def _absorbed(assignments: Mapping[str, vulnid.Assignment]) -> dict[tuple[str, str], str]:
    """(package key, absorbed id) -> kept id: merges are per package, as alias groups are."""
    return {
        (package, gone): merge.kept
        for package, assignment in assignments.items()
        for merge in assignment.merges
        for gone in merge.absorbed
    }


def _merged_into(
    before: LineFinding,
    absorbed: Mapping[tuple[str, str], str],
    findings: Sequence[LineFinding],
) -> str | None:
    """The NEW line finding of the same package whose vulnerability absorbed ``before``'s."""
    kept = absorbed.get((before.package.key, before.vulnerability))
    if kept is None:
        return None
    return next(
        (f.id for f in findings if f.vulnerability == kept and f.package == before.package),
        None,
    )
