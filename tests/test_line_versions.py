"""DT's listing of a line's versions (REVIEW-1 M9): every page up to DT's X-Total-Count, however
many versions a CI line has; a listing short of its count, or repeating itself, is a retry
(DtUnavailable), never a partial list the line decides on. Fake DT, real store."""

from __future__ import annotations

import pytest

from tests.test_line_diff import PHP, _document, next_version
from tests.test_line_stream import _first
from tests.test_line_stream import series as series
from worker.core.errors import DtUnavailable

BUILDS = 10_050  # past the 100 pages of 100 the listing used to stop at, silently


async def test_a_line_with_more_versions_than_100_pages_still_moves(series) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    name = v1["project"]["name"]
    s.dt.projects[:0] = [  # older builds DT lists first (DT's own order is not by import)
        {"uuid": f"00000000-0000-4000-8000-{n:012d}", "name": name, "version": f"0.{n}",
         "tags": [], "active": True, "isLatest": False, "lastBomImport": 1}
        for n in range(BUILDS)
    ]  # fmt: skip
    v2 = next_version(v1, "2", bump={"phpseclib": "3.0.50"})
    s.publish(v2)
    await s.sync(v2)
    (report,) = await s.store.lines()
    assert report.current_project == v2["project"]["uuid"]
    assert len(report.versions) == BUILDS + 2


async def test_a_listing_short_of_its_count_is_a_retry_never_a_partial_list(series) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2", bump={"phpseclib": "3.0.50"})
    s.publish(v2)
    s.dt.total_count = lambda n: str(n + 150)  # DT counts rows it never serves (a cut list)
    with pytest.raises(DtUnavailable, match=r"read 2 of the 152 versions DT counted"):
        await s.sync(v2)
    (report,) = await s.store.lines()
    assert report.current_project == v1["project"]["uuid"]
