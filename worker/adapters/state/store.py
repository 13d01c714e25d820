"""The state store, for asyncio: each unit of work runs on a thread of the store's own, with a
connection of that thread's. Database errors stop here: callers see StateUnavailable (the job is
retried) or StateMoved (compare again)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import structlog

from worker.adapters.state import backend, queries, reports
from worker.adapters.state.backend import DB_ERRORS, StateUnavailable
from worker.adapters.state.queries import Apply, Committed, ProjectState, StateMoved
from worker.core.config import StateSettings
from worker.core.transitions import Stored

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
LEASE_SECONDS = 30.0

__all__ = ["Apply", "Committed", "ProjectState", "StateMoved", "StateUnavailable", "Store"]


class Store:
    def __init__(self, settings: StateSettings) -> None:
        url = settings.url.reveal()
        self.display_url = settings.display_url
        self.dialect = backend.dialect_of(url)
        self._connect = backend.connector(url)
        # SQLite writes one at a time anyway; PostgreSQL gets a few connections per process
        threads = 1 if self.dialect.name == "sqlite" else 4
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="state")
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._migrated = False  # every unit of work migrates first until one migration ran

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: StateSettings, *, migrate: bool = True) -> AsyncIterator[Store]:
        store = cls(settings)
        try:
            if migrate:
                try:
                    applied = await store.migrate()
                except StateUnavailable as exc:  # started before the database: it heals later
                    log.warning("state.unavailable", store=store.display_url, error=str(exc))
                else:
                    log.info("state.ready", store=store.display_url, migrations_applied=applied)
            else:
                store._migrated = True
            yield store
        finally:
            await store.close()

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(Exception):
                    connection.close()
            self._connections.clear()

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _forget(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._lock:  # else every outage would keep a dead connection listed
                if connection in self._connections:
                    self._connections.remove(connection)
            with contextlib.suppress(Exception):
                connection.close()

    async def _run(self, work: Callable[..., _T], *args: Any) -> _T:
        def unit() -> _T:
            try:
                connection = self._connection()
                if not self._migrated:
                    applied = backend.migrate(connection, self.dialect)
                    self._migrated = True
                    if applied:
                        log.info("state.migrated", store=self.display_url, applied=applied)
                return work(connection.cursor(), self.dialect, *args)
            except DB_ERRORS as exc:
                self._forget()  # a broken connection is opened again next time
                raise StateUnavailable(
                    f"the state store at {self.display_url} failed: {type(exc).__name__}: "
                    f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                ) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, unit)

    # -- the units of work ---------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        """Apply the migrations this release ships; returns the ones applied now."""
        self._migrated = True  # this unit is the migration
        try:
            return await self._run(
                lambda cursor, dialect: backend.migrate(cursor.connection, dialect)
            )
        except BaseException:
            self._migrated = False
            raise

    async def pending_migrations(self) -> list[int]:
        return await self._run(
            lambda cursor, dialect: backend.pending_migrations(cursor.connection, dialect)
        )

    async def state(self, project: str) -> ProjectState:
        return await self._run(queries.read_state, project)

    async def stored(self, project: str, keys: Iterable[str]) -> dict[str, Stored]:
        return await self._run(queries.read_stored, project, list(keys))

    async def open_findings(self, project: str) -> list[Stored]:
        return await self._run(queries.read_open, project)

    async def apply(self, work: Apply) -> Committed:
        return await self._run(queries.apply, work)

    async def record_outcome(self, project: str, outcome: str) -> None:
        await self._run(queries.record_outcome, project, outcome, time.time())

    async def pending_projects(self, limit: int) -> list[str]:
        return await self._run(queries.pending_projects, limit)

    async def lease(self, project: str, owner: str) -> bool:
        return await self._run(queries.lease, project, owner, time.time(), LEASE_SECONDS)

    async def release(self, project: str, owner: str) -> None:
        await self._run(queries.release, project, owner)

    async def outbox_batch(
        self, project: str, limit: int, after: int = 0
    ) -> list[queries.OutboxRow]:
        return await self._run(queries.outbox_batch, project, limit, after)

    async def delete_outbox(self, ids: Sequence[int]) -> None:
        await self._run(queries.delete_outbox, list(ids))

    async def outbox_depth(self) -> tuple[int, float | None]:
        return await self._run(queries.outbox_depth)

    async def projects(self, project: str | None = None) -> list[reports.ProjectReport]:
        return await self._run(reports.projects, project, time.time())

    async def open_by_severity(self) -> reports.Overview:
        return await self._run(reports.overview, time.time())

    async def all_projects(self) -> list[str]:
        return await self._run(reports.project_uuids)

    async def read(self, work: Callable[..., _T], *args: Any) -> _T:
        """A read of the console's (worker.adapters.state.console_queries), on the store's
        threads: ``work(cursor, dialect, *args)``."""
        return await self._run(work, *args)
