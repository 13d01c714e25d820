"""Transitions between two exports of one project, offline and without a state store. Pure.

What ``dtrack-worker diff OLD NEW`` prints: the change events the service would publish had it
applied OLD, then NEW. Every finding of OLD counts as open; a finding missing from NEW is
``resolved`` (offline there is no DT to ask whether it was suppressed instead). A NEW older
than OLD is refused: the service would call it stale and publish nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any

from worker.core import finding, fpf, split
from worker.core.change_events import ChangeEvents
from worker.core.dates import epoch
from worker.core.errors import InvalidExport, Problem
from worker.core.events import Event
from worker.core.tracking import Comparison, Prior, epss, fingerprint, snapshot, tracked
from worker.core.transitions import Stored, detect, disappeared, needed
from worker.core.validation import Contract


def _as_stored(
    _: fpf.Export, rows: Sequence[Mapping[str, Any]], zone: tzinfo
) -> list[tuple[str, dict[str, Any], float | None, dict[str, Any]]]:
    return [(row["matrix"], tracked(row), epss(row), finding.parts(row, zone)) for row in rows]


def refuse_stale(before: fpf.Export, after: fpf.Export) -> None:
    """InvalidExport when ``after`` was taken before ``before``: the service's stale rule."""
    if epoch(after.exported_at) < epoch(before.exported_at):
        raise InvalidExport(
            "NEW is older than OLD: the service would find it stale and change nothing",
            problems=(
                Problem(
                    "/meta/timestamp",
                    f"OLD was taken at {before.exported_at}, NEW at {after.exported_at}: "
                    "name the earlier export first",
                ),
            ),
        )


def diff(
    old: split.Raw, new: split.Raw, contract: Contract, *, source: str | None, zone: tzinfo
) -> list[Event]:
    """The change events from ``old`` to ``new``, numbered from 1; InvalidExport if either is
    not an export, they are not of the same project, or ``new`` is older (stale)."""
    before, rows = fpf.read(
        old, contract, lambda export, rows: _as_stored(export, rows, zone), source=source, zone=zone
    )
    then = epoch(before.exported_at)
    stored = {
        key: Stored(
            key=key,
            status="open",
            severity=fields["severity"],
            fingerprint=fingerprint(fields),
            tracked=fields,
            epss=score,
            snapshot=snapshot(parts),
            first_seen=then,
            opened_at=then,
            resolved_at=None,
        )
        for key, fields, score, parts in rows
    }
    priors = {key: Prior("open", s.fingerprint, s.epss) for key, s in stored.items()}
    after, seen = fpf.read(new, contract, Comparison(priors, zone, None), source=source, zone=zone)
    if after.project_uuid != before.project_uuid:
        raise InvalidExport(
            "the two exports are of different projects",
            problems=(
                Problem("/project/uuid", f"OLD is {before.project_uuid}, NEW {after.project_uuid}"),
            ),
        )
    refuse_stale(before, after)
    gone = disappeared(priors, (entry.key for entry in seen))
    wanted = needed(priors, seen, gone)
    plan = detect(
        seen,
        {key: stored[key] for key in wanted},
        gone,
        now=epoch(after.exported_at),
        suppressions={},
    )
    events = ChangeEvents(
        source=after.source,
        project={
            "uuid": after.project_uuid,
            "name": after.project_name,
            "version": after.project_version,
        },
        basis=f"export {after.exported_at}",
        fpf={
            "version": after.fpf_version,
            "dt_version": after.dt_version,
            "exported_at": after.exported_at,
        },
        time=after.exported_at,
    )
    return [events.event(transition, n) for n, transition in enumerate(plan.transitions, 1)]
