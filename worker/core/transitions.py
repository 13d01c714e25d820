"""What changed between two exports of a project: opened, changed, resolved, suppressed,
reopened. Pure.

``detect`` turns the store's state before an export, the export (compared by
``tracking.Comparison``), and, when findings disappeared, DT's list of findings with the
suppressed ones included, into transitions and the rows findings have afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Literal

from worker.core.finding import analyst_text
from worker.core.tracking import (
    TRACKED,
    Current,
    Prior,
    Seen,
    Status,
    epss_moved,
    snapshot,
    with_long_texts_absent,
)

Kind = Literal["opened", "changed", "resolved", "suppressed", "reopened"]


@dataclasses.dataclass(frozen=True, slots=True)
class Stored:
    """A finding's stored state, in full (read only for findings that changed or left)."""

    key: str
    status: Status
    severity: str
    fingerprint: str
    tracked: dict[str, Any]
    epss: float | None
    snapshot: dict[str, Any]  # the last known parts (component, vulnerability, ...)
    first_seen: float
    opened_at: float
    resolved_at: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class Suppression:
    """A finding as DT's findings API lists it, with suppressed ones included."""

    suppressed: bool
    state: str | None
    detail: str | None


@dataclasses.dataclass(slots=True)  # not frozen, never changed after: see tracking.Current
class Transition:
    kind: Kind
    key: str
    severity: str
    parts: dict[str, Any]  # the finding's data in the event
    previous_status: Status | None
    changes: tuple[tuple[str, Any, Any], ...]
    first_seen: float
    opened_at: float
    resolved_at: float | None
    reason: str | None = None  # resolved: not_in_export, retracted_by_dt or project_deleted
    resync: bool = False


@dataclasses.dataclass(slots=True)  # not frozen, never changed after: see tracking.Current
class Write:
    """The row a finding has after the export (transition or not)."""

    key: str
    status: Status
    severity: str
    fingerprint: str
    tracked: dict[str, Any]
    epss: float | None
    snapshot: dict[str, Any]
    first_seen: float
    opened_at: float
    resolved_at: float | None
    # ``tracked`` is what ``tracking.tracked_from(snapshot)`` gives, to the byte: a finding of
    # the export, whose fields and snapshot were both read from its row (tests/test_tracking.py)
    derived: bool = dataclasses.field(default=False, repr=False, compare=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    transitions: list[Transition]
    writes: list[Write]


def disappeared(priors: Mapping[str, Prior], present: Iterable[str]) -> set[str]:
    """Open findings of the store the export no longer lists."""
    keys = set(present)
    return {key for key, prior in priors.items() if prior.status == "open" and key not in keys}


def needed(priors: Mapping[str, Prior], seen: Sequence[Seen], gone: Iterable[str]) -> set[str]:
    """Keys whose full stored state ``detect`` needs: changed, back, or gone."""
    keys = {entry.key for entry in seen if entry.current is not None and entry.key in priors}
    return keys | set(gone)


def tracked_changes(
    old: Mapping[str, Any], new: Mapping[str, Any], old_epss: float | None,
    new_epss: float | None, delta: float | None,
) -> tuple[tuple[str, Any, Any], ...]:  # fmt: skip
    """(field, old, new) for each tracked field that changed (aliases: only additions), and
    EPSS when it moved at least ``delta``: what a ``changed`` transition reports."""
    found = []
    for name in TRACKED:
        before, after = old.get(name), new[name]
        if name == "aliases":
            if set(after) - set(before or ()):
                found.append((name, before or [], after))
        elif before != after:
            found.append((name, before, after))
    if epss_moved(old_epss, new_epss, delta):
        found.append(("epss", old_epss, new_epss))
    return tuple(found)


def detect(
    seen: Sequence[Seen],
    stored: Mapping[str, Stored],
    gone: Iterable[str],
    *,
    now: float,
    suppressions: Mapping[str, Suppression],
    epss_delta: float | None = None,
    retracted: Collection[str] = (),
) -> Plan:
    """Transitions and row writes for one export. ``stored``: the full state of the keys
    ``needed`` named; ``suppressions``: DT's list (suppressed included), for the gone keys;
    ``retracted``: the findings DT 5 said it retracted (VULNERABILITY_RETRACTED)."""
    transitions: list[Transition] = []
    writes: list[Write] = []
    for entry in seen:
        current = entry.current
        if current is None:
            continue
        before = stored.get(entry.key)
        write, transition = _present(current, before, now, epss_delta)
        writes.append(write)
        if transition is not None:
            transitions.append(transition)
    for key in sorted(gone):
        before = stored[key]
        listed = suppressions.get(key)
        if listed is not None and not listed.suppressed:
            continue  # DT lists it, unsuppressed: it came back after the export; next time
        reason = "retracted_by_dt" if key in retracted else "not_in_export"
        transition, write = _left(before, listed, now, reason)
        transitions.append(transition)
        writes.append(write)
    return Plan(transitions, writes)


def _present(
    current: Current, before: Stored | None, now: float, delta: float | None
) -> tuple[Write, Transition | None]:
    write = Write(
        key=current.key,
        status="open",
        severity=current.severity,
        fingerprint=current.fingerprint,
        tracked=current.tracked,
        epss=current.epss,
        snapshot=snapshot(current.parts),
        first_seen=now,
        opened_at=now,
        resolved_at=None,
        derived=True,
    )
    if before is None:
        return write, _transition("opened", current, write, None, ())
    if before.status != "open":
        write = dataclasses.replace(write, first_seen=min(before.first_seen, now))
        return write, _transition("reopened", current, write, before.status, ())
    changes = tracked_changes(before.tracked, current.tracked, before.epss, current.epss, delta)
    moved = epss_moved(before.epss, current.epss, delta)
    write = dataclasses.replace(
        write,
        first_seen=min(before.first_seen, now),
        opened_at=min(before.opened_at, now),
        # tracked EPSS is compared with the value last reported, so a slow drift still counts
        epss=before.epss if delta is not None and not moved else current.epss,
    )
    if not changes:  # aliases dropped, or EPSS moved less than the threshold: no event
        return write, None
    return write, _transition("changed", current, write, "open", changes)


def _transition(
    kind: Kind,
    current: Current,
    write: Write,
    previous: Status | None,
    changes: tuple[tuple[str, Any, Any], ...],
) -> Transition:
    return Transition(
        kind=kind,
        key=current.key,
        severity=current.severity,
        parts=current.parts,
        previous_status=previous,
        changes=changes,
        first_seen=write.first_seen,
        opened_at=write.opened_at,
        resolved_at=None,
    )


def _left(
    before: Stored, listed: Suppression | None, now: float, reason: str
) -> tuple[Transition, Write]:
    """A finding no longer in the export: suppressed when DT says so, else resolved."""
    before = _not_after(before, now)
    parts = with_long_texts_absent(before.snapshot)
    kind: Kind = "resolved"
    status: Status = "resolved"
    if listed is not None and listed.suppressed:
        kind = status = "suppressed"
        parts = {
            **parts,
            "analysis": {"state": listed.state, "suppressed": True, "detail": listed.detail},
        }
    transition = Transition(
        kind=kind,
        key=before.key,
        severity=before.severity,
        parts=parts,
        previous_status=before.status,
        changes=(),
        first_seen=before.first_seen,
        opened_at=before.opened_at,
        resolved_at=now,
        reason=reason if kind == "resolved" else None,
    )
    write = Write(
        key=before.key,
        status=status,
        severity=before.severity,
        fingerprint=before.fingerprint,
        tracked=before.tracked,
        epss=before.epss,
        snapshot=snapshot(parts),
        first_seen=before.first_seen,
        opened_at=before.opened_at,
        resolved_at=now,
    )
    return transition, write


def _not_after(before: Stored, now: float) -> Stored:
    """No finding was seen or opened after ``now``: times an older release took from an export
    stamped in the future (a DT clock error) are brought back to ``now``."""
    if before.first_seen <= now and before.opened_at <= now:
        return before
    return dataclasses.replace(
        before, first_seen=min(before.first_seen, now), opened_at=min(before.opened_at, now)
    )


def deleted(open_findings: Iterable[Stored], now: float) -> Plan:
    """DT confirmed the project is gone: every open finding resolves (``project_deleted``)."""
    transitions, writes = [], []
    for before in sorted(open_findings, key=lambda stored: stored.key):
        transition, write = _left(before, None, now, "project_deleted")
        transitions.append(transition)
        writes.append(write)
    return Plan(transitions, writes)


def resync(open_findings: Iterable[Stored], now: float) -> list[Transition]:
    """``opened`` again for every open finding, from the store, marked as a resync; ``now``:
    the resync's time (nothing was opened after it)."""
    return [
        Transition(
            kind="opened",
            key=before.key,
            severity=before.severity,
            parts=with_long_texts_absent(before.snapshot),
            previous_status=None,
            changes=(),
            first_seen=before.first_seen,
            opened_at=before.opened_at,
            resolved_at=None,
            resync=True,
        )
        for before in (
            _not_after(stored, now) for stored in sorted(open_findings, key=lambda s: s.key)
        )
    ]


def suppressions_of(rows: Iterable[Mapping[str, Any]]) -> dict[str, Suppression]:
    """DT's findings list (``?suppressed=true``) by finding key; explicit nulls are absent."""
    found: dict[str, Suppression] = {}
    for row in rows:
        analysis = row.get("analysis") or {}
        state = analysis.get("state")
        found.setdefault(
            row["matrix"],
            Suppression(
                suppressed=analysis.get("isSuppressed") is True,
                state=state.lower() if isinstance(state, str) else None,
                detail=analyst_text(analysis.get("detail")),
            ),
        )
    return found
