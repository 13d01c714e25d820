"""The state store's compact findings (migration 0004, ``state/packing.py``), against a real
SQLite file and the real PostgreSQL: what a job writes is packed and reads back as it was; a
store an older release wrote (schema up to 0003, snapshots as JSON) keeps every finding's state
and gives the same events after the migration, whether ``state migrate`` packed its rows or not;
a SQLite store gives its free pages back once the outbox is empty."""

from __future__ import annotations

import contextlib
import copy
import shutil
import sqlite3
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fake_dt import FakeDt
from tests.state_db import fresh_database
from tests.test_migrations import SHIPPED, _env
from tests.test_operations import cli
from tests.test_state import REAL, Project, export
from tests.test_state import project as project  # the fixture
from worker.adapters.state import backend, packing, schema, space
from worker.core import finding
from worker.core.tracking import snapshot, tracked_from, with_long_texts_absent

LEGACY = (1, 2, 3)  # the schema of the release before compact findings


def _rows(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    connection = backend.connector(url)()
    try:
        cursor = connection.cursor()
        cursor.execute(backend.dialect_of(url).sql(query), params)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        connection.close()


def _snapshots() -> list[tuple[str, dict[str, Any]]]:
    from datetime import UTC

    return [(row["matrix"], snapshot(finding.parts(row, UTC))) for row in REAL["findings"]]


def test_a_snapshot_packs_to_a_fraction_and_reads_back_as_it_was():
    for key, shot in _snapshots():
        packed = packing.pack(key, shot)
        assert packing.unpack(key, packed) == shot
        assert len(packed) < len(orjson.dumps(shot)) / 2, (key, len(packed))
        fields = tracked_from(shot)
        assert packing.tracked_column(fields, shot) == ""  # the snapshot gives them
        assert packing.tracked_of("", shot) == fields
    key, shot = _snapshots()[0]
    suppressed = with_long_texts_absent(shot) | {
        "analysis": {"state": "not_affected", "suppressed": True, "detail": None}
    }  # a suppressed finding's snapshot: its tracked fields say what they were when open
    column = packing.tracked_column(tracked_from(shot), snapshot(suppressed))
    assert orjson.loads(column) == tracked_from(shot)
    assert packing.tracked_of(column, snapshot(suppressed)) == tracked_from(shot)
    legacy = tracked_from(shot) | {"cvss_v3_score": 5}  # an integer score an older release kept
    assert packing.tracked_column(legacy, shot) != ""


def test_a_snapshot_packed_at_the_earlier_level_still_reads():
    # releases before packed at zlib level 6; the level is not part of the format
    for key, shot in _snapshots():
        deflate = zlib.compressobj(
            6, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, packing._DICTIONARY + key.encode()
        )
        earlier = b"\x01" + deflate.compress(orjson.dumps(shot)) + deflate.flush()
        assert earlier != packing.pack(key, shot)  # another level: other bytes, same snapshot
        assert packing.unpack(key, earlier) == shot


def test_a_packed_snapshot_of_another_format_or_damaged_is_refused_by_name():
    key, shot = _snapshots()[0]
    packed = packing.pack(key, shot)
    with pytest.raises(packing.Unreadable, match=f"finding {key}: stored state of format 9"):
        packing.unpack(key, b"\x09" + packed[1:])
    with pytest.raises(packing.Unreadable, match="damaged"):
        packing.unpack(key, packed[:20])
    with pytest.raises(packing.Unreadable, match="damaged"):
        packing.unpack("another key", packed)  # the key is part of the dictionary


@contextlib.contextmanager
def _another(state_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty store of the same backend."""
    if state_url.startswith("sqlite:"):
        yield f"sqlite:///{tmp_path}/reference.sqlite3"
        return
    with fresh_database() as url:
        yield url


def _legacy_schema(url: str, tmp_path: Path) -> None:
    """The schema of the release before: migrations 0001 to 0003, as shipped."""
    folder = tmp_path / "legacy-migrations"
    folder.mkdir()
    for path in SHIPPED.glob("*.sql"):
        if int(path.name[:4]) in LEGACY:
            shutil.copy(path, folder / path.name)
    file = backend.sqlite_path(url)
    # as the release before created it: SQLite's file without incremental auto-vacuum
    connection: Any = (
        backend.connector(url)()
        if file is None
        else sqlite3.connect(file, isolation_level=None, check_same_thread=False)
    )
    try:
        assert schema.migrate(connection, backend.dialect_of(url), folder) == list(LEGACY)
    finally:
        connection.close()


_PROJECT_COLUMNS = (
    "uuid, name, version, last_exported_at, last_seen_at, last_outcome, last_outcome_at, "
    "revision, sequence, open_critical, open_high, open_medium, open_low, open_info, "
    "open_unassigned, deleted_at"
)


async def _copy_as_legacy(reference: Project, reference_url: str, url: str) -> None:
    """The reference store's project written into ``url`` as the release before wrote it: the
    tracked fields and the snapshot as JSON text, in the columns it had."""
    project = reference.uuid
    (row,) = _rows(reference_url, f"SELECT {_PROJECT_COLUMNS} FROM projects")
    keys = [key for (key,) in _rows(reference_url, "SELECT finding_key FROM findings")]
    stored = await reference.store.stored(project, keys)
    connection = backend.connector(url)()
    try:
        cursor = connection.cursor()
        sql = backend.dialect_of(url).sql
        cursor.execute(sql(f"INSERT INTO projects ({_PROJECT_COLUMNS}) VALUES "
                           f"({', '.join(['%s'] * len(row))})"), row)  # fmt: skip
        cursor.executemany(
            sql("INSERT INTO findings (project, finding_key, status, severity, fingerprint, "
                "tracked, epss, snapshot, first_seen, opened_at, resolved_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"),
            [
                (project, s.key, s.status, s.severity, s.fingerprint,
                 orjson.dumps(s.tracked).decode(), s.epss, orjson.dumps(s.snapshot).decode(),
                 s.first_seen, s.opened_at, s.resolved_at)
                for s in stored.values()
            ],
        )  # fmt: skip
    finally:
        connection.close()


@pytest.fixture
async def legacy_url(state_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A second store of the test's backend, with the schema of the release before."""
    with _another(state_url, tmp_path) as url:
        _legacy_schema(url, tmp_path)
        yield url


async def _same_state(one: Project, one_url: str, other: Project, other_url: str) -> None:
    keys = [key for (key,) in _rows(one_url, "SELECT finding_key FROM findings")]
    assert sorted(keys) == sorted(
        key for (key,) in _rows(other_url, "SELECT finding_key FROM findings")
    )
    assert await one.store.stored(one.uuid, keys) == await other.store.stored(other.uuid, keys)
    assert [r.open for r in await one.store.projects(one.uuid)] == [
        r.open for r in await other.store.projects(other.uuid)
    ]


@pytest.mark.parametrize("packed", [True, False], ids=["packed by state migrate", "as written"])
async def test_a_store_of_the_release_before_keeps_its_state_and_gives_the_same_events(
    project: Any, state_url: str, legacy_url: str, dt: FakeDt, packed: bool
) -> None:
    reference = await project()
    await reference.sync(export(reference.uuid, 1))
    await reference.events()
    await _copy_as_legacy(reference, state_url, legacy_url)
    assert _rows(legacy_url, "SELECT COUNT(*) FROM findings") == [(13,)]

    sqlite = legacy_url.startswith("sqlite:")
    if packed:
        # SQLite's file is rewritten once anyway; PostgreSQL's findings when asked
        rewrite = () if sqlite else ("--rewrite",)
        code, out, err = await cli("state", "migrate", *rewrite, env=_env(legacy_url))
        assert code == 0, err
        assert f"applied {_since(4)}" in out, out  # 0004 and every later one
        assert "packed 13 findings of 1 projects stored in full by an older release" in out
        assert "rewrote the findings without their free space (VACUUM)" in out, out
    migrated = await project(state_url=legacy_url)  # a worker's start: migration 0004 applied
    migrated.uuid = reference.uuid
    newest = schema.migrations()[-1].number
    assert _rows(legacy_url, "SELECT MAX(version) FROM schema_migrations") == [(newest,)]
    if packed:
        assert _rows(
            legacy_url, "SELECT COUNT(*) FROM findings WHERE snapshot = '' AND tracked = ''"
        ) == [(13,)]
        assert (await migrated.store.compact()).findings == 0  # nothing left to pack
        if sqlite:  # rewritten with incremental auto-vacuum, from now on
            assert _rows(legacy_url, "PRAGMA auto_vacuum") == [(space.INCREMENTAL,)]
            assert not await migrated.store.rewrite()  # once
    else:
        assert _rows(legacy_url, "SELECT COUNT(*) FROM findings WHERE packed IS NULL") == [(13,)]
    await _same_state(reference, state_url, migrated, legacy_url)

    base = export(reference.uuid, 1)["findings"]
    rescored, fixed, hidden = base[0]["matrix"], base[1]["matrix"], base[2]["matrix"]

    def edit(document: dict[str, Any]) -> None:
        target = next(f for f in document["findings"] if f["matrix"] == rescored)
        target["vulnerability"]["severity"] = "CRITICAL"
        target["vulnerability"]["cvssV3BaseScore"] = 9.8
        document["findings"] = [
            f for f in document["findings"] if f["matrix"] not in (fixed, hidden)
        ]

    suppressed = copy.deepcopy(next(f for f in base if f["matrix"] == hidden))
    suppressed["analysis"] = {"state": "NOT_AFFECTED", "isSuppressed": True, "detail": "no"}
    dt.suppressed[reference.uuid] = [suppressed]
    kinds = []
    for second, document in ((2, export(reference.uuid, 2, edit)), (3, export(reference.uuid, 3))):
        for one in (reference, migrated):
            assert (await one.sync(document))[0] == "done", second
        expected, found = await reference.changes(), await migrated.changes()
        assert found == expected  # every event, byte for byte as JSON: ids, parts, changes
        kinds += [event["data"]["change"]["kind"] for event in found]
        await _same_state(reference, state_url, migrated, legacy_url)
        dt.suppressed[reference.uuid] = []
    # rescored, fixed and suppressed; then each back as it was
    assert sorted(kinds) == ["changed", "changed", "reopened", "reopened", "resolved", "suppressed"]
    # every row a job wrote is packed; the rows it did not touch are as they were
    assert _rows(
        legacy_url, "SELECT COUNT(*) FROM findings WHERE packed IS NOT NULL AND snapshot = ''"
    ) == [(13 if packed else 3,)]


async def test_what_a_job_writes_is_packed(project: Any, state_url: str) -> None:
    p = await project()
    await p.sync(export(p.uuid, 1))
    rows = _rows(state_url, "SELECT finding_key, tracked, snapshot, packed FROM findings")
    assert len(rows) == 13
    shots = dict(_snapshots())
    for key, tracked, text, packed in rows:
        assert (tracked, text) == ("", "")
        own = key.split(":", 1)[1]  # the real export's keys name its own project
        assert packing.unpack(key, bytes(packed)) == shots[f"{REAL['project']['uuid']}:{own}"]


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)  # PostgreSQL: its autovacuum
async def test_a_sqlite_store_gives_its_free_pages_back_once_the_outbox_is_empty(
    project: Any, state_url: str
) -> None:
    p = await project()
    await p.sync(export(p.uuid, 1))
    assert _rows(state_url, "PRAGMA auto_vacuum") == [(space.INCREMENTAL,)]
    (pages,) = _rows(state_url, "PRAGMA page_count")[0]
    held = await p.store.reclaim()
    assert held.pages == 0  # the outbox still holds the export's events
    await p.events()  # published: the outbox is empty, its pages free
    (free,) = _rows(state_url, "PRAGMA freelist_count")[0]
    assert free > 0
    reclaimed = await p.store.reclaim()
    assert reclaimed == space.Reclaimed(free, 0)
    assert _rows(state_url, "PRAGMA page_count") == [(pages - free,)]


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
async def test_rewrite_is_for_migrate_only(state_url: str) -> None:
    code, _, err = await cli("state", "resync", "--all", "--rewrite", env=_env(state_url))
    assert code != 0
    assert "state resync: --rewrite is for migrate only" in err, err


def _since(number: int) -> list[int]:
    """The shipped migrations from ``number`` on."""
    return [m.number for m in schema.migrations() if m.number >= number]
