"""A line's new version before DT's first analysis of it (issue 26 §4, REVIEW-1 H3): DT 4.13+
records ``lastVulnerabilityAnalysis`` only once an analysis ends, so a new version (a new
project) has none before its first one. Its pre-analysis export is empty; it must not resolve
the line. Fake DT answers /api/version as DT 4.14.3."""

from __future__ import annotations

import pytest

from tests.test_line_diff import PHP, _document, next_version
from tests.test_line_stream import _first, _line
from tests.test_line_stream import series as series
from worker.core.errors import GuardPending


async def test_a_new_versions_export_before_its_first_analysis_is_not_applied(series) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2", keep=lambda row: False)  # DT exported before analysing
    s.publish(v2, analysed=False)
    (entry,) = [p for p in s.dt.projects if p["uuid"] == v2["project"]["uuid"]]
    del entry["lastVulnerabilityAnalysis"]  # never analysed yet: DT (Jackson) omits the null
    with pytest.raises(GuardPending, match=r"8 of 8 open findings.*never analysed"):
        await s.sync(v2)
    assert await s.events(_line(v1)) == []
    (report,) = await s.store.lines()
    assert report.current_project == v1["project"]["uuid"]


async def test_on_dt_4_12_a_never_analysed_version_is_applied_as_before(series) -> None:
    """DT 4.12 records no analysis at all: no signal, the export applies (documented)."""
    s = await series()
    s.dt.version = dict(s.dt.version or {}, version="4.12.7")
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2", keep=lambda row: False)
    s.publish(v2, analysed=False)
    (entry,) = [p for p in s.dt.projects if p["uuid"] == v2["project"]["uuid"]]
    del entry["lastVulnerabilityAnalysis"]
    await s.sync(v2)
    resolved = [e for e in await s.events(_line(v1)) if e["data"]["change"]["kind"] == "resolved"]
    assert len(resolved) == 8
