"""The state store, for asyncio: each unit of work runs on a thread of the store's own, with a
connection of that thread's. Database errors stop here: callers see StateUnavailable (the job is
retried) or StateMoved (compare again); a store this release cannot run on, SchemaRefused.

``usable`` answers whether the store takes writes now (for /readyz and `check`): a write probe
on a thread and connection of its own, so a long job never delays it, cached briefly."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import structlog

from worker.adapters.state import (
    backend,
    checkpoints,
    compaction,
    history_queries,
    line_migration_queries,
    line_queries,
    outbox_queries,
    queries,
    reports,
    schema,
    space,
)
from worker.adapters.state.backend import DB_ERRORS, StateUnavailable, StoreMissing
from worker.adapters.state.queries import Apply, Committed, ProjectState, StateMoved
from worker.adapters.state.reports import Selector
from worker.adapters.state.schema import SchemaRefused
from worker.core.config import StateSettings
from worker.core.line_migration import StoredProject
from worker.core.transitions import Stored

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
LEASE_SECONDS = 30.0
USABLE_CACHE_SECONDS = 2.0  # /readyz probes at most this often

__all__ = [
    "Apply",
    "Committed",
    "Compacted",
    "ProjectState",
    "SchemaRefused",
    "Selector",
    "StateMoved",
    "StateUnavailable",
    "Store",
    "StoreMissing",
    "Usable",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Compacted:
    """What ``Store.compact`` packed."""

    projects: int
    findings: int


@dataclasses.dataclass(frozen=True, slots=True)
class Usable:
    """Whether the store takes writes now, and if not, why ("disk full (...)", ...)."""

    ok: bool
    detail: str  # for the log and `check`: with the driver's words
    checked_at: float  # time.monotonic()
    # for /readyz, which needs no token: "writable", "disk full", "read-only", "unreachable",
    # "no answer", "schema refused", "closed" or "error"; never the driver's words
    category: str = "writable"


class Store:
    def __init__(self, settings: StateSettings, *, create: bool = True) -> None:
        url = settings.url.reveal()
        self.display_url = settings.display_url
        self.dialect = backend.dialect_of(url)
        self._history_seconds = settings.history_days * 86400.0
        self._connect = backend.connector(url, create=create)
        self._path = backend.sqlite_path(url)
        # SQLite writes one at a time anyway; PostgreSQL gets a few connections per process
        threads = 1 if self.dialect.name == "sqlite" else 4
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="state")
        self._probes = ThreadPoolExecutor(1, thread_name_prefix="state-probe")
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._migrated = False  # every unit of work migrates first until one migration ran
        self._refused: str | None = None  # why this release cannot run on the store
        self._usable: Usable | None = None
        self._probing: asyncio.Future[Usable] | None = None
        self._checkpoints = (  # SQLite's WAL checkpoints, off the writers' way
            None if self._path is None else checkpoints.Checkpoints(self._connect, self._path)
        )

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, settings: StateSettings, *, migrate: bool = True, existing: bool = False
    ) -> AsyncIterator[Store]:
        """``migrate``: apply this release's migrations first (workers, `state`). ``existing``:
        a read command's store, never created nor migrated: StoreMissing when it is not there
        or not migrated, SchemaRefused when it is another release's."""
        store = cls(settings, create=not existing)
        try:
            if existing:
                store._migrated = True
                pending = await store.pending_migrations()
                if pending:
                    raise StoreMissing(
                        f"the state store at {store.display_url} is not migrated (migrations "
                        f"{pending} not applied)",
                        "run `dtrack-worker state migrate` or start a worker",
                    )
            elif migrate:
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
        loop = asyncio.get_running_loop()
        self._probes.shutdown(wait=False, cancel_futures=True)  # no answer is wanted any more
        await loop.run_in_executor(None, self._executor.shutdown)
        await loop.run_in_executor(None, self._probes.shutdown)
        if self._checkpoints is not None:
            await loop.run_in_executor(None, self._checkpoints.close)
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(Exception):
                    connection.close()
            self._connections.clear()

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            if self._checkpoints is not None:  # ``checkpoints`` does them in the background
                connection.execute("PRAGMA wal_autocheckpoint=0")
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
                    self._migrate_first(connection)
                return work(connection.cursor(), self.dialect, *args)
            except SchemaRefused as exc:
                raise SchemaRefused(f"the state store at {self.display_url} {exc}") from exc
            except DB_ERRORS as exc:
                self._forget()  # a broken connection is opened again next time
                self._usable = None  # /readyz asks the store again, now
                raise StateUnavailable(
                    f"the state store at {self.display_url} failed: {backend.describe(exc)}"
                ) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, unit)

    async def _write(self, work: Callable[..., _T], *args: Any) -> _T:
        """A unit of work that writes more than a row or two: a WAL checkpoint follows it."""
        try:
            return await self._run(work, *args)
        finally:
            if self._checkpoints is not None:
                self._checkpoints.soon()

    def _migrate_first(self, connection: Any) -> None:
        """The migration a worker started without (its store was away): a store of another
        release found now retries the job (an operator can still roll the workers forward)."""
        try:
            applied = schema.migrate(connection, self.dialect)
        except SchemaRefused as exc:
            self._refused = f"the state store at {self.display_url} {exc}"
            raise StateUnavailable(self._refused) from exc
        self._migrated = True
        if applied:
            log.info("state.migrated", store=self.display_url, applied=applied)

    async def usable(self, *, max_age: float = USABLE_CACHE_SECONDS) -> Usable:
        """Whether a job's write would succeed now (see ``backend.probe``): the last answer when
        younger than ``max_age``; callers at the same moment share one probe."""
        cached = self._usable
        if cached is not None and time.monotonic() - cached.checked_at < max_age:
            return cached
        if self._probing is None or self._probing.done():
            self._probing = asyncio.ensure_future(self._probe())
        return await asyncio.shield(self._probing)

    async def _probe(self) -> Usable:
        kind, problem = "writable", "writable"
        if self._refused is not None:
            kind, problem = "schema refused", self._refused
        else:
            try:
                async with asyncio.timeout(backend.PROBE_SECONDS):
                    failed = await asyncio.get_running_loop().run_in_executor(
                        self._probes, self._probe_unit
                    )
                if failed is not None:
                    kind, problem = backend.category(failed), backend.describe(failed)
            except TimeoutError:
                kind, problem = "no answer", f"no answer within {backend.PROBE_SECONDS:g} s"
            except RuntimeError:  # the store closed while asked: the service is stopping
                kind, problem = "closed", "closed"
        before, now = self._usable, Usable(kind == "writable", problem, time.monotonic(), kind)
        if before is None or before.category != kind:  # the detail goes here, not to /readyz
            if now.ok:
                log.info("state.usable", store=self.display_url)
            else:
                log.warning("state.unusable", store=self.display_url, category=kind,
                            detail=problem)  # fmt: skip
        self._usable = now
        return now

    def _probe_unit(self) -> BaseException | None:
        """What a job's write would meet now, or None when it would succeed."""
        retry = getattr(self._local, "connection", None) is not None  # it may have broken since
        while True:
            try:
                backend.probe(self._connection(), self.dialect, self._path)
            except backend.PROBE_ERRORS as exc:
                self._forget()
                if not retry:
                    return exc
                retry = False  # once more, on a new connection (a server restarted, say)
            else:
                return None

    # -- the units of work ---------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        """Apply the migrations this release ships; returns the ones applied now."""
        self._migrated = True  # this unit is the migration
        try:
            return await self._write(
                lambda cursor, dialect: schema.migrate(cursor.connection, dialect)
            )
        except BaseException:
            self._migrated = False
            raise

    async def pending_migrations(self) -> list[int]:
        return await self._run(
            lambda cursor, dialect: schema.pending_migrations(cursor.connection, dialect)
        )

    async def compact(self) -> Compacted:
        """Pack the rows an older release wrote (``compaction``), a batch per unit of work:
        the workers' jobs take their turns in between."""
        projects = await self._run(compaction.legacy_projects)
        findings = 0
        for project in projects:
            while True:
                done = await self._write(compaction.compact_batch, project, compaction.BATCH)
                findings += done
                if done < compaction.BATCH:
                    break
        return Compacted(len(projects), findings)

    async def reclaim(self) -> space.Reclaimed:
        """Give free pages back to the filesystem, a slice (SQLite; see ``space``)."""
        return await self._write(space.reclaim, space.SLICE_PAGES)

    async def rewrite(self, *, full: bool = False) -> bool:
        """The findings rewritten without their free space (``space.rewrite``)."""
        return await self._write(lambda cursor, dialect: space.rewrite(cursor, dialect, full=full))

    async def state(self, project: str) -> ProjectState:
        return await self._run(queries.read_state, project)

    async def stored(self, project: str, keys: Iterable[str]) -> dict[str, Stored]:
        return await self._run(queries.read_stored, project, list(keys))

    async def open_findings(self, project: str) -> list[Stored]:
        return await self._run(queries.read_open, project)

    async def apply(self, work: Apply) -> Committed:
        since = time.time() - self._history_seconds
        return await self._write(queries.apply, dataclasses.replace(work, history_since=since))

    async def record_job(self, entry: history_queries.JobEntry) -> None:
        """A settled job in the job history (bounded: see history_queries)."""
        await self._run(history_queries.record_job, entry, time.time() - self._history_seconds)

    async def line(self, line_id: str) -> line_queries.StoredLine:
        """A line's row (revision 0 and no state when it has none yet)."""
        return await self._run(line_queries.read, line_id)

    async def line_state(self, line_id: str, revision: int) -> bytes | None:
        """A line's packed state (``line_state.pack``) as of ``revision``; StateMoved when the
        line moved since."""
        try:
            return await self._run(line_queries.read_state, line_id, revision)
        except line_queries.LineMoved as exc:
            raise StateMoved(line_id) from exc

    async def lines(self, line_id: str | None = None) -> list[line_queries.LineReport]:
        """Every line with its versions, or the one of ``line_id``."""
        return await self._run(line_queries.reports, line_id)

    async def stored_projects(self) -> list[StoredProject]:
        """The projects with an applied export, for `state migrate` to lines."""
        return await self._run(line_migration_queries.stored_projects)

    async def project_findings(self, project: str) -> tuple[int, list[Stored]]:
        """A project's revision, then its open and suppressed findings in full."""
        return await self._run(line_migration_queries.project_findings, project)

    async def write_line(self, part: line_queries.LinePart, project: str, revision: int) -> None:
        """A line written from a project's findings, silently (``line_migration_queries``)."""
        await self._run(line_migration_queries.write_line, part, project, revision)

    async def record_outcome(self, project: str, outcome: str) -> None:
        await self._write(queries.record_outcome, project, outcome, time.time())

    async def pending_projects(self, limit: int) -> list[str]:
        return await self._run(outbox_queries.pending_projects, limit)

    async def lease(self, project: str, owner: str) -> bool:
        return await self._run(outbox_queries.lease, project, owner, time.time(), LEASE_SECONDS)

    async def release(self, project: str, owner: str) -> None:
        await self._run(outbox_queries.release, project, owner)

    async def outbox_batch(
        self, project: str, limit: int, after: int = 0
    ) -> list[outbox_queries.OutboxRow]:
        return await self._run(outbox_queries.outbox_batch, project, limit, after)

    async def outbox_heads(
        self, project: str, limit: int, after: int = 0
    ) -> list[outbox_queries.OutboxHead]:
        return await self._run(outbox_queries.outbox_heads, project, limit, after)

    async def delete_outbox(self, ids: Sequence[int]) -> None:
        await self._write(outbox_queries.delete_outbox, list(ids))

    async def outbox_depth(self) -> tuple[int, float | None]:
        return await self._run(outbox_queries.outbox_depth)

    async def projects(self, project: str | Selector | None = None) -> list[reports.ProjectReport]:
        """Every project's report, the one of a uuid, or those a Selector names."""
        selector = Selector(uuid=project) if isinstance(project, str) else project
        return await self._run(reports.projects, selector, time.time())

    async def open_by_severity(self) -> reports.Overview:
        return await self._run(reports.overview, time.time())

    async def all_projects(self) -> list[str]:
        return await self._run(reports.project_uuids)

    async def read(self, work: Callable[..., _T], *args: Any) -> _T:
        """A read of the console's (worker.adapters.state.console_queries), on the store's
        threads: ``work(cursor, dialect, *args)``."""
        return await self._run(work, *args)

    async def write(self, work: Callable[..., _T], *args: Any) -> _T:
        """A write of the console's own (its sync runs: worker.adapters.state.console_runs),
        one transaction of ``work(cursor, dialect, *args)``."""
        return await self._run(work, *args)
