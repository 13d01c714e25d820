"""Transitions as CloudEvents: ``dtrack-worker.finding.<kind>.v1``. Pure.

Each carries the finding as the finding events do, plus a ``change`` object, and the CloudEvents
``sequence`` extension: a per-project number that grows with every transition (zero-padded, so
its text sorts as its number does). The id is made of the export's stamp, the transition and its
sequence: the same export applied to the same state always gives the same ids (a redelivered
job, a re-published outbox row, another store fed the same exports), while two exports DT
stamped in the same second, whose transitions take further sequence numbers, give distinct ids.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from worker.core.events import DATA_CONTENT_TYPE, SPEC_VERSION, Event
from worker.core.ids import Uuid5Prefix
from worker.core.transitions import Transition

CHANGE_EVENT_SCHEMA = "urn:dtrack-worker:schema:finding-change:1.2.0"
KINDS = ("opened", "changed", "resolved", "suppressed", "reopened")
# Namespace of transition ids (a fixed UUIDv4): changing it would change every id emitted.
CHANGE_ID_NAMESPACE = uuid.UUID("9a3c1f57-2d4e-4b8a-8f61-0c7d5e2b9f13")
SEQUENCE_DIGITS = 20


def change_type(kind: str) -> str:
    return f"dtrack-worker.finding.{kind}.v1"


def routing_key(kind: str, severity: str) -> str:
    return f"delta.{kind}.{severity}"


def iso(moment: float | None) -> str | None:
    """Epoch seconds as the events write instants (UTC, milliseconds)."""
    if moment is None:
        return None
    text = datetime.fromtimestamp(moment, UTC).replace(tzinfo=None).isoformat("T", "milliseconds")
    return text + "Z"


class ChangeEvents:
    """Events for the transitions of one project, from one export (or one other occasion).

    A first sync makes one per finding: what every event of the occasion shares is serialized
    once, here, and each body is those fragments joined around the event's own values, byte for
    byte what ``orjson.dumps`` writes for the whole CloudEvent (``cloudevent`` builds it whole;
    tests/test_change_events.py holds the two together).
    """

    def __init__(
        self,
        *,
        source: str,
        project: dict[str, Any],
        basis: str,
        fpf: dict[str, Any] | None,
        time: str,
    ) -> None:
        """``basis`` names the occasion in the ids: the export's timestamp, or the job that
        found the project gone, or a resync run; ``time`` is the events' time."""
        self._source = source
        # tags and activity are null where unknown (a diff of files, a gone project, a resync)
        self._project = project | {"tags": project.get("tags"), "active": project.get("active")}
        self._fpf = fpf
        self._time = time
        self._ids = Uuid5Prefix(CHANGE_ID_NAMESPACE, f"{source}\n{project['uuid']}\n{basis}\n")
        self._after_id = b'","source":' + orjson.dumps(source) + b',"type":'
        self._after_subject = (
            b',"time":' + orjson.dumps(time)
            + b',"datacontenttype":' + orjson.dumps(DATA_CONTENT_TYPE)
            + b',"dataschema":' + orjson.dumps(CHANGE_EVENT_SCHEMA)
            + b',"sequence":"'
        )  # fmt: skip
        self._after_key = b',"project":' + orjson.dumps(self._project) + b","
        self._fpf_change = b',"fpf":' + orjson.dumps(fpf) + b',"change":'
        self._instants: dict[float | None, str | None] = {}  # a first sync's are all one
        self._changes: dict[tuple[Any, ...], bytes] = {}  # the same, serialized

    def _iso(self, moment: float | None) -> str | None:
        text = self._instants.get(moment, _UNSEEN)
        if text is _UNSEEN:
            text = self._instants[moment] = iso(moment)
        return text  # type: ignore[return-value]

    def _change(self, transition: Transition) -> dict[str, Any]:
        resolved = transition.resolved_at
        return {
            "kind": transition.kind,
            "previous_status": transition.previous_status,
            "changes": [
                {"field": field, "old": old, "new": new} for field, old, new in transition.changes
            ],
            "reason": transition.reason,
            "resync": transition.resync,
            "first_seen": self._iso(transition.first_seen),
            "opened_at": self._iso(transition.opened_at),
            "resolved_at": self._iso(resolved),
            "time_open_seconds": (
                None if resolved is None else round(resolved - transition.opened_at, 3)
            ),
        }

    def _change_json(self, transition: Transition) -> bytes:
        """``_change`` serialized; one text for the transitions that share it (a first sync's
        ``opened`` events all have the same: no changes, the export's time)."""
        if transition.changes:
            return orjson.dumps(self._change(transition))
        shared = (
            transition.kind,
            transition.previous_status,
            transition.reason,
            transition.resync,
            transition.first_seen,
            transition.opened_at,
            transition.resolved_at,
        )
        text = self._changes.get(shared)
        if text is None:
            if len(self._changes) >= _SHARED_CHANGES:
                self._changes.clear()
            text = self._changes[shared] = orjson.dumps(self._change(transition))
        return text

    def _identifier(self, transition: Transition, sequence: int) -> str:
        # the sequence too: DT stamps exports to the second, and two exports of one second
        # changing one finding twice made two events of one id (review 2 L8)
        return self._ids(f"{transition.key}\n{transition.kind}\n{sequence}")

    def cloudevent(self, transition: Transition, sequence: int) -> dict[str, Any]:
        """The event ``event`` serializes, as a whole."""
        parts = transition.parts
        return {
            "specversion": SPEC_VERSION,
            "id": self._identifier(transition, sequence),
            "source": self._source,
            "type": change_type(transition.kind),
            "subject": transition.key,
            "time": self._time,
            "datacontenttype": DATA_CONTENT_TYPE,
            "dataschema": CHANGE_EVENT_SCHEMA,
            "sequence": f"{sequence:0{SEQUENCE_DIGITS}d}",
            "data": {
                "finding_key": transition.key,
                "project": self._project,
                "component": parts["component"],
                "vulnerability": parts["vulnerability"],
                "analysis": parts["analysis"],
                "attribution": parts["attribution"],
                "fpf": self._fpf,
                "change": self._change(transition),
            },
        }

    def event(self, transition: Transition, sequence: int) -> Event:
        identifier = self._identifier(transition, sequence)
        parts = transition.parts
        kind = transition.kind
        quoted_key = orjson.dumps(transition.key)
        own = orjson.dumps(
            {
                "component": parts["component"],
                "vulnerability": parts["vulnerability"],
                "analysis": parts["analysis"],
                "attribution": parts["attribution"],
            }
        )
        body = b"".join(
            (
                _HEAD,
                identifier.encode(),
                self._after_id,
                _QUOTED_TYPES[kind],
                b',"subject":',
                quoted_key,
                self._after_subject,
                f"{sequence:0{SEQUENCE_DIGITS}d}".encode(),
                b'","data":{"finding_key":',
                quoted_key,
                self._after_key,
                own[1:-1],  # its keys, into "data"
                self._fpf_change,
                self._change_json(transition),
                b"}}",
            )
        )
        return Event(identifier, routing_key(kind, transition.severity), body, change_type(kind))


_UNSEEN = object()
_SHARED_CHANGES = 1024  # texts kept at most (a resync's findings each have their own times)
_HEAD = b'{"specversion":' + orjson.dumps(SPEC_VERSION) + b',"id":"'
_QUOTED_TYPES = {kind: orjson.dumps(change_type(kind)) for kind in KINDS}
