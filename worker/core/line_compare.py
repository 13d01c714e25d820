"""A line's stored state against the line findings of a new export: the transitions, and the
state after them. Pure.

Used by the offline version diff (``line_diff``: OLD's state built from OLD's export) and by the
live stream (the store's state of the line). A version bump of the component that keeps the
vulnerability is ``changed`` with ``component.version`` and ``component.purl`` old and new, not
``resolved`` + ``opened``; the tracked fields are compared as the per-project stream compares
them (``transitions.tracked_changes``). See docs/lines.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from datetime import tzinfo
from typing import Any

from worker.core import finding, vulnid
from worker.core.line_findings import Grouped, Instance, InstanceDiff, LineFinding, diff_instances
from worker.core.line_findings import version_order as _version_order
from worker.core.line_state import (
    LineState,
    LineStatus,
    Rows,
    StoredFinding,
    representative,
    status_of,
    stored,
)
from worker.core.tracking import Current, Status, tracked, with_long_texts_absent
from worker.core.transitions import Kind, tracked_changes


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
    analysis_lost_in_dt: bool = False  # DT made new instances: its analysis went with the old


@dataclasses.dataclass(frozen=True, slots=True)
class Made:
    """What the project's own comparison already made of rows of the export (same zone), by
    matrix: ``finding.parts`` and tracked fields (``tracking.Current``), and the
    ``tracking.snapshot`` of those parts it stores."""

    current: Mapping[str, Current]
    snapshots: Mapping[str, dict[str, Any]]


NOTHING_MADE = Made({}, {})


@dataclasses.dataclass(frozen=True, slots=True)
class Compared:
    transitions: list[LineTransition]
    state: LineState  # the line's state after them


def compare(
    earlier: LineState,
    later: Grouped,
    new_rows: Rows,
    zone: tzinfo,
    *,
    now: float,
    carry: bool = False,
    epss_delta: float | None = None,
    made: Made = NOTHING_MADE,
    settled: Collection[str] = (),
    retracted: Collection[str] = (),
) -> Compared:
    """``later`` (grouped with ``earlier.known``) against ``earlier``: transitions in id order
    of NEW's findings, then those of the stored ones that left, in id order; ``carry``: a
    suppressed finding reopened only because DT made new instances stays suppressed;
    ``epss_delta``: DTRACK_WORKER_TRACK_EPSS (None: EPSS moves are no change); ``made``: what
    the project's own comparison already made of rows of ``new_rows``, used rather than made
    again; ``settled``: ids of ``later``'s findings left out of the comparison and of the state
    (their stored findings not in ``earlier``: ``line_settled``); ``retracted``: the DT rows
    (matrices) DT 5 said it retracted: a finding that left with each of its instances among
    them resolves ``retracted_by_dt``, as in the per-project stream."""
    return _Compared(new_rows, zone, now, carry, epss_delta, made, frozenset(retracted)).run(
        earlier, later, settled
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Compared:
    new_rows: Rows
    zone: tzinfo
    now: float
    carry: bool
    epss_delta: float | None = None
    seeded: Made = NOTHING_MADE
    retracted: frozenset[str] = frozenset()
    _made: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    _tracked: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def run(self, earlier: LineState, later: Grouped, settled: Collection[str] = ()) -> Compared:
        old_by = earlier.findings
        new_ids = {f.id for f in later.findings}
        found: list[LineTransition] = []
        kept: dict[str, StoredFinding] = {}
        for after in later.findings:  # id order: the same in any order of rows and aliases
            if after.id in settled:
                continue
            before = old_by.get(after.id)
            if before is None:
                transition, record = self._arrived(after)
            else:
                transition, record = self._compared(before, after, earlier)
            if transition is not None:
                found.append(transition)
            kept[after.id] = record
        absorbed = _absorbed(later.assignments)
        for key in sorted(old_by):
            before = old_by[key]
            if key in new_ids:
                continue
            if before.status == "open":
                into = _merged_into(before, absorbed, later.findings)
                found.append(self._left(before, into, earlier))
            else:  # exports leave suppressed findings out: the triage stays as it was
                kept[key] = before
        return Compared(found, LineState(earlier.line, later.known, kept))

    def _parts(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """``finding.parts`` of a row, made once for the event and the stored snapshot."""
        matrix = row["matrix"]
        made = self._made.get(matrix)
        if made is None:
            current = self.seeded.current.get(matrix)
            made = current.parts if current is not None else finding.parts(row, self.zone)
            self._made[matrix] = made
        return made

    def _fields(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """``tracking.tracked`` of a row, made once for the stored record and any event."""
        matrix = row["matrix"]
        made = self._tracked.get(matrix)
        if made is None:
            current = self.seeded.current.get(matrix)
            made = current.tracked if current is not None else tracked(row)
            self._tracked[matrix] = made
        return made

    def _record(
        self, after: LineFinding, status: LineStatus, described: Instance, **times: Any
    ) -> StoredFinding:
        carried = times.pop("carried", False)
        row = self.new_rows[described.matrix]
        return stored(
            after, self.new_rows, self.zone, status=status, carried=carried, described=described,
            first_seen=times["first_seen"], opened_at=times["opened_at"],
            parts=self._parts(row), fields=self._fields(row),
            shot=self.seeded.snapshots.get(described.matrix),
        )  # fmt: skip

    def _arrived(self, after: LineFinding) -> tuple[LineTransition | None, StoredFinding]:
        now_is = status_of(after, self.new_rows)
        described = representative(after)
        row = self.new_rows[described.matrix]
        parts = self._parts(row)
        record = self._record(after, now_is, described, first_seen=self.now, opened_at=self.now)
        if now_is != "open":
            return None, record  # first seen suppressed: never open, nothing to report
        return LineTransition(
            kind="opened",
            finding=after,
            matrix=row["matrix"],
            parts=parts,
            severity=record.severity,
            previous_status=None,
            changes=(),
            first_seen=self.now,
            opened_at=self.now,
        ), record

    def _left(
        self, before: StoredFinding, merged_into: str | None, earlier: LineState
    ) -> LineTransition:
        return LineTransition(
            kind="resolved",
            finding=before.finding(earlier.line),
            matrix=before.matrix,
            # described as the stream describes a finding that left: from its stored copy
            parts=with_long_texts_absent(before.snapshot),
            severity=before.severity,
            previous_status="open",
            changes=(),
            first_seen=before.first_seen,
            opened_at=before.opened_at,
            resolved_at=self.now,
            reason="merged" if merged_into else self._reason(before),
            merged_into=merged_into,
        )

    def _reason(self, before: StoredFinding) -> str:
        """``retracted_by_dt`` when DT retracted every DT row the finding had, else
        ``not_in_export`` (left for another reason, or only in part by DT's retraction)."""
        rows = {stored.instance.matrix for stored in before.instances}
        return "retracted_by_dt" if rows and rows <= self.retracted else "not_in_export"

    def _compared(
        self, before: StoredFinding, after: LineFinding, earlier: LineState
    ) -> tuple[LineTransition | None, StoredFinding]:
        was, now_is = before.status, status_of(after, self.new_rows)
        instances = diff_instances([i.instance for i in before.instances], after.instances)
        paired = {m.before.matrix: m.after for m in instances.moved} | {
            i.matrix: i for i in instances.kept
        }
        described = paired.get(before.matrix) or representative(after)
        new_row = self.new_rows[described.matrix]
        self._parts(new_row)  # once, for the stored snapshot and any event
        first, opened = before.first_seen, before.opened_at
        lost = not instances.kept  # DT deletes an analysis with its component
        if was == "suppressed" and now_is == "suppressed":
            return None, self._record(after, "suppressed", described, first_seen=first,
                                      opened_at=opened)  # fmt: skip
        if was == "suppressed" and self.carry and (before.carried or lost):
            # open again only because DT lost the analysis: the triage stands; said once per
            # new set of instances, so a consumer can write the analysis back
            record = self._record(after, "suppressed", described, first_seen=first,
                                  opened_at=opened, carried=True)  # fmt: skip
            if not lost:
                return None, record
            return self._event(
                "changed", after, new_row, was, _instance_list(instances), first, opened,
                analysis_lost_in_dt=True, resolved_at=None,
            ), record  # fmt: skip
        kind: Kind
        if was == "open" and now_is == "open":
            record = self._record(after, "open", described, first_seen=first, opened_at=opened)
            old = before.tracked
            changes = tracked_changes(
                old, self._fields(new_row), before.epss, record.epss, self.epss_delta
            ) + _instance_changes(instances)
            if not changes:
                return None, record
            return self._event("changed", after, new_row, was, changes, first, opened), record
        kind = "suppressed" if now_is == "suppressed" else "reopened"
        if kind == "reopened":
            opened = self.now
        record = self._record(after, now_is, described, first_seen=first, opened_at=opened)
        return self._event(
            kind, after, new_row, was, (), first, opened,
            resolved_at=self.now if kind == "suppressed" else None,
            analysis_lost_in_dt=kind == "reopened" and lost,
        ), record  # fmt: skip

    def _event(
        self,
        kind: Kind,
        after: LineFinding,
        new_row: Mapping[str, Any],
        was: Status,
        changes: tuple[tuple[str, Any, Any], ...],
        first_seen: float,
        opened_at: float,
        *,
        resolved_at: float | None = None,
        analysis_lost_in_dt: bool = False,
    ) -> LineTransition:
        return LineTransition(
            kind=kind,
            finding=after,
            matrix=new_row["matrix"],
            parts=self._parts(new_row),
            severity=self._fields(new_row)["severity"],
            previous_status=was,
            changes=changes,
            first_seen=first_seen,
            opened_at=opened_at,
            resolved_at=resolved_at,
            analysis_lost_in_dt=analysis_lost_in_dt,
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
        found.append(_instance_list(instances)[0])
    return tuple(found)


def _instance_list(instances: InstanceDiff) -> tuple[tuple[str, Any, Any], ...]:
    """``instances``, old and new lists."""
    before = [*instances.kept, *(m.before for m in instances.moved), *instances.removed]
    after = [*instances.kept, *(m.after for m in instances.moved), *instances.added]
    return (("instances", _summaries(before), _summaries(after)),)


def _summaries(instances: Sequence[Instance]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(i) for i in sorted(instances, key=_version_order)]


def _absorbed(assignments: Mapping[str, vulnid.Assignment]) -> dict[tuple[str, str], str]:
    """(package key, absorbed id) -> kept id: merges are per package, as alias groups are."""
    return {
        (package, gone): merge.kept
        for package, assignment in assignments.items()
        for merge in assignment.merges
        for gone in merge.absorbed
    }


def _merged_into(
    before: StoredFinding,
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
