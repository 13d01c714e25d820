"""What DT says of a project beyond its export: name, version, tags, activity, for the events
(``data.project.tags``, ``.active``) and the project scope. One ``GET /api/v1/project/{uuid}``
per project, reused for DTRACK_WORKER_PROJECT_CACHE_SECONDS; a failed lookup never fails a job.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from worker.core.errors import DtUnavailable, PermanentError, TransientError
from worker.core.fpf import UNKNOWN, ProjectFacts
from worker.core.jobs import Job
from worker.core.scope import OUT, UNDECIDED, Scope

log = structlog.get_logger(__name__)

MAX_ENTRIES = 100_000


class ProjectSource(Protocol):
    async def project(self, project_uuid: str, *, retry: bool = True) -> dict[str, Any] | None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Project:
    name: str | None
    version: str | None
    facts: ProjectFacts


GONE = Project(None, None, ProjectFacts())  # DT has no such project (any more)


def described(project: dict[str, Any]) -> Project:
    """DT's project object (as GET /api/v1/project answers it) as what the events need."""
    tags = project.get("tags")
    names = (
        sorted({t["name"] for t in tags if isinstance(t, dict) and isinstance(t.get("name"), str)})
        if isinstance(tags, list)
        else None
    )
    active = project.get("active")
    name, version = project.get("name"), project.get("version")
    return Project(
        name if isinstance(name, str) else None,
        version if isinstance(version, str) else None,
        ProjectFacts(tags=names, active=active if isinstance(active, bool) else None),
    )


class Directory:
    def __init__(
        self,
        dt: ProjectSource,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dt = dt
        self._ttl = ttl
        self._clock = clock
        self._known: dict[str, tuple[float, Project]] = {}

    async def lookup(self, project_uuid: str) -> Project | None:
        """The project as DT describes it; GONE when DT has none; None when DT could not say
        (logged)."""
        now = self._clock()
        cached = self._known.get(project_uuid)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            found = await self._dt.project(project_uuid, retry=False)  # the export retries
        except (TransientError, PermanentError) as exc:
            log.warning("project.lookup_failed", project_uuid=project_uuid, error=str(exc))
            return None
        if found is None:  # gone: the export's fetch will say so
            return GONE
        project = described(found)
        if self._ttl > 0:
            if len(self._known) >= MAX_ENTRIES:
                self._known.clear()  # a crude bound: a portfolio this large re-reads, nothing more
            self._known[project_uuid] = (now, project)
        return project


async def about(
    directory: Directory | None, scope: Scope, job: Job
) -> tuple[ProjectFacts, str | None]:
    """The project's tags and activity for its events, and why it is out of scope (None: in
    scope). DtUnavailable (the job is retried) when the scope needs tags DT cannot give now."""
    project: Project | None
    if job.project_tags is not None:  # the notification said: no need to ask DT
        project = Project(
            job.project_name,
            job.project_version,
            ProjectFacts(tags=sorted(job.project_tags), active=job.project_active),
        )
    elif directory is None:
        return UNKNOWN, None
    else:
        project = await directory.lookup(job.project_uuid)
    if project is GONE:
        return UNKNOWN, None  # the export's fetch confirms it, and the project is closed
    verdict, why = scope.decide(
        project.name if project else job.project_name,
        project.version if project else None,
        project.facts.tags if project else None,
    )
    if verdict == OUT:
        return UNKNOWN, why
    if verdict == UNDECIDED:
        raise DtUnavailable(
            f"cannot tell whether project {job.project_uuid} is in scope: its {why} could not "
            "be read from DT (GET /api/v1/project)"
        )
    return (project.facts if project else UNKNOWN), None
