"""State store databases for tests: a SQLite file of the test's own, or a PostgreSQL database of
the test's own on the machine's server (127.0.0.1:5432, trust auth), dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres() -> str:
    """The live PostgreSQL server's URL (no database). A test that asks for it, or runs with
    ``state_url`` on PostgreSQL, is marked ``postgres`` (tests/conftest.py)."""
    return POSTGRES


@pytest.fixture(params=BACKENDS)
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty state store; the same test runs against both backends."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.sqlite3"
        return
    with fresh_database() as url:
        yield url


class fresh_database:
    """A PostgreSQL database of its own: ``with fresh_database() as url``. Left in a test, it
    is dropped when the test ends, once its fixtures stopped (see ``_drop_databases_last``)."""

    def __init__(self) -> None:
        self.name = f"dtw_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> str:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        return f"{POSTGRES}/{self.name}"

    def __exit__(self, *_: object) -> None:
        if _to_drop is not None:
            _to_drop.append(self.name)
        else:
            _drop(self.name)


def _drop(name: str) -> None:
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_to_drop: list[str] | None = None


@pytest.fixture(autouse=True)
def _drop_databases_last() -> Iterator[None]:
    """The test's databases go after everything else of the test stopped: a service (``serve``)
    still running when its database went lost its connections and spent its whole shutdown
    grace (5 s) on a relay that could no longer finish, at every test's end."""
    global _to_drop
    _to_drop = []
    try:
        yield
    finally:
        names, _to_drop = _to_drop, None
        for name in names:
            _drop(name)
