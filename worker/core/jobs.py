"""The job v1 message: "refresh this project's findings", one per project a notification names.

Pure: ids and times are passed in by the caller (the receiver or a backfill), never made here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from worker.core import ids
from worker.core.errors import InvalidJob
from worker.core.notifications import Routing
from worker.core.validation import Contract

JOB_TYPE = "dtrack-worker.job.v1"
JOB_SCHEMA = "urn:dtrack-worker:schema:job:1.3.0"
# the AMQP header naming the queue a job reports its progress to (dtrack-worker sync --wait)
PROGRESS_HEADER = "x-progress-queue"
# the AMQP header of a job replayed with `parked replay --force`: past the mass-resolve guard
FORCE_HEADER = "x-replay-force"

# Namespace of job ids: the same notification for the same project always makes the same job id.
JOB_ID_NAMESPACE = uuid.UUID("0b8f4a52-3c1e-4d8e-9d55-2a7f6c1e9b30")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    job_id: str
    project_uuid: str
    project_name: str | None
    trigger: str
    notification_id: str
    accepted_at: str
    correlation_id: str
    # what the notification said of the project (job 1.1.0); None where it said nothing
    project_version: str | None = None
    project_tags: list[str] | None = None
    project_active: bool | None = None
    # replayed with `parked replay --force` (FORCE_HEADER, not in the body): its export is
    # applied past the mass-resolve guard
    forced: bool = False
    # job 1.2.0: the finding a VULNERABILITY_RETRACTED names (project:component:vulnerability)
    retracted_finding: str | None = None
    # job 1.3.0: the BOM upload's token (DT 5's BOM_CONSUMED / BOM_PROCESSED), for the gate
    analysis_token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        facts = {
            key: value
            for key, value in (
                ("project_version", self.project_version),
                ("project_tags", self.project_tags),
                ("project_active", self.project_active),
                ("retracted_finding", self.retracted_finding),
                ("analysis_token", self.analysis_token),
            )
            if value is not None
        }
        return facts | {
            "type": JOB_TYPE,
            "job_id": self.job_id,
            "project_uuid": self.project_uuid,
            "project_name": self.project_name,
            "trigger": self.trigger,
            "notification_id": self.notification_id,
            "accepted_at": self.accepted_at,
            "correlation_id": self.correlation_id,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes, contract: Contract, forced: bool = False) -> Job:
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidJob(f"job message is not JSON: {exc}") from exc
        contract.check(document, InvalidJob, "job")
        fields = {key: value for key, value in document.items() if key != "type"}
        return cls(**fields, forced=forced)


def notification_id(routing: Routing, body: bytes) -> str:
    """v5's own notification id; v4 has none, so the SHA-256 of the body stands in for it."""
    return routing.notification_id or "sha256:" + hashlib.sha256(body).hexdigest()


def job_id(notification: str, project_uuid: str) -> str:
    return ids.uuid5(JOB_ID_NAMESPACE, f"{notification}\n{project_uuid}")


def utc_timestamp(moment: datetime) -> str:
    if moment.tzinfo is not UTC:  # the receiver's clock is read in UTC already
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" written as "Z"


def jobs_for(
    routing: Routing,
    *,
    notification: str,
    accepted_at: datetime,
    correlation_id: str,
) -> tuple[Job, ...]:
    """One job per project ``routing`` names."""
    accepted = utc_timestamp(accepted_at)
    return tuple(
        Job(
            job_id=job_id(notification, project.uuid),
            project_uuid=project.uuid,
            project_name=project.name,
            project_version=project.version,
            project_tags=None if project.tags is None else list(project.tags),
            project_active=project.active,
            retracted_finding=routing.retracted,
            analysis_token=routing.token,
            trigger=routing.group,
            notification_id=notification,
            accepted_at=accepted,
            correlation_id=correlation_id,
        )
        for project in routing.projects
    )
