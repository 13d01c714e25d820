"""A changed re-export of a line's current version, compared package by package. Pure.

When the line's stored state was taken from this very project's view and the view moved (some
findings new, re-scored or gone), only the packages of those findings can move: alias groups,
ids and instance pairing are all per package (``line_findings.group``). So only the rows of
those packages are grouped and compared against their stored findings, and the stored findings
of every other package are packed again from their entries as read, never built. The
transitions and the state are those of the whole comparison (tests/test_line_increment.py).

A package is *touched* when one of its rows is among the matrices the project's comparison
wrote or found gone, or a row's instance (component version, purl, UUIDs, DT's suppression)
is not the one stored under its matrix, or the row is not stored at all: what the fingerprint
of the project's comparison does not cover is checked here rather than trusted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from worker.core.line_compare import Compared
from worker.core.line_findings import Grouped, group, instance_of
from worker.core.line_state import (
    INSTANCES,
    PACKAGE,
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
from worker.core.package import of_component


@dataclasses.dataclass(frozen=True, slots=True)
class Increment:
    """The touched packages' part of the line: their stored findings (``earlier``, with the
    whole alias map), their rows grouped (``later``), and the entries of the rest."""

    earlier: LineState
    later: Grouped
    untouched: dict[str, list[Any]]
    touched: frozenset[str]  # package keys


def prepare(
    line: Line,
    decoded: Decoded,
    rows: Rows,
    changed: Collection[str],
    *,
    project_version: str | None,
) -> Increment:
    """``rows``: the export's first row of each matrix; ``changed``: the matrices the project's
    comparison found new, changed, back or gone."""
    index: dict[str, tuple[list[Any], list[Any]]] = {}  # matrix -> (package, packed instance)
    for entry in decoded.entries.values():
        for stored_instance in entry[INSTANCES]:
            index[stored_instance[0]] = (entry[PACKAGE], stored_instance)
    touched = _touched(index, rows, changed, project_version)
    selected = [
        row
        for matrix, row in rows.items()
        if matrix in changed or matrix not in index or index[matrix][0][0] in touched
    ]
    findings = {}
    untouched = {}
    for ident, entry in decoded.entries.items():
        if entry[PACKAGE][0] in touched:
            findings[ident] = built(entry)
        else:
            untouched[ident] = entry
    return Increment(
        earlier=LineState(line, decoded.known, findings),
        later=group(line, selected, decoded.known, project_version=project_version),
        untouched=untouched,
        touched=frozenset(touched),
    )


def _touched(
    index: Mapping[str, tuple[list[Any], list[Any]]],
    rows: Rows,
    changed: Collection[str],
    project_version: str | None,
) -> set[str]:
    """The package keys whose findings may move (see the module's docstring)."""
    touched: set[str] = set()
    for matrix in changed:
        was = index.get(matrix)
        if was is not None:
            touched.add(was[0][0])
        row = rows.get(matrix)
        if row is not None:
            touched.add(of_component(row["component"]).key)
    for matrix, row in rows.items():
        if matrix in changed:
            continue
        was = index.get(matrix)
        if was is None:
            touched.add(of_component(row["component"]).key)
            continue
        package, stored_instance = was
        if stored_instance != _packed_instance(row, project_version):
            touched.update((package[0], of_component(row["component"]).key))
        elif package[1] != "purl" and of_component(row["component"]).key != package[0]:
            # a name, CPE or unreadable purl key: a renamed component without a new matrix
            touched.update((package[0], of_component(row["component"]).key))
    return touched


def _packed_instance(row: Mapping[str, Any], project_version: str | None) -> list[Any]:
    """The row's instance as ``line_state.packed`` stores it."""
    suppressed = (row.get("analysis") or {}).get("isSuppressed") is True
    return packed_instance(instance_of(row, project_version), suppressed)


@dataclasses.dataclass(frozen=True, slots=True)
class Finished:
    packed: bytes
    open_counts: dict[str, int]
    opened_before: int  # the line's open findings before: the guard's tally
    oldest_open_at: float | None = None


def finish(increment: Increment, compared: Compared) -> Finished:
    """The line's whole state after ``compared`` (the touched packages' comparison)."""
    entries = dict(increment.untouched)
    entries.update((f.id, packed(f)) for f in compared.state.findings.values())
    untouched_open, _ = entry_counts(increment.untouched)
    opened_before = untouched_open + len(increment.earlier.open)
    _, counts = entry_counts(entries)
    return Finished(
        pack_entries(compared.state.known, entries), counts, opened_before,
        entry_oldest_open(entries),
    )  # fmt: skip
