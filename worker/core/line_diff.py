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

from worker.core import fpf, line_state, split
from worker.core.dates import epoch
from worker.core.diff import refuse_stale
from worker.core.errors import InvalidExport, Problem
from worker.core.line_compare import LineTransition, compare
from worker.core.line_findings import group
from worker.core.lines import Line
from worker.core.validation import Contract

__all__ = ["LineDiff", "LineTransition", "diff"]


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
    # OLD as the stream would have stored it, every finding first seen when OLD was taken
    stored = line_state.of_export(
        earlier, {row["matrix"]: row for row in old_rows}, zone, at=epoch(before.exported_at)
    )
    compared = compare(
        dataclasses.replace(stored, line=line),
        later,
        {row["matrix"]: row for row in new_rows},
        zone,
        now=epoch(after.exported_at),
    )
    return LineDiff(line=line, before=before, after=after, transitions=compared.transitions)
