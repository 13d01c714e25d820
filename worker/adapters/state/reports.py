"""What the state store tells people: `dtrack-worker status` per project, and the overview the
metrics show (open findings, the oldest open one, time to resolve), by severity."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from worker.adapters.state.backend import Dialect
from worker.adapters.state.queries import SEVERITIES

_OPEN = ", ".join(f"p.open_{severity}" for severity in SEVERITIES)


@dataclasses.dataclass(frozen=True, slots=True)
class Selector:
    """Which projects to report: the one of ``uuid``, or those of any (name, version) in
    ``names`` (version None: each version). Names and versions are those of the project's last
    export, compared exactly."""

    uuid: str | None = None
    names: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Selector:
        """A uuid, a name, or name@version: split at the last @ (npm's ``@scope/name@1.0``),
        and a name that holds that @ matches too."""
        try:
            parsed = str(uuid.UUID(text))
        except ValueError:
            parsed = ""
        if parsed == text.lower():  # the usual form only: a name may be 32 hex digits
            return cls(uuid=parsed)
        name, at, version = text.rpartition("@")
        if at and name:
            return cls(names=((text, None), (name, version)))
        return cls(names=((text, None),))

    def where(self) -> tuple[str, tuple[str, ...]]:
        """The condition on ``projects p``, and its parameters."""
        if self.uuid is not None:
            return "p.uuid = %s", (self.uuid,)
        conditions, params = [], []
        for name, version in self.names:
            conditions.append(
                "p.name = %s" if version is None else "(p.name = %s AND p.version = %s)"
            )
            params += [name] if version is None else [name, version]
        return "(" + " OR ".join(conditions) + ")", tuple(params)


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectReport:
    uuid: str
    name: str | None
    version: str | None
    last_exported_at: str | None
    last_seen_at: float | None
    last_outcome: str | None
    last_outcome_at: float | None
    deleted: bool
    open: dict[str, int]
    oldest_open_seconds: float | None
    mean_time_to_resolve_seconds: dict[str, float]

    def document(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def project_uuids(cursor: Any, dialect: Dialect) -> list[str]:
    cursor.execute("SELECT uuid FROM projects WHERE deleted_at IS NULL ORDER BY uuid")
    return [row[0] for row in cursor.fetchall()]


def projects(
    cursor: Any, dialect: Dialect, selector: Selector | None, now: float
) -> list[ProjectReport]:
    condition, params = selector.where() if selector else ("", ())
    where = f"WHERE {condition}" if condition else ""
    cursor.execute(
        dialect.sql(
            "SELECT p.uuid, p.name, p.version, p.last_exported_at, p.last_seen_at, "
            f"p.last_outcome, p.last_outcome_at, p.deleted_at, {_OPEN}, "
            "(SELECT MIN(f.opened_at) FROM findings f "
            " WHERE f.project = p.uuid AND f.status = 'open') "
            f"FROM projects p {where} ORDER BY p.name, p.version, p.uuid"
        ),
        params,
    )
    rows = cursor.fetchall()
    resolve = _resolve_times(cursor, dialect, condition, params)
    reports = []
    for row in rows:
        uuid, name, version, exported, seen, outcome, outcome_at, deleted = row[:8]
        counts = dict(zip(SEVERITIES, row[8 : 8 + len(SEVERITIES)], strict=True))
        oldest = row[8 + len(SEVERITIES)]
        reports.append(
            ProjectReport(
                uuid=uuid,
                name=name,
                version=version,
                last_exported_at=exported,
                last_seen_at=seen,
                last_outcome=outcome,
                last_outcome_at=outcome_at,
                deleted=deleted is not None,
                open=counts,
                oldest_open_seconds=None if oldest is None else round(now - oldest, 1),
                mean_time_to_resolve_seconds=resolve.get(uuid, {}),
            )
        )
    return reports


def _resolve_times(
    cursor: Any, dialect: Dialect, condition: str, params: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    where = f"AND project IN (SELECT p.uuid FROM projects p WHERE {condition})" if condition else ""
    cursor.execute(
        dialect.sql(
            "SELECT project, severity, AVG(resolved_at - opened_at) FROM findings "
            f"WHERE status = 'resolved' {where} GROUP BY project, severity"
        ),
        params,
    )
    found: dict[str, dict[str, float]] = {}
    for project, severity, seconds in cursor.fetchall():
        found.setdefault(project, {})[severity] = round(float(seconds), 1)
    return found


@dataclasses.dataclass(frozen=True, slots=True)
class Overview:
    open: dict[str, int]
    oldest_open_seconds: dict[str, float]
    outbox_rows: int
    outbox_oldest_seconds: float


def overview(cursor: Any, dialect: Dialect, now: float) -> Overview:
    sums = ", ".join(f"COALESCE(SUM(open_{severity}), 0)" for severity in SEVERITIES)
    cursor.execute(f"SELECT {sums} FROM projects WHERE deleted_at IS NULL")
    counts = dict(zip(SEVERITIES, (int(n) for n in cursor.fetchone()), strict=True))
    cursor.execute(
        "SELECT severity, MIN(opened_at) FROM findings WHERE status = 'open' GROUP BY severity"
    )
    oldest = {severity: round(now - float(at), 1) for severity, at in cursor.fetchall()}
    cursor.execute("SELECT COUNT(*), MIN(created_at) FROM outbox")
    rows, first = cursor.fetchone()
    return Overview(
        open=counts,
        oldest_open_seconds=oldest,
        outbox_rows=int(rows),
        outbox_oldest_seconds=0.0 if first is None else round(now - float(first), 1),
    )
