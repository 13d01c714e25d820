"""`dtrack-worker status`, a read command: it never creates or migrates a store (a missing
file, a PostgreSQL URL naming no database, a database never migrated: each said plainly), and it
finds a project by uuid, by name, or by name@version."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from tests.fake_dt import API_KEY, FakeDt
from tests.harness import REAL
from tests.state_db import POSTGRES, fresh_database
from tests.test_operations import cli
from worker.adapters.state.store import Selector, Store
from worker.core.config import Settings


def _env(url: str, dt: FakeDt | None = None) -> dict[str, str]:
    # the per-project view (status by line: tests/test_line_commands.py)
    env = {
        "DTRACK_WORKER_STATE_URL": url,
        "DTRACK_WORKER_LOG_LEVEL": "WARNING",
        "DTRACK_WORKER_TRACK": "project",
    }
    if dt is not None:
        env |= {"DTRACK_WORKER_DT_URL": dt.url, "DTRACK_WORKER_DT_API_KEY": API_KEY}
    return env


async def test_status_on_a_mistyped_sqlite_path_says_there_is_no_store_and_creates_nothing(
    tmp_path: Path,
):
    typo = tmp_path / "sate" / "dtrack-worker.sqlite3"
    code, out, err = await cli("status", env=_env(f"sqlite:///{typo}"))
    assert (code, out) == (2, ""), out + err  # a setting to correct, as any other
    assert f"no state store at {typo} (run `dtrack-worker state migrate` or start a worker)" in err
    assert not typo.parent.exists()


async def test_status_on_an_empty_sqlite_file_says_the_store_is_not_migrated(tmp_path: Path):
    empty = tmp_path / "state.sqlite3"
    empty.touch()
    code, out, err = await cli("status", env=_env(f"sqlite:///{empty}"))
    assert (code, out) == (2, ""), out + err
    assert "is not migrated" in err
    assert "run `dtrack-worker state migrate` or start a worker" in err
    assert empty.stat().st_size == 0
    assert sorted(os.listdir(tmp_path)) == ["state.sqlite3"]  # no WAL


async def test_status_on_a_postgresql_database_never_migrated_says_so_and_creates_nothing(
    postgres: str,
):
    with fresh_database() as url:
        code, out, err = await cli("status", env=_env(url))
        assert (code, out) == (2, ""), out + err
        assert "is not migrated" in err
        with psycopg.connect(url) as connection:
            tables = connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchall()
        assert tables == []


@pytest.fixture
def own_role(postgres: str) -> Iterator[str]:
    """A login role with a database of its own name: libpq's default database when a URL names
    none (as postgres's is `postgres`), so what a command does there is seen, and dropped."""
    name = f"dtw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{name}" LOGIN')
        admin.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')


async def test_status_with_a_postgresql_url_naming_no_database_says_so(own_role: str):
    url = f"postgresql://{own_role}@127.0.0.1:5432"
    code, out, err = await cli("status", env=_env(url))
    assert (code, out) == (2, ""), out + err
    assert "names no database" in err
    with psycopg.connect(f"{POSTGRES}/{own_role}") as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    assert tables == []  # nothing created where the URL did not point


def _export(name: str, version: str) -> bytes:
    document = orjson.loads(REAL)
    document["project"] |= {"name": name, "version": version}
    return orjson.dumps(document)


async def test_status_finds_a_project_by_uuid_name_or_name_at_version(
    state_url: str, dt: FakeDt, figures
):
    env = _env(state_url, dt)
    projects = {
        str(uuid.uuid4()): ("acme-app", "1.0"),
        str(uuid.uuid4()): ("acme-app", "2.0"),
        str(uuid.uuid4()): ("@acme/ui", "1.0"),  # an npm-style name, with its own @
    }
    for project, (name, version) in projects.items():
        dt.exports[project] = _export(name, version)  # made the project's own
    code, _, err = await cli("state", "baseline", *projects, env=env)
    assert code == 0, err
    by_name = {(name, version): project for project, (name, version) in projects.items()}
    one, ui = by_name["acme-app", "2.0"], by_name["@acme/ui", "1.0"]
    expected = {
        one: [one],
        one.upper(): [one],
        "acme-app@2.0": [one],
        "acme-app": sorted([by_name["acme-app", "1.0"], one]),
        "@acme/ui": [ui],
        "@acme/ui@1.0": [ui],
        "acme-app@3.0": [],
        "acme-ap": [],
        "ACME-APP": [],  # names compare exactly
    }
    async with Store.open(Settings.from_env(env).state, existing=True) as store:
        for query, uuids in expected.items():
            found = await store.projects(Selector.parse(query))
            assert sorted(report.uuid for report in found) == uuids, query

    code, out, err = await cli("status", "acme-app@2.0", "--json", env=env)
    assert code == 0, err
    assert [(r["uuid"], r["name"], r["version"]) for r in orjson.loads(out)] == [
        (one, "acme-app", "2.0")
    ]
    code, out, _ = await cli("status", "acme-app", env=env)
    assert code == 0
    assert out.startswith("2 projects\n"), out
    figures("status acme-app:\n    " + "\n    ".join(out.splitlines()))
    code, out, err = await cli("status", "acme-app@3.0", env=env)
    assert (code, out) == (1, ""), (out, err)
    assert "dtrack-worker status: acme-app@3.0: not found in the state store at " in err
