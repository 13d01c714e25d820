"""Where a state store's bytes go: per table and per index, SQLite or PostgreSQL (not a test).

    .venv/bin/python -m bench.store_size URL

SQLite: the ``dbstat`` virtual table (pages per table and index), the free pages, and the WAL
file beside the database. PostgreSQL: each table's heap, TOAST and indexes
(``pg_relation_size``, ``pg_total_relation_size``). Printed per finding too.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from worker.adapters.state import backend


@dataclasses.dataclass(frozen=True, slots=True)
class Part:
    name: str  # a table, an index, "free pages", "WAL", "TOAST of findings", ...
    bytes: int


@dataclasses.dataclass(frozen=True, slots=True)
class Sizes:
    parts: list[Part]
    findings: int

    @property
    def total(self) -> int:
        return sum(part.bytes for part in self.parts)

    def lines(self) -> list[str]:
        per = max(self.findings, 1)
        found = [f"{'part':<32} {'bytes':>14} {'per finding':>12}"]
        for part in sorted(self.parts, key=lambda part: -part.bytes):
            found.append(f"{part.name:<32} {part.bytes:>14,} {part.bytes / per:>12.0f}")
        found.append(f"{'total':<32} {self.total:>14,} {self.total / per:>12.0f}")
        return found


def measure(url: str) -> Sizes:
    connection = backend.connector(url, create=False)()
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT COUNT(*) FROM findings")
        findings = int(cursor.fetchone()[0])
        if url.startswith("sqlite:"):
            parts = _sqlite(cursor, backend.sqlite_path(url))
        else:
            parts = _postgresql(cursor)
        return Sizes(parts, findings)
    finally:
        connection.close()


def _sqlite(cursor: Any, path: Path | None) -> list[Part]:
    cursor.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
    parts = [Part(name, int(size)) for name, size in cursor.fetchall()]
    cursor.execute("PRAGMA freelist_count")
    free = int(cursor.fetchone()[0])
    cursor.execute("PRAGMA page_size")
    parts.append(Part("free pages", free * int(cursor.fetchone()[0])))
    if path is not None:
        wal = path.with_name(path.name + "-wal")
        if wal.exists():
            parts.append(Part("WAL", wal.stat().st_size))
    return parts


def _postgresql(cursor: Any) -> list[Part]:
    cursor.execute("VACUUM ANALYZE")  # the visibility and free-space maps, as a store has them
    cursor.execute(
        "SELECT c.relname, c.relkind, pg_relation_size(c.oid), "
        "COALESCE(pg_total_relation_size(c.reltoastrelid), 0) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i')"
    )
    parts = []
    for name, kind, size, toast in cursor.fetchall():
        parts.append(Part(name if kind == "r" else f"{name} (index)", int(size)))
        if toast:
            parts.append(Part(f"TOAST of {name}", int(toast)))
    return parts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    sizes = measure(parser.parse_args().url)
    print(f"{sizes.findings} findings")
    print("\n".join(sizes.lines()))
