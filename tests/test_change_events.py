"""A change event's body is serialized from fragments (``ChangeEvents.event``): it must be, byte
for byte, the whole CloudEvent as ``orjson.dumps`` writes it, for every kind of transition and
every shape of finding the fixtures hold (ids are not made from the body, but consumers and the
outbox see these bytes)."""

from __future__ import annotations

import dataclasses
from datetime import UTC
from typing import Any

import orjson

from tests.test_tracking import _rows
from worker.core import finding
from worker.core.change_events import CHANGE_EVENT_SCHEMA, ChangeEvents, iso
from worker.core.tracking import snapshot, with_long_texts_absent
from worker.core.transitions import Transition


def _whole(
    changes: ChangeEvents,
    t: Transition,
    sequence: int,
    project: dict[str, Any],
    fpf: dict[str, Any] | None,
) -> bytes:
    """The event as the release before fragments built it: one dict, dumped."""
    resolved = t.resolved_at
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": changes.event(t, sequence).id,
            "source": "dt-main",
            "type": f"dtrack-worker.finding.{t.kind}.v1",
            "subject": t.key,
            "time": "2026-11-30T10:00:01.000Z",
            "datacontenttype": "application/json",
            "dataschema": CHANGE_EVENT_SCHEMA,
            "sequence": f"{sequence:020d}",
            "data": {
                "finding_key": t.key,
                "project": project,
                "component": t.parts["component"],
                "vulnerability": t.parts["vulnerability"],
                "analysis": t.parts["analysis"],
                "attribution": t.parts["attribution"],
                "fpf": fpf,
                "change": {
                    "kind": t.kind,
                    "previous_status": t.previous_status,
                    "changes": [{"field": f, "old": o, "new": n} for f, o, n in t.changes],
                    "reason": t.reason,
                    "resync": t.resync,
                    "first_seen": iso(t.first_seen),
                    "opened_at": iso(t.opened_at),
                    "resolved_at": iso(resolved),
                    "time_open_seconds": (
                        None if resolved is None else round(resolved - t.opened_at, 3)
                    ),
                },
            },
        }
    )


def _transitions() -> list[Transition]:
    made = []
    for n, (_, row) in enumerate(_rows()):
        parts = finding.parts(row, UTC)
        opened = Transition(
            kind="opened",
            key=row["matrix"],
            severity=parts["vulnerability"]["severity"],
            parts=parts,
            previous_status=None,
            changes=(),
            first_seen=1764496801.0,
            opened_at=1764496801.0,
            resolved_at=None,
        )
        stored = with_long_texts_absent(snapshot(parts))  # the store's copy: texts appended
        made += [
            opened,
            dataclasses.replace(
                opened,
                kind="resolved",
                parts=stored,
                previous_status="open",
                resolved_at=1764500000.25 + n,
                reason="not_in_export",
            ),
            dataclasses.replace(
                opened,
                kind="suppressed",
                parts=stored,
                previous_status="open",
                resolved_at=1764500000.0,
                reason=None,
            ),
            dataclasses.replace(
                opened,
                kind="changed",
                key=row["matrix"] + 'é"\\\u2028',
                previous_status="open",
                changes=(("severity", "low", "high"), ("cvss_v3_score", None, 7.5)),
            ),
            dataclasses.replace(
                opened,
                kind="reopened",
                previous_status="resolved",
                first_seen=1.5 + n,
                opened_at=2.123456 + n,
            ),
            dataclasses.replace(opened, resync=True, first_seen=1700000000.0 + n),
        ]
    return made


def test_a_change_events_body_is_the_whole_cloudevent_dumped():
    transitions = _transitions()
    assert len(transitions) > 2400
    for fpf in ({"version": "1.2", "dt_version": "4.13.2", "exported_at": "2026-11-30"}, None):
        project = {"uuid": "7b0c6e52", "name": "shop \u2028é", "version": None, "tags": ["a"]}
        changes = ChangeEvents(
            source="dt-main",
            project=project,
            basis="export 2026-11-30T10:00:01.000Z",
            fpf=fpf,
            time="2026-11-30T10:00:01.000Z",
        )
        expected_project = project | {"active": None}
        for sequence, t in enumerate(transitions, 1):
            made = changes.event(t, sequence)
            assert made.body == _whole(changes, t, sequence, expected_project, fpf), t.key
            assert made.body == orjson.dumps(changes.cloudevent(t, sequence))
            assert made.type == f"dtrack-worker.finding.{t.kind}.v1"
            assert made.routing_key == f"delta.{t.kind}.{t.severity}"
