"""A SQLite store's WAL checkpoints, off the jobs' and the relay's way.

By default SQLite copies the WAL's pages into the database file (a checkpoint, with its fsync)
within the commit that takes the WAL past 1,000 pages: a first sync of 10,000 findings (40 MB
of WAL with its outbox rounds) waited for one in its commit, and the relay's deletes after it
for more (0.4 s and 0.8 s of the first sync on the loaded 2-core machine). The store's own
connections turn that off (``wal_autocheckpoint=0``); after a unit of work that wrote, once the
WAL file is past that same threshold, a thread of its own runs a PASSIVE checkpoint on a
connection of its own: it never waits for a writer nor blocks one, and copies what no reader
still needs (the next one copies the rest). Below the threshold nothing changes: the WAL grows
as it did.

Nothing a crash could lose depends on it: every commit has synced the WAL already
(``synchronous=FULL``), and a checkpoint only moves those pages into the database file.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

PAGES = 1000  # SQLite's own wal_autocheckpoint
WAL_BYTES = PAGES * (4096 + 24)  # its frames: a page and a header each


class Checkpoints:
    def __init__(self, connect: Callable[[], Any], database: Path) -> None:
        self._connect = connect
        self._wal = database.with_name(database.name + "-wal")
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="state-checkpoint")
        self._connection: Any = None
        self._lock = threading.Lock()
        self._running = False
        self._again = False  # written meanwhile: once more after the one running
        self._closed = False

    def soon(self) -> None:
        """A unit of work wrote: checkpoint in the background (one at a time, coalesced)."""
        try:
            if self._wal.stat().st_size < WAL_BYTES:
                return
        except OSError:  # no WAL (yet): nothing to copy
            return
        with self._lock:
            if self._closed:
                return
            if self._running:
                self._again = True
                return
            self._running = True
        self._executor.submit(self._run)

    def _run(self) -> None:
        while True:
            try:
                if self._connection is None:
                    self._connection = self._connect()
                self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # the next commit's checkpoint tries again
                log.debug("state.checkpoint_failed", error=str(exc))
                self._forget()
            with self._lock:
                if not self._again or self._closed:
                    self._running = False
                    return
                self._again = False

    def _forget(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(sqlite3.Error):
                connection.close()

    def close(self) -> None:
        """Wait for the checkpoint under way; SQLite checkpoints what is left as the last
        connection to the file closes."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True)
        self._forget()
