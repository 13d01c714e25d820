"""A line's change timeline (migration 0008, table line_history), on SQLite and PostgreSQL: each
line finding's transitions as the line's move commits them, newest first and paged on the line's
page, `changed` with its old and new values, the mean time to resolve, and the rows recorded
before DTRACK_WORKER_HISTORY_DAYS gone when the line moves again. Against serve in this process,
the real RabbitMQ and the fake DT (tests/console_env.py)."""

from __future__ import annotations

import re
import uuid

import orjson
import pytest

from tests import console_env
from tests.console_env import HTML, XSS, add_project
from worker.adapters.state import backend

pytestmark = pytest.mark.rabbitmq
console = console_env.console  # the fixture
LINK = re.compile(r'href="(/lines/[0-9a-f-]{36})"')


async def _page(client, path: str) -> str:
    response = await client.get(path, headers=HTML)
    assert response.status == 200, (path, response.status, await response.text())
    return str(await response.text())


def _timeline(page: str) -> list[str]:
    section = page[page.index('id="timeline"') :].split("</table>")[0]
    return re.findall(r"<tr>(.*?)</tr>", section, re.S)[1:]  # past the header


def _change_the_export(app, project: str) -> None:
    """The first finding's severity raised, and the last finding gone."""
    document = orjson.loads(app.dt.exports[project])
    document["findings"][0]["vulnerability"] |= {"severity": "CRITICAL", "cvssV3BaseScore": 9.8}
    document["findings"].pop()
    app.dt.exports[project] = orjson.dumps(document)


async def test_a_lines_page_shows_its_timeline_newest_first(console, state_url: str):
    app = await console(state_url=state_url, track="line")
    shop = add_project(app.dt, "acme-shop")
    await app.sync(shop)
    line = LINK.findall(await _page(app.client, "/lines"))[0]
    first = _timeline(await _page(app.client, line))
    assert len(first) == 8, first  # each line finding opened
    assert all("<td>opened</td>" in row for row in first)
    _change_the_export(app, shop)
    await app.sync(shop)
    page = await _page(app.client, line)
    rows = _timeline(page)
    assert len(rows) > 8, rows
    newest = rows[: len(rows) - 8]  # the second sync's, before the first's
    assert all("<td>opened</td>" not in row for row in newest), newest
    assert all("<td>opened</td>" in row for row in rows[len(newest) :])
    changed = [row for row in newest if "<td>changed</td>" in row]
    assert any(re.search(r"severity: \w+ → critical", row) for row in changed), newest
    # paged: past the newest, the first sync's opened only
    older = _timeline(await _page(app.client, f"{line}?changes={len(newest)}"))
    assert len(older) == 8, older
    assert all("<td>opened</td>" in row for row in older), older
    response = await app.client.get(f"{line}?changes=-1")
    assert response.status == 400


async def test_a_resolved_line_finding_gives_the_time_to_resolve(console, state_url: str):
    app = await console(state_url=state_url, track="line")
    shop = add_project(app.dt, "acme-shop")
    await app.sync(shop)
    line = LINK.findall(await _page(app.client, "/lines"))[0]
    assert "Mean time to resolve</dt><dd>-" in await _page(app.client, line)
    _change_the_export(app, shop)  # below the mass-resolve guard: an empty export is held
    await app.sync(shop)
    page = await _page(app.client, line)
    resolved = sum("<td>resolved</td>" in row for row in _timeline(page))
    assert resolved > 0, _timeline(page)
    assert "<td>not_in_export</td>" in page
    assert re.search(rf"Mean time to resolve</dt><dd>[^<-]+ \({resolved} resolved\)", page), page


async def test_a_lines_history_loses_what_is_past_the_retention(console, state_url: str):
    app = await console(state_url=state_url, track="line")
    shop = add_project(app.dt, "acme-shop")
    await app.sync(shop)
    line = LINK.findall(await _page(app.client, "/lines"))[0]
    connection = backend.connector(state_url)()
    try:  # recorded a year ago, as far as the store can tell
        connection.cursor().execute("UPDATE line_history SET recorded_at = recorded_at - 31536000")
    finally:
        connection.close()
    _change_the_export(app, shop)
    await app.sync(shop)
    rows = _timeline(await _page(app.client, line))
    assert rows, "the second sync's transitions"
    assert all("<td>opened</td>" not in row for row in rows), rows


async def test_a_version_bump_shows_old_and_new_escaped(console, state_url: str):
    """DT's text in a `changed` row is DT's: shown escaped, never as markup."""
    app = await console(state_url=state_url, track="line")
    shop = add_project(app.dt, "acme-shop")
    await app.sync(shop)
    line = LINK.findall(await _page(app.client, "/lines"))[0]
    document = orjson.loads(app.dt.exports[shop])
    old = document["findings"][0]["component"]["version"]
    bumped = document["findings"][0]  # DT's new version: a new component, a new matrix
    component = bumped["component"]
    fresh = str(uuid.uuid4())
    bumped["matrix"] = bumped["matrix"].replace(component["uuid"], fresh)
    component |= {"uuid": fresh, "version": XSS, "purl": component["purl"].split("@")[0] + "@9"}
    app.dt.exports[shop] = orjson.dumps(document)
    await app.sync(shop)
    page = await _page(app.client, line)
    rows = _timeline(page)
    assert any("<td>changed</td>" in row for row in rows), rows
    escaped = f"component.version: {old} → &lt;script&gt;alert(1)&lt;/script&gt;"
    assert any(escaped in row for row in rows), rows
    assert XSS not in page


def _listed(page: str, line: str) -> list[str]:
    """The cells of the Lines list's row of ``line``."""
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", page, re.S) if f'href="{line}"' in r)
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


async def test_the_lines_list_shows_the_oldest_open_age_and_the_time_to_resolve(
    console, state_url: str
):
    """Issue 29: per line on the list, the oldest open finding's age and the time to resolve,
    kept on the line's row (no line's state or history is read for the list)."""
    app = await console(state_url=state_url, track="line")
    shop = add_project(app.dt, "acme-shop")
    await app.sync(shop)
    line = LINK.findall(await _page(app.client, "/lines"))[0]
    before = _listed(await _page(app.client, "/lines"), line)
    assert before[-2] != "-", before  # a finding is open: its age
    assert before[-1] == "-", before  # nothing resolved yet
    _change_the_export(app, shop)
    await app.sync(shop)
    after = _listed(await _page(app.client, "/lines"), line)
    assert re.fullmatch(r"[\d.]+ (s|min|h|d)", after[-1]), after
    page = await _page(app.client, line)
    resolved = sum("<td>resolved</td>" in row for row in _timeline(page))
    counted = backend.connector(state_url)()
    try:
        cursor = counted.cursor()
        cursor.execute("SELECT resolved_count, oldest_open_at FROM lines")
        ((count, oldest),) = cursor.fetchall()
    finally:
        counted.close()
    assert (count, oldest is not None) == (resolved, True)
