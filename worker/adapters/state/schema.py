"""The state store's migrations: the numbered SQL files of this package, applied in order, each
in a transaction of its own, and recorded in ``schema_migrations`` with a checksum.

A store this release cannot run on is refused, never written: one a newer release migrated
(its highest migration is above ours), or one whose applied migrations differ from the files
shipped here (their checksums do not match). Stores migrated before checksums were recorded get
theirs on the next run, from the files as shipped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from worker.adapters.state.backend import Dialect, rollback
from worker.core.errors import ConfigError

MIGRATION_LOCK = 74_152_001  # a PostgreSQL advisory lock id: one migrator at a time
TABLE = "schema_migrations"


class SchemaRefused(ConfigError):
    """The store's migrations are not this release's: newer ones applied, or changed files."""


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    number: int
    name: str
    text: str
    checksum: str  # sha256 of the file as shipped, with LF line ends


@dataclasses.dataclass(frozen=True, slots=True)
class Applied:
    name: str
    checksum: str | None  # None: applied by a release before checksums


def migrations(folder: Traversable | None = None) -> list[Migration]:
    """Every migration in ``folder`` (by default, the package's), in order."""
    folder = folder or resources.files("worker.adapters.state") / "migrations"
    found: dict[int, Migration] = {}
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if not (entry.name.endswith(".sql") and entry.name[:4].isdigit()):
            continue
        number = int(entry.name[:4])
        if number in found:
            raise ConfigError(
                f"the state store's migrations {found[number].name} and {entry.name} share "
                f"number {number}: reinstall dtrack-worker"
            )
        raw = entry.read_bytes().replace(b"\r\n", b"\n")  # a CRLF checkout is the same file
        found[number] = Migration(number, entry.name, raw.decode(), hashlib.sha256(raw).hexdigest())
    if not found:
        raise ConfigError("the state store's migrations are missing: reinstall dtrack-worker")
    return [found[number] for number in sorted(found)]


def migrate(connection: Any, dialect: Dialect, folder: Traversable | None = None) -> list[int]:
    """Apply every migration not applied yet, each in its own transaction; returns them.
    SchemaRefused, before anything is written, for a store this release cannot run on."""
    shipped = migrations(folder)
    cursor = connection.cursor()
    if dialect.name == "postgresql":
        cursor.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        _prepare(cursor, dialect)
        applied = _applied(cursor)
        _refuse_mismatch(applied, shipped)
        _record_checksums(cursor, dialect, applied, shipped)
        done = []
        for migration in shipped:
            if migration.number in applied:
                continue
            cursor.execute(dialect.begin)
            try:
                cursor.execute(dialect.sql(f"SELECT 1 FROM {TABLE} WHERE version = %s"),
                               (migration.number,))  # fmt: skip
                if cursor.fetchone() is None:  # not applied meanwhile by another SQLite migrator
                    for statement in statements(migration.text, dialect):
                        cursor.execute(statement)
                    cursor.execute(
                        dialect.sql(
                            f"INSERT INTO {TABLE} (version, name, applied_at, checksum) "
                            "VALUES (%s, %s, CURRENT_TIMESTAMP, %s)"
                        ),
                        (migration.number, migration.name, migration.checksum),
                    )
                    done.append(migration.number)
                cursor.execute("COMMIT")
            except BaseException:
                rollback(cursor)
                raise
        return done
    finally:
        if dialect.name == "postgresql":
            cursor.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


def pending_migrations(
    connection: Any, dialect: Dialect, folder: Traversable | None = None
) -> list[int]:
    """Migrations this release ships that the store has not applied; reads only. SchemaRefused
    for a store this release cannot run on."""
    shipped = migrations(folder)
    cursor = connection.cursor()
    columns = _columns(cursor, dialect)
    if not columns:
        return [migration.number for migration in shipped]
    # a store of a release before checksums has no such column: reads never add it
    applied = _applied(cursor, checksums="checksum" in columns)
    _refuse_mismatch(applied, shipped)
    return [migration.number for migration in shipped if migration.number not in applied]


def statements(text: str, dialect: Dialect) -> list[str]:
    """A migration's SQL as the driver takes it. PostgreSQL takes the whole file in one
    ``execute`` (no parameters: several statements are allowed); SQLite one statement at a
    time, cut where SQLite itself says a statement is complete (never at a ``;`` in a string,
    a comment or a trigger's body)."""
    for word, replacement in dialect.words.items():
        text = text.replace(word, replacement)
    if dialect.name == "postgresql":
        return [text]
    found, pending = [], ""
    pieces = text.split(";")
    for index, piece in enumerate(pieces):
        pending += piece
        if index == len(pieces) - 1:
            break
        pending += ";"
        if sqlite3.complete_statement(pending):
            found.append(pending)
            pending = ""
    if pending.strip():  # the last statement without its ';', or only comments: SQLite takes it
        found.append(pending)
    return found


def _columns(cursor: Any, dialect: Dialect) -> set[str]:
    """The columns of the migrations table; empty when there is none."""
    if dialect.name == "sqlite":
        cursor.execute(f"SELECT name FROM pragma_table_info('{TABLE}')")
    else:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (TABLE,),
        )
    return {row[0] for row in cursor.fetchall()}


def _prepare(cursor: Any, dialect: Dialect) -> None:
    """The migrations table, with its checksum column (added to a table of an older release);
    writes only when something is missing, so a current store that went read-only still reads."""
    if "checksum" in _columns(cursor, dialect):
        return
    cursor.execute(dialect.begin)
    try:
        columns = _columns(cursor, dialect)  # again, under the write lock
        if not columns:
            cursor.execute(
                f"CREATE TABLE {TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TEXT NOT NULL, checksum TEXT)"
            )
        elif "checksum" not in columns:
            cursor.execute(f"ALTER TABLE {TABLE} ADD COLUMN checksum TEXT")
        cursor.execute("COMMIT")
    except BaseException:
        rollback(cursor)
        raise


def _applied(cursor: Any, *, checksums: bool = True) -> dict[int, Applied]:
    checksum = "checksum" if checksums else "NULL"
    cursor.execute(f"SELECT version, name, {checksum} FROM {TABLE}")
    return {int(row[0]): Applied(row[1], row[2]) for row in cursor.fetchall()}


def _refuse_mismatch(applied: dict[int, Applied], shipped: list[Migration]) -> None:
    newest = shipped[-1].number
    if applied and max(applied) > newest:
        raise SchemaRefused(
            f"has migration {max(applied)} applied; this release knows migrations up to "
            f"{newest}: a newer dtrack-worker migrated it, run that release or a newer one "
            "(never an older one against it)"
        )
    for migration in shipped:
        row = applied.get(migration.number)
        if row is not None and row.checksum is not None and row.checksum != migration.checksum:
            raise SchemaRefused(
                f"has migration {migration.name} applied as sha256 {row.checksum[:12]}..., this "
                f"release ships {migration.checksum[:12]}...: {migration.name} changed after it "
                "was applied; reinstall dtrack-worker from its release, unmodified"
            )


def _record_checksums(
    cursor: Any, dialect: Dialect, applied: dict[int, Applied], shipped: Iterable[Migration]
) -> None:
    """Checksums for the rows an older release wrote without, from the files as shipped."""
    missing = [m for m in shipped if m.number in applied and applied[m.number].checksum is None]
    if not missing:
        return
    cursor.execute(dialect.begin)
    try:
        for migration in missing:
            cursor.execute(
                dialect.sql(
                    f"UPDATE {TABLE} SET checksum = %s WHERE version = %s AND checksum IS NULL"
                ),
                (migration.checksum, migration.number),
            )
        cursor.execute("COMMIT")
    except BaseException:
        rollback(cursor)
        raise
