"""line_history stays bounded per line (migration 0008), on SQLite and PostgreSQL: a line's write
removes its own rows recorded before the retention, never another line's; a first sync's many
`opened` rows are all recorded (on PostgreSQL by COPY, as finding_history's)."""

from __future__ import annotations

from typing import Any

from worker.adapters.state import backend, line_history_queries, line_timeline_queries
from worker.adapters.state.store import Store
from worker.core.config import Secret, StateSettings
from worker.core.line_compare import LineTransition
from worker.core.line_findings import LineFinding
from worker.core.lines import Line
from worker.core.package import Package

LINE = Line("https://dt.example", "acme", "shop")
A, B = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def _opened(n: int) -> LineTransition:
    finding = LineFinding(
        id=f"finding-{n:05d}", line=LINE, package=Package(f"pkg:npm/p{n}", "purl"),
        vulnerability=f"CVE-2026-{n:05d}", aliases=(), instances=(),
    )  # fmt: skip
    return LineTransition(
        kind="opened", finding=finding, matrix=f"m{n}", parts={}, severity="high",
        previous_status=None, changes=(), first_seen=float(n), opened_at=float(n),
    )  # fmt: skip


def _write(url: str, line: str, transitions: list[LineTransition], now: float, keep: float) -> None:
    dialect = backend.dialect_of(url)
    connection = backend.connector(url)()
    try:
        cursor = connection.cursor()
        cursor.execute(dialect.begin)
        line_history_queries.write(cursor, dialect, line, transitions, now, keep)
        cursor.execute("COMMIT")
    finally:
        connection.close()


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    connection = backend.connector(url)()
    try:
        cursor = connection.cursor()
        cursor.execute(query)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        connection.close()


async def test_a_lines_rows_past_the_retention_go_and_no_other_lines(state_url: str):
    settings = StateSettings(
        url=Secret(state_url), emit="delta", baseline=False, epss_delta=None, history_days=1
    )
    async with Store.open(settings):  # the migrations
        pass
    _write(state_url, A, [_opened(1)], now=100.0, keep=0.0)
    _write(state_url, B, [_opened(2)], now=100.0, keep=0.0)
    _write(state_url, A, [_opened(3)], now=500.0, keep=200.0)  # A's row of 100 is past it
    assert _rows(state_url, "SELECT line, finding FROM line_history ORDER BY finding") == [
        (B, "finding-00002"),
        (A, "finding-00003"),
    ]


async def test_a_first_syncs_many_transitions_are_all_recorded(state_url: str):
    settings = StateSettings(
        url=Secret(state_url), emit="delta", baseline=False, epss_delta=None, history_days=90
    )
    many = [_opened(n) for n in range(line_history_queries.COPY_FROM + 100)]
    async with Store.open(settings) as store:
        _write(state_url, A, many, now=1000.0, keep=0.0)
        page = await store.read(line_timeline_queries.timeline, A, 0, 10)
    assert _rows(state_url, "SELECT COUNT(*), MIN(at), MAX(at) FROM line_history") == [
        (len(many), 0.0, float(len(many) - 1))
    ]
    assert page.page.more
    assert {change.change.what for change in page.page.rows} == {"opened"}
