"""A state store that cannot take writes, seen the way the jobs see it: a full disk (a tmpfs
filled until ENOSPC; for PostgreSQL a tablespace on one), a read-only store (a read-only mount;
a PostgreSQL database set read-only), PostgreSQL down. A job's error, `check` and /readyz all
say what it is ("disk full", "read-only"), and /readyz is 503 until the store takes writes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import structlog
import structlog.testing

from tests.disks import Disk, database_on, read_only_view, tiny_disk
from tests.fake_dt import API_KEY, FakeDt
from tests.rabbit import AMQP_URL, temporary_topology, unique_prefix
from tests.state_db import POSTGRES, fresh_database
from tests.test_check import _closed_port
from tests.test_operations import cli
from tests.test_state import export
from tests.test_state import project as project  # the fixture: its stores on the small disk
from worker.adapters.state.store import StateUnavailable, Store
from worker.core.config import Settings
from worker.service import checks
from worker.service import serve as service

pytestmark = pytest.mark.rabbitmq


@pytest.fixture(params=["sqlite", "postgresql"])
def full_disk_store(request: pytest.FixtureRequest) -> Iterator[tuple[str, Disk]]:
    """A state store's URL on a small disk of its own, and that disk (to fill and empty)."""
    if request.param == "sqlite":
        with tiny_disk("4m") as disk:
            yield f"sqlite:///{disk.path}/state.sqlite3", disk
        return
    with tiny_disk("16m", owner="postgres") as disk, database_on(disk) as url:
        yield url, disk


@pytest.fixture
def state_url(full_disk_store: tuple[str, Disk]) -> str:
    """For test_state's ``project`` fixture: its stores on the small disk."""
    return full_disk_store[0]


def _settings(url: str, **env: str) -> Settings:
    return Settings.from_env(
        {"DTRACK_WORKER_STATE_URL": url} | {f"DTRACK_WORKER_{k.upper()}": v for k, v in env.items()}
    )


async def test_a_job_on_a_full_disk_fails_saying_disk_full_and_succeeds_once_there_is_room(
    full_disk_store: tuple[str, Disk], project, figures
):
    url, disk = full_disk_store
    first = await project()
    assert (await first.sync(export(first.uuid, 1)))[0] == "done"
    disk.fill()
    second = await project()
    with pytest.raises(StateUnavailable) as failed:
        await second.sync(export(second.uuid, 1))
    message = str(failed.value)
    assert "disk full" in message, message
    assert "cannot rollback" not in message
    found = await checks.state(_settings(url).state)
    assert not found.ok, found.line()
    assert "disk full" in found.detail, found.line()
    figures(f"job on a full disk ({url.split(':')[0]}): {message}")
    figures(f"check on a full disk: {found.line()}")
    disk.empty()
    assert (await second.sync(export(second.uuid, 1)))[0] == "done"  # retried: nothing lost
    assert (await checks.state(_settings(url).state)).ok


@contextlib.contextmanager
def _holder(path: Path) -> Iterator[None]:
    """A connection left open on the store (a worker's), so its WAL files stay in place."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("SELECT COUNT(*) FROM schema_migrations").fetchall()
        yield
    finally:
        connection.close()


async def test_the_state_check_fails_on_a_read_only_sqlite_store(tmp_path: Path, figures):
    store = tmp_path / "rw"
    store.mkdir()
    url = f"sqlite:///{store}/state.sqlite3"
    assert (await cli("state", "migrate", env={"DTRACK_WORKER_STATE_URL": url}))[0] == 0
    with _holder(store / "state.sqlite3"), read_only_view(store, tmp_path / "ro") as view:
        found = await checks.state(_settings(f"sqlite:///{view}/state.sqlite3").state)
    assert not found.ok, found.line()
    assert "read-only" in found.detail, found.line()
    figures(f"check on a read-only SQLite store: {found.line()}")


def _read_only(url: str) -> None:
    """Every new transaction of the database read-only, and its sessions ended so they see it."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )


async def test_the_state_check_fails_on_a_read_only_postgresql_store(figures):
    with fresh_database() as url:
        assert (await cli("state", "migrate", env={"DTRACK_WORKER_STATE_URL": url}))[0] == 0
        _read_only(url)
        found = await checks.state(_settings(url).state)
    assert not found.ok, found.line()
    assert "read-only" in found.detail, found.line()
    figures(f"check on a read-only PostgreSQL store: {found.line()}")


@contextlib.asynccontextmanager
async def _worker(aiohttp_client: Any, dt: FakeDt, url: str) -> AsyncIterator[Any]:
    """A worker (no receiver) in this process with its state store at ``url``."""
    prefix = unique_prefix()
    async with temporary_topology(prefix):
        settings = _settings(
            url,
            prefix=prefix,
            amqp_url=AMQP_URL,
            dt_url=dt.url,
            dt_api_key=API_KEY,
            emit="delta",
            shutdown_grace="2",
        )
        app, _ = service.build(settings, receive=False, work=True)
        client = await aiohttp_client(app)
        try:
            yield client
        finally:
            await client.close()


async def _readiness(
    client: Any, status: int, *, state: str = "", within: float = 10.0
) -> dict[str, Any]:
    """Poll /readyz until it answers ``status`` with the broker connected, and a 503 says what
    of the store (a worker starting is 503 too), beginning with ``state``; fails with the last
    answer otherwise."""
    last: tuple[int, Any] = (0, None)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            while True:
                response = await client.get("/readyz")
                last = (response.status, orjson.loads(await response.read()))
                if (
                    last[0] == status
                    and last[1]["broker"] == "connected"
                    and (status == 200 or "state" in last[1])
                    and str(last[1].get("state", "")).startswith(state)
                ):
                    return dict(last[1])
                await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz did not answer {status} within {within} s; last: {last}")


async def test_readiness_is_503_while_postgresql_is_down(aiohttp_client, dt: FakeDt, figures):
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/dtw_{uuid.uuid4().hex[:8]}"
    async with _worker(aiohttp_client, dt, url) as client:
        body = await _readiness(client, 503)
    assert body == {"status": "not ready", "broker": "connected", "state": "unreachable"}
    figures(f"/readyz, PostgreSQL down: {orjson.dumps(body).decode()}")


async def test_readiness_says_only_the_category_never_the_drivers_text(aiohttp_client, dt: FakeDt):
    # /readyz needs no token: psycopg's words (here "failed to resolve host 'cret@127...'",
    # the tail of a password with an unencoded @) stay out of it; the log has the detail.
    # The log is read as structlog hands it on, whatever an earlier test configured it to write
    url = f"postgresql://u:se@cret@127.0.0.1:{_closed_port()}/dtw_{uuid.uuid4().hex[:8]}"
    with structlog.testing.capture_logs() as logged:
        async with _worker(aiohttp_client, dt, url) as client:
            body = await _readiness(client, 503)
            text = await (await client.get("/readyz")).text()
    assert body["state"] == "unreachable", body
    assert "cret" not in text, text
    assert "Error" not in text, text
    unusable = [entry for entry in logged if entry["event"] == "state.unusable"]
    assert unusable, [entry["event"] for entry in logged]
    assert unusable[0]["category"] == "unreachable", unusable[0]


async def test_readiness_is_503_while_the_disk_is_full_then_200_again(
    aiohttp_client, dt: FakeDt, figures
):
    with tiny_disk("4m") as disk:
        async with _worker(aiohttp_client, dt, f"sqlite:///{disk.path}/state.sqlite3") as client:
            assert (await _readiness(client, 200))["state"] == "writable"
            disk.fill()
            body = await _readiness(client, 503, state="disk full")
            assert body["state"] == "disk full", body  # the category alone
            figures(f"/readyz, disk full: {orjson.dumps(body).decode()}")
            disk.empty()
            await _readiness(client, 200)


async def test_readiness_is_503_while_postgresql_is_read_only(aiohttp_client, dt: FakeDt, figures):
    with fresh_database() as url:
        async with _worker(aiohttp_client, dt, url) as client:
            await _readiness(client, 200)
            _read_only(url)
            body = await _readiness(client, 503, state="read-only")
    assert body["state"] == "read-only", body  # the category alone
    figures(f"/readyz, PostgreSQL read-only: {orjson.dumps(body).decode()}")


async def test_a_worker_that_finds_a_newer_store_after_its_start_writes_nothing_and_says_so(
    aiohttp_client, dt: FakeDt
):
    """Its store was away at start (the database not created yet); it comes back migrated by
    a newer release: the worker's first unit of work finds that, migrates nothing, and /readyz
    says why (a worker starting against it would refuse to start)."""
    name = f"dtw_{uuid.uuid4().hex[:12]}"
    url = f"{POSTGRES}/{name}"
    try:
        async with _worker(aiohttp_client, dt, url) as client:
            await _readiness(client, 503, state="unreachable")  # no such database yet
            with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute(
                    "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT "
                    "NOT NULL, applied_at TEXT NOT NULL, checksum TEXT)"
                )
                connection.execute(
                    "INSERT INTO schema_migrations VALUES (99, '0099_future.sql', 'now', NULL)"
                )
            body = await _readiness(client, 503, state="schema refused", within=30)
        assert body["state"] == "schema refused", body  # why: in the log and from `check`
        with psycopg.connect(url) as connection:
            tables = connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchall()
        assert tables == [("schema_migrations",)]  # nothing migrated
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_another_writer_holding_sqlites_lock_counts_as_a_store_that_takes_writes(
    tmp_path: Path,
):
    url = f"sqlite:///{tmp_path}/state.sqlite3"
    async with Store.open(_settings(url).state) as store:
        with _writer(tmp_path / "state.sqlite3"):  # a job's transaction, in another process say
            usable = await store.usable(max_age=0)
    assert (usable.ok, usable.detail) == (True, "writable")


async def test_the_room_is_asked_even_while_another_writer_holds_sqlites_lock():
    # the lock held says the store takes writes; the disk under it may still be full
    with tiny_disk("4m") as disk:
        url = f"sqlite:///{disk.path}/state.sqlite3"
        async with Store.open(_settings(url).state) as store:
            disk.fill()
            with _writer(disk.path / "state.sqlite3"):
                usable = await store.usable(max_age=0)
            disk.empty()
    assert (usable.ok, usable.category) == (False, "disk full"), usable


@contextlib.contextmanager
def _writer(path: Path) -> Iterator[None]:
    """Another connection holding SQLite's write lock meanwhile."""
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        yield
        writer.execute("ROLLBACK")
    finally:
        writer.close()
