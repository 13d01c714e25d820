"""Settings of the per-project stream honoured by the line stream (REVIEW-1 M7, M5):
DTRACK_WORKER_TRACK_EPSS reports EPSS moves on the line as on the project, and with
DTRACK_WORKER_BASELINE=true a version switch that published is not reported `baseline`.
Fake DT, the real Deltas and store."""

from __future__ import annotations

import copy

from tests.test_line_diff import PHP, _document, _later, next_version
from tests.test_line_stream import _first, _line
from tests.test_line_stream import series as series


async def test_track_epss_is_reported_on_the_line_as_on_the_project(series) -> None:
    s = await series(track_epss="0.1")
    v1 = _document(PHP)
    await _first(s, v1)
    rescored = copy.deepcopy(v1)
    rescored["meta"]["timestamp"] = _later(v1["meta"]["timestamp"], 60)
    for row in rescored["findings"]:
        row["vulnerability"]["epssScore"] = (
            0.9 if row["vulnerability"].get("epssScore") != 0.9 else 0.1
        )
    s.publish(rescored)
    await s.sync(rescored)
    events = await s.events(_line(v1))
    fields = {c["field"] for e in events for c in e["data"]["change"]["changes"]}
    assert fields == {"epss"}
    assert {e["data"]["change"]["kind"] for e in events} == {"changed"}


async def test_without_track_epss_an_epss_move_is_not_a_change_on_the_line(series) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    rescored = copy.deepcopy(v1)
    rescored["meta"]["timestamp"] = _later(v1["meta"]["timestamp"], 60)
    for row in rescored["findings"]:
        row["vulnerability"]["epssScore"] = 0.99
    s.publish(rescored)
    await s.sync(rescored)
    assert await s.events(_line(v1)) == []


async def test_with_baseline_a_version_switch_that_published_is_not_called_baseline(series) -> None:
    s = await series(baseline="true")
    v1 = _document(PHP)
    s.publish(v1)
    assert (await s.sync(v1))[0] == "baseline"  # the line's first: recorded silently
    (first,) = await s.project_events(v1["project"]["uuid"])
    assert first["data"]["baseline"] is True
    v2 = next_version(v1, "2", bump={"phpseclib": "3.0.50"})
    s.publish(v2)
    outcome = await s.sync(v2)
    published = await s.events(_line(v1))
    (summary,) = await s.project_events(v2["project"]["uuid"])
    assert len(published) == 2
    assert (outcome[0], summary["data"].get("baseline", False)) == ("done", False)
