"""The state store's migration runner, against a real SQLite file and the real PostgreSQL: a
store migrated by a newer release refused, checksums of applied migrations recorded (and
recorded late for a store migrated before there were any), a changed migration refused,
duplicate numbers refused, and SQL run as SQL (no split on every ``;``)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.harness import _free_port
from tests.test_operations import cli
from worker.adapters.state import backend, schema
from worker.core.config import Settings
from worker.core.errors import ConfigError
from worker.service import checks

SHIPPED = Path(backend.__file__).parent / "migrations"
NEWEST = max(int(path.name[:4]) for path in SHIPPED.glob("*.sql"))


def _connect(url: str) -> Any:
    return backend.connector(url)()


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    connection = _connect(url)
    try:
        cursor = connection.cursor()
        cursor.execute(query)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        connection.close()


def _run(url: str, query: str) -> None:
    connection = _connect(url)
    try:
        connection.cursor().execute(query)
    finally:
        connection.close()


def _env(url: str) -> dict[str, str]:
    return {"DTRACK_WORKER_STATE_URL": url, "DTRACK_WORKER_LOG_LEVEL": "WARNING"}


async def test_a_store_migrated_by_a_newer_release_is_refused_naming_both_numbers(state_url):
    code, out, err = await cli("state", "migrate", env=_env(state_url))
    assert code == 0, err
    future = NEWEST + 1
    _run(
        state_url,
        "INSERT INTO schema_migrations (version, name, applied_at) "
        f"VALUES ({future}, '{future:04d}_from_the_future.sql', CURRENT_TIMESTAMP)",
    )
    expected = f"has migration {future} applied; this release knows migrations up to {NEWEST}"
    for command in (("state", "migrate"), ("status",)):
        code, out, err = await cli(*command, env=_env(state_url))
        assert code != 0, (command, out, err)
        assert expected in err, (command, out, err)
    worker = {
        "DTRACK_WORKER_DT_URL": "http://127.0.0.1:9",  # never asked: the worker stops first
        "DTRACK_WORKER_DT_API_KEY": "unused",
        "DTRACK_WORKER_LISTEN": f"127.0.0.1:{_free_port()}",
        # no broker either (as where the server-free tests run): on the real one, the worker
        # declared the default prefix's exchanges before it stopped, and left them there
        "DTRACK_WORKER_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{_free_port()}/",
    }
    code, out, err = await cli("worker", env=_env(state_url) | worker)
    assert code != 0, out + err
    assert expected in err, err


async def test_the_state_check_refuses_a_store_of_a_newer_release(state_url):
    settings = Settings.from_env(_env(state_url))
    assert (await cli("state", "migrate", env=_env(state_url)))[0] == 0
    _run(
        state_url,
        "INSERT INTO schema_migrations (version, name, applied_at) "
        f"VALUES ({NEWEST + 1}, 'x.sql', CURRENT_TIMESTAMP)",
    )
    found = await checks.state(settings.state)
    assert not found.ok, found.line()
    assert f"has migration {NEWEST + 1} applied" in found.detail


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_checksums_are_recorded_and_a_changed_migration_is_refused(state_url, tmp_path: Path):
    first = "CREATE TABLE one (id INTEGER PRIMARY KEY);\n"
    folder = _folder(tmp_path, {"0001_one.sql": first})
    connection = _connect(state_url)
    try:
        dialect = backend.dialect_of(state_url)
        assert schema.migrate(connection, dialect, folder) == [1]
        assert _rows(state_url, "SELECT version, checksum FROM schema_migrations") == [
            (1, hashlib.sha256(first.encode()).hexdigest())
        ]
        (folder / "0001_one.sql").write_text(first + "-- edited after it was applied\n")
        with pytest.raises(ConfigError) as refused:
            schema.migrate(connection, dialect, folder)
        assert "0001_one.sql changed after it was applied" in str(refused.value)
        with pytest.raises(ConfigError, match="changed after it was applied"):
            schema.pending_migrations(connection, dialect, folder)
    finally:
        connection.close()


async def test_a_store_migrated_before_checksums_gets_them_recorded_on_the_next_run(state_url):
    code, _, err = await cli("state", "migrate", env=_env(state_url))
    assert code == 0, err
    _run(state_url, "ALTER TABLE schema_migrations DROP COLUMN checksum")  # as releases before
    code, out, err = await cli("state", "migrate", env=_env(state_url))
    assert code == 0, err
    assert "applied nothing: current" in out
    recorded = dict(_rows(state_url, "SELECT version, checksum FROM schema_migrations"))
    assert recorded == {
        int(path.name[:4]): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in SHIPPED.glob("*.sql")
    }


async def test_read_commands_and_check_read_a_store_migrated_before_checksums(state_url):
    # the pre-flight before a rollout: the new release's status and check against the live
    # store, which the previous release migrated (no checksum column); reads never add it
    assert (await cli("state", "migrate", env=_env(state_url)))[0] == 0
    _run(state_url, "ALTER TABLE schema_migrations DROP COLUMN checksum")
    code, out, err = await cli("status", env=_env(state_url))
    assert code == 0, out + err
    found = await checks.state(Settings.from_env(_env(state_url)).state)
    assert found.ok, found.line()
    columns = _rows(state_url, "SELECT * FROM schema_migrations LIMIT 1")
    assert len(columns[0]) == 3  # version, name, applied_at: still the old layout


def test_a_migration_checked_out_with_crlf_line_ends_has_the_same_checksum(tmp_path: Path):
    # git's autocrlf on Windows: the same migration, other line ends; a store it migrated
    # from LF files must not be refused as "changed after it was applied"
    text = "CREATE TABLE one (id INTEGER PRIMARY KEY);\nCREATE TABLE two (id INTEGER);\n"
    (tmp_path / "lf").mkdir()
    (tmp_path / "crlf").mkdir()
    lf = schema.migrations(_folder(tmp_path / "lf", {"0001_one.sql": text}))
    crlf = schema.migrations(
        _folder(tmp_path / "crlf", {"0001_one.sql": text.replace("\n", "\r\n")})
    )
    assert crlf[0].checksum == lf[0].checksum == hashlib.sha256(text.encode()).hexdigest()


def test_git_checks_migrations_out_with_lf_line_ends():
    attributes = (Path(__file__).parent.parent / ".gitattributes").read_text().splitlines()
    assert "*.sql text eol=lf" in attributes


def test_two_migrations_with_one_number_are_refused(tmp_path: Path):
    folder = _folder(
        tmp_path,
        {"0001_one.sql": "SELECT 1;", "0002_a.sql": "SELECT 2;", "0002_b.sql": "SELECT 3;"},
    )
    with pytest.raises(ConfigError, match=r"0002_a\.sql and 0002_b\.sql share number 2"):
        schema.migrations(folder)


TRICKY = """-- a comment; with a semicolon, and an 'unclosed quote
CREATE TABLE notes (
    body TEXT NOT NULL DEFAULT 'one; two -- not a comment'  -- a comment; again
);
INSERT INTO notes (body) VALUES ('semi;colon');
INSERT INTO notes DEFAULT VALUES;
"""


def test_a_migration_runs_as_sql_semicolons_in_strings_and_comments_included(
    state_url, tmp_path: Path
):
    folder = _folder(tmp_path, {"0001_notes.sql": TRICKY})
    connection = _connect(state_url)
    try:
        assert schema.migrate(connection, backend.dialect_of(state_url), folder) == [1]
    finally:
        connection.close()
    assert sorted(_rows(state_url, "SELECT body FROM notes")) == [
        ("one; two -- not a comment",),
        ("semi;colon",),
    ]


def test_a_migration_that_fails_half_way_leaves_nothing_behind(state_url, tmp_path: Path):
    folder = _folder(
        tmp_path,
        {"0001_half.sql": "CREATE TABLE half (id INTEGER);\nINSERT INTO missing VALUES (1);\n"},
    )
    connection = _connect(state_url)
    try:
        with pytest.raises((sqlite3.OperationalError, psycopg.errors.UndefinedTable)):
            schema.migrate(connection, backend.dialect_of(state_url), folder)
    finally:
        connection.close()
    assert _rows(state_url, "SELECT version FROM schema_migrations") == []
    with pytest.raises((sqlite3.OperationalError, psycopg.errors.UndefinedTable)):
        _rows(state_url, "SELECT id FROM half")
