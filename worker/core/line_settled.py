"""A whole line compared, with the findings that only moved to DT's new UUIDs settled from their
packed entries. Pure.

A version switch gives every DT finding a new matrix (a new project, new component UUIDs), so the
whole line is compared (``line_compare``), and most of its findings just moved: one instance
before and after, at the same component version, open before and after, no tracked field (nor
EPSS beyond DTRACK_WORKER_TRACK_EPSS) changed. The comparison says nothing of such a finding and
stores it with its new instance, tracked fields and snapshot. ``settle`` makes that entry from
the stored one directly (its stored finding is never built), and the comparison runs on the
rest (``compare``'s ``settled``). The transitions and the packed state are those of the whole
comparison (tests/test_line_settled.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import tzinfo
from typing import Any

from worker.core import finding
from worker.core.line_compare import NOTHING_MADE, LineTransition, Made, compare
from worker.core.line_findings import Grouped, LineFinding
from worker.core.line_state import (
    CARRIED,
    EPSS,
    FIRST_SEEN,
    INSTANCES,
    OPENED_AT,
    STATUS,
    TRACKED,
    Decoded,
    LineState,
    Rows,
    built,
    entry_counts,
    entry_oldest_open,
    pack_entries,
    packed,
    packed_instance,
)
from worker.core.lines import Line
from worker.core.tracking import epss, snapshot, tracked
from worker.core.transitions import tracked_changes


@dataclasses.dataclass(frozen=True, slots=True)
class Whole:
    """The line after a whole comparison: its transitions and what the store keeps."""

    transitions: list[LineTransition]
    packed: bytes
    open_counts: dict[str, int]
    opened_before: int  # the line's open findings before: the guard's tally
    oldest_open_at: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class Settled:
    """The settled findings' new entries (by id), and the rest of the stored findings, built."""

    entries: dict[str, list[Any]]
    earlier: LineState


def compared(
    line: Line,
    decoded: Decoded,
    later: Grouped,
    rows: Rows,
    zone: tzinfo,
    *,
    now: float,
    carry: bool = False,
    epss_delta: float | None = None,
    made: Made = NOTHING_MADE,
    retracted: Collection[str] = (),
) -> Whole:
    """``line_compare.compare`` of the stored state ``decoded`` and ``later`` (grouped with its
    alias map), packed: the settled findings settled, the rest compared."""
    settled = settle(line, decoded, later, rows, zone, epss_delta=epss_delta, made=made)
    result = compare(
        settled.earlier, later, rows, zone, now=now, carry=carry, epss_delta=epss_delta,
        made=made, settled=settled.entries.keys(), retracted=retracted,
    )  # fmt: skip
    merged = settled.entries | {f.id: packed(f) for f in result.state.findings.values()}
    entries = {ident: merged[ident] for ident in sorted(merged)}  # the open counts in id order
    _, counts = entry_counts(entries)
    return Whole(
        result.transitions,
        pack_entries(result.state.known, entries),
        counts,
        len(settled.earlier.open) + len(settled.entries),
        entry_oldest_open(entries),
    )


def settle(
    line: Line,
    decoded: Decoded,
    later: Grouped,
    rows: Rows,
    zone: tzinfo,
    *,
    epss_delta: float | None = None,
    made: Made = NOTHING_MADE,
) -> Settled:
    """The stored findings that only moved (see the module's docstring), as entries; the rest
    built for the comparison."""
    by_id = {f.id: f for f in later.findings}
    entries: dict[str, list[Any]] = {}
    rest = {}
    for ident, entry in decoded.entries.items():
        after = by_id.get(ident)
        new = None if after is None else _moved(entry, after, rows, zone, epss_delta, made)
        if new is None:
            rest[ident] = built(entry)
        else:
            entries[ident] = new
    return Settled(entries, LineState(line, decoded.known, rest))


def _moved(
    entry: list[Any],
    after: LineFinding,
    rows: Rows,
    zone: tzinfo,
    epss_delta: float | None,
    made: Made,
) -> list[Any] | None:
    """``after``'s entry when the comparison would say nothing of it and store it as
    ``line_state.packed(line_state.stored(...))`` packs it; None otherwise."""
    if entry[STATUS] != "open" or entry[CARRIED]:
        return None
    if len(after.instances) != 1 or len(entry[INSTANCES]) != 1:
        return None
    instance, was = after.instances[0], entry[INSTANCES][0]
    if was[0] != instance.matrix and was[4] != instance.component_version:
        return None  # a version bump: ``changed``
    row = rows[instance.matrix]
    if (row.get("analysis") or {}).get("isSuppressed") is True:
        return None
    current = made.current.get(instance.matrix)
    parts = current.parts if current is not None else finding.parts(row, zone)
    fields = current.tracked if current is not None else tracked(row)
    score = epss(row)
    same = entry[TRACKED] == fields and (epss_delta is None or entry[EPSS] == score)
    if not same and tracked_changes(entry[TRACKED], fields, entry[EPSS], score, epss_delta):
        return None  # (equal fields and EPSS: no change, without asking field by field)
    shot = made.snapshots.get(instance.matrix)
    package = after.package
    return [
        after.id,
        [package.key, package.kind, package.problem],
        after.vulnerability,
        list(after.aliases),
        "open",
        False,
        [packed_instance(instance, False)],
        instance.matrix,
        fields["severity"],
        fields,
        score,
        shot if shot is not None else snapshot(parts),
        entry[FIRST_SEEN],
        entry[OPENED_AT],
    ]


def left(decoded: Decoded, later: Grouped) -> bool:
    """An open (or carried) stored finding is not among ``later``'s."""
    ids = {f.id for f in later.findings}
    return any(
        (entry[STATUS] == "open" or entry[CARRIED]) and ident not in ids
        for ident, entry in decoded.entries.items()
    )
