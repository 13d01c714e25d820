"""A line whose every version DT deleted: its open findings resolve, ``project_deleted``, as a
deleted project's do in the per-project stream (``transitions.deleted``). Pure.

Suppressed findings stay stored, suppressed, as v1 keeps a deleted project's: a version of
the same name created later meets its triage again (carried, docs/lines.md)."""

from __future__ import annotations

import dataclasses

from worker.core.line_compare import LineTransition
from worker.core.line_state import LineState
from worker.core.tracking import with_long_texts_absent


@dataclasses.dataclass(frozen=True, slots=True)
class Closed:
    transitions: list[LineTransition]  # in id order
    state: LineState  # the line's state after them: its suppressed findings and alias map


def deleted(state: LineState, now: float) -> Closed:
    """Every open finding of ``state`` resolved at ``now``, described from its stored copy;
    as v1's ``transitions.deleted``, a time after ``now`` (taken from an export stamped in the
    future, a DT clock error) is brought back to ``now``."""
    transitions = [
        LineTransition(
            kind="resolved",
            finding=stored.finding(state.line),
            matrix=stored.matrix,
            parts=with_long_texts_absent(stored.snapshot),
            severity=stored.severity,
            previous_status="open",
            changes=(),
            first_seen=min(stored.first_seen, now),
            opened_at=min(stored.opened_at, now),
            resolved_at=now,
            reason="project_deleted",
        )
        for stored in sorted(state.open, key=lambda f: f.id)
    ]
    kept = {ident: f for ident, f in state.findings.items() if f.status != "open"}
    return Closed(transitions, LineState(state.line, state.known, kept))
