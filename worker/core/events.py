"""The output contract: finding events as CloudEvents 1.0 (structured JSON), and their ids.

Constants here must match ``schemas/finding-event.v1.schema.json``; a test holds them together.
"""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

import orjson

from worker.core.ids import Uuid5Prefix

SPEC_VERSION = "1.0"
FINDING_EVENT_TYPE = "dtrack-worker.finding.v1"
FINDING_EVENT_SCHEMA = "urn:dtrack-worker:schema:finding-event:1.1.0"
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
    type: str = FINDING_EVENT_TYPE

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


# -- events about an export or a job, next to the finding events --------------------------

SUMMARY_EVENT_TYPE = "dtrack-worker.export.summary.v1"
GONE_EVENT_TYPE = "dtrack-worker.project.gone.v1"
INVALID_EVENT_TYPE = "dtrack-worker.export.invalid.v1"
SERVICE_EVENT_SCHEMA = "urn:dtrack-worker:schema:service-event:1.1.0"
SUMMARY_ROUTING_KEY = "export.summary"
GONE_ROUTING_KEY = "project.gone"
INVALID_ROUTING_KEY = "error.invalid_export"


def _service_event(
    type_: str,
    routing_key: str,
    *,
    source: str,
    subject: str,
    time: str,
    name: str,
    data: dict[str, Any],
    sequence: int | None = None,
) -> Event:
    identifier = Uuid5Prefix(EVENT_ID_NAMESPACE, f"{source}\n")(name)
    cloudevent: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": identifier,
        "source": source,
        "type": type_,
        "subject": subject,
        "time": time,
        "datacontenttype": DATA_CONTENT_TYPE,
        "dataschema": SERVICE_EVENT_SCHEMA,
    }
    if sequence is not None:  # delta mode: one order for all of a project's events
        cloudevent["sequence"] = f"{sequence:020d}"
    cloudevent["data"] = data
    return Event(identifier, routing_key, orjson.dumps(cloudevent), type_)


def export_summary(
    *,
    source: str,
    project: dict[str, Any],
    exported_at: str,
    fpf: dict[str, Any],
    finding_count: int,
    severities: dict[str, int],
    repeated_rows: int,
    duration_ms: float,
    job: dict[str, Any],
    transitions: dict[str, int] | None = None,
    baseline: bool = False,
    sequence: int | None = None,
) -> Event:
    """One per export, after its finding events: what was published, and how long it took.

    Same export and job, same id: a redelivered job republishes it identically. The job is in
    the id because DT stamps exports to the second: two jobs that fetch a project within one
    second are two summaries.
    """
    data: dict[str, Any] = {
        "project": project,
        "finding_count": finding_count,
        "severities": {severity: severities.get(severity, 0) for severity in SEVERITY_RANK},
        "repeated_rows": repeated_rows,
        "fpf": fpf,
        "duration_ms": round(duration_ms, 1),
        "job": job,
    }
    if transitions is not None:
        data["transitions"] = transitions
    if baseline:
        data["baseline"] = True
    return _service_event(
        SUMMARY_EVENT_TYPE,
        SUMMARY_ROUTING_KEY,
        source=source,
        subject=project["uuid"],
        time=exported_at,
        name=f"{project['uuid']}\n{exported_at}\nsummary\n{job['job_id']}",
        data=data,
        sequence=sequence,
    )


def project_gone(
    *,
    source: str,
    project: dict[str, Any],
    time: str,
    job: dict[str, Any],
    sequence: int | None = None,
) -> Event:
    """DT confirmed the project is gone: downstream can close its findings."""
    return _service_event(
        GONE_EVENT_TYPE,
        GONE_ROUTING_KEY,
        source=source,
        subject=project["uuid"],
        time=time,
        name=f"{project['uuid']}\ngone\n{job['job_id']}",
        data={"project": project, "job": job},
        sequence=sequence,
    )


def export_invalid(
    *,
    source: str,
    project: dict[str, Any],
    time: str,
    job: dict[str, Any],
    message: str,
    problems: list[dict[str, str]],
) -> Event:
    """The export broke the FPF contract; the job is parked with the same report."""
    return _service_event(
        INVALID_EVENT_TYPE,
        INVALID_ROUTING_KEY,
        source=source,
        subject=project["uuid"],
        time=time,
        name=f"{project['uuid']}\ninvalid\n{job['job_id']}",
        data={"project": project, "job": job, "message": message, "problems": problems},
    )
