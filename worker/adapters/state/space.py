"""Space a SQLite store gives back to the filesystem (PostgreSQL's autovacuum does it there).

The outbox holds a burst's events until the relay has published them: a first sync of 100
projects leaves 110 MB of free pages in the file once they are (4 KB per finding, twice what
the findings take, bench.portfolio). A store this release creates has SQLite's incremental
auto-vacuum; the workers give the free pages back a slice at a time, once the outbox is empty
(while the relay catches up, the backlog would only take them again). A store an older release
created is rewritten once by `dtrack-worker state migrate` (``rewrite``): its findings packed
in place leave their pages part empty, which only a rewrite gives back."""

from __future__ import annotations

import dataclasses
from typing import Any

from worker.adapters.state.backend import Dialect

SLICE_PAGES = 2560  # 10 MiB of 4 KiB pages per step: the write lock is held for this long
INCREMENTAL = 2  # PRAGMA auto_vacuum's value for incremental


@dataclasses.dataclass(frozen=True, slots=True)
class Reclaimed:
    pages: int  # given back now
    left: int  # free pages still in the file (to give back later, or reused meanwhile)


def reclaim(cursor: Any, dialect: Dialect, pages: int = SLICE_PAGES) -> Reclaimed:
    """Give back up to ``pages`` free pages when the outbox is empty; nothing on PostgreSQL or
    on a SQLite store created without incremental auto-vacuum (before this release)."""
    if dialect.name != "sqlite":
        return Reclaimed(0, 0)
    cursor.execute("PRAGMA auto_vacuum")
    if cursor.fetchone()[0] != INCREMENTAL:
        return Reclaimed(0, 0)
    free = _free(cursor)
    if not free:
        return Reclaimed(0, 0)
    cursor.execute("SELECT 1 FROM outbox LIMIT 1")
    if cursor.fetchone() is not None:
        return Reclaimed(0, free)
    # sqlite3's execute steps a statement without result columns once, one page given back:
    # executescript steps it to its end
    cursor.connection.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
    left = _free(cursor)
    return Reclaimed(free - left, left)


def _free(cursor: Any) -> int:
    cursor.execute("PRAGMA freelist_count")
    return int(cursor.fetchone()[0])


def rewrite(cursor: Any, dialect: Dialect, *, full: bool = False) -> bool:
    """The store's findings rewritten without their free space. SQLite: VACUUM, once, for a
    store created without incremental auto-vacuum (which it has from then on), or whenever
    ``full``. PostgreSQL: only when ``full``, ``VACUUM FULL findings``. Either holds a lock for
    its duration (SQLite's write lock, the findings table's on PostgreSQL): workers' jobs wait,
    and past SQLite's busy timeout are retried; the disk needs room for a copy. False when
    nothing was done."""
    if dialect.name != "sqlite":
        if full:
            cursor.execute("VACUUM FULL findings")
            cursor.execute("ANALYZE findings")
        return full
    cursor.execute("PRAGMA auto_vacuum")
    if cursor.fetchone()[0] == INCREMENTAL and not full:
        return False
    cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")  # applied by the VACUUM
    cursor.execute("VACUUM")
    return True
