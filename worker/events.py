"""The output contract: finding events as CloudEvents 1.0 (structured JSON), and their ids.

Constants here must match ``schemas/finding-event.v1.schema.json``; a test holds them together.
"""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

import orjson

from worker.ids import Uuid5Prefix

SPEC_VERSION = "1.0"
FINDING_EVENT_TYPE = "dtrack-worker.finding.v1"
FINDING_EVENT_SCHEMA = "urn:dtrack-worker:schema:finding-event:1.0.0"
DATA_CONTENT_TYPE = "application/json"
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
DEFAULT_SOURCE = "dependency-track"

# Namespace of every event id (a fixed UUIDv4); changing it would change every id ever emitted.
EVENT_ID_NAMESPACE = uuid.UUID("5d4c1e0e-8c43-4b67-9a0b-6f3f2f1b8a21")

SEVERITY_RANK: dict[str, int] = {
    "critical": 0,
    "high": 1,
    "medium": 2,
    "low": 3,
    "info": 4,
    "unassigned": 5,
}


class Event(NamedTuple):
    """One event ready to publish: its id, where it is routed, and the serialized CloudEvent.

    Events are serialized as they are made: a 50k-finding export never holds 50k nested dicts.
    """

    id: str
    routing_key: str
    body: bytes

    def cloudevent(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed


def finding_routing_key(severity: str) -> str:
    return f"finding.{severity}"


class EventIds(Uuid5Prefix):
    """Deterministic UUIDv5 ids for the findings of one export.

    The name hashed is source, project uuid, export timestamp and finding key, joined by
    newlines; the prefix is hashed once per export, so an id costs one SHA-1 copy and update.
    """

    __slots__ = ()

    def __init__(self, source: str, project_uuid: str, exported_at: str) -> None:
        super().__init__(EVENT_ID_NAMESPACE, f"{source}\n{project_uuid}\n{exported_at}\n")
