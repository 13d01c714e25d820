"""`state resync` of a line: ``opened`` again for every open finding of its stored state,
for a v2 consumer that lost its copy (or never had it: after `state migrate`). Pure."""

from __future__ import annotations

from worker.core.line_compare import LineTransition
from worker.core.line_state import LineState
from worker.core.tracking import with_long_texts_absent


def resync(state: LineState) -> list[LineTransition]:
    """The line's open findings as ``opened`` transitions (their events are marked ``resync``
    by ``LineChangeEvents(resync=True)``), described from the stored copy, in id order."""
    return [
        LineTransition(
            kind="opened",
            finding=stored.finding(state.line),
            matrix=stored.matrix,
            parts=with_long_texts_absent(stored.snapshot),
            severity=stored.severity,
            previous_status=None,
            changes=(),
            first_seen=stored.first_seen,
            opened_at=stored.opened_at,
        )
        for stored in sorted(state.open, key=lambda f: f.id)
    ]
