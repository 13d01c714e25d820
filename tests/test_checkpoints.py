"""A SQLite store's WAL is checkpointed in the background (worker/adapters/state/checkpoints.py),
not within the commits: a job's commit that takes the WAL past SQLite's threshold returns
without copying it, and the database file then holds what it wrote."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import sqlite3
import uuid
from pathlib import Path

from tests.test_outbox_rounds import _job
from tests.waiting import until
from worker.adapters.state.store import Store
from worker.core import outbox_rounds
from worker.core.config import Settings
from worker.core.events import Event


def _checkpointed(path: Path, copy: Path, project: str) -> int | None:
    """The project's sequence as the database file alone holds it (without the WAL: what
    checkpoints copied into it), or None while it does not."""
    shutil.copyfile(path, copy)  # the file alone: SQLite finds no WAL beside the copy
    try:
        with contextlib.closing(sqlite3.connect(copy)) as connection:
            row = connection.execute(
                "SELECT sequence FROM projects WHERE uuid = ?", (project,)
            ).fetchone()
    except sqlite3.DatabaseError:  # copied while a checkpoint wrote it: not yet
        return None
    return None if row is None else int(row[0])


async def test_the_wal_is_checkpointed_by_a_thread_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    settings = Settings.from_env({"DTRACK_WORKER_STATE_URL": f"sqlite:///{path}"})
    async with Store.open(settings.state) as store:
        assert await store.read(lambda cursor, _: cursor.execute(
            "PRAGMA wal_autocheckpoint").fetchone()[0]) == 0  # fmt: skip
        project = str(uuid.uuid4())
        padded = [
            Event(f"{n}", "delta.opened.high", b'"%s"' % (b"x" * 4000), "t") for n in range(1200)
        ]
        job = dataclasses.replace(_job(project, 0), events=lambda _: outbox_rounds.framed(padded))
        done = await store.apply(job)  # three rounds of events as large as a first sync's
        assert done.events == 1200
        assert (tmp_path / "state.sqlite3-wal").stat().st_size > 1000 * 4096  # past SQLite's own
        # threshold: a commit would have checkpointed, and that commit waited for it
        sequence = await until(
            lambda: asyncio.to_thread(_checkpointed, path, tmp_path / "copy.sqlite3", project),
            lambda seen: seen is not None,
            what="the project's row in the database file",
        )
        assert sequence == 1200
