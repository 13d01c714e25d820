"""FPF 1.4's ``analysis.detail`` is analyst text: capped in events, never in logs, parked
messages or error reports (pure parts, then the service against the real RabbitMQ and the
fake DT)."""

from __future__ import annotations

import uuid

import orjson
import pytest
import structlog

from tests.fake_dt import FakeDt
from tests.harness import REAL, post
from tests.rabbit import drain, eventually
from worker.core import finding, fpf, transitions
from worker.core.errors import InvalidExport

NOTE = "analyst-note-" + "confidential reasoning about reachability " * 20  # ~850 characters
LONG = "x" * (3 * finding.MAX_DETAIL)


def _with_detail(detail: str, *, state: str = "NOT_AFFECTED", project: str | None = None) -> bytes:
    document = orjson.loads(REAL)
    if project is not None:
        document["project"]["uuid"] = project
        for row in document["findings"]:
            row["matrix"] = project + row["matrix"][36:]
    document["findings"][0]["analysis"] = {"state": state, "isSuppressed": False, "detail": detail}
    return orjson.dumps(document)


def test_a_long_detail_is_cut_in_the_finding_events(contracts):
    export = fpf.process(_with_detail(LONG), contracts.fpf)
    details = [orjson.loads(e.body)["data"]["analysis"]["detail"] for e in export.events({})]
    cut = [d for d in details if d is not None]
    assert len(cut) == 1
    assert len(cut[0]) == finding.MAX_DETAIL
    assert cut[0].endswith(finding.DETAIL_CUT)
    assert cut[0].startswith("x" * (finding.MAX_DETAIL - len(finding.DETAIL_CUT)))
    for event in export.events({}):
        assert contracts.finding_event.problems(orjson.loads(event.body)) == ()


def test_a_detail_within_the_cap_is_kept_whole(contracts):
    export = fpf.process(_with_detail(NOTE), contracts.fpf)
    details = {orjson.loads(e.body)["data"]["analysis"]["detail"] for e in export.events({})}
    assert NOTE in details


def test_the_detail_dt_lists_with_a_suppression_is_cut_too():
    rows = [
        {"matrix": "k", "analysis": {"isSuppressed": True, "state": "NOT_AFFECTED", "detail": LONG}}
    ]
    (listed,) = transitions.suppressions_of(rows).values()
    assert listed.detail is not None
    assert len(listed.detail) == finding.MAX_DETAIL


def test_an_invalid_analysis_is_reported_without_its_detail(contracts):
    with pytest.raises(InvalidExport) as caught:
        fpf.process(_with_detail(NOTE, state="BOGUS"), contracts.fpf)
    report = str(caught.value) + orjson.dumps(caught.value.report()).decode()
    assert "/findings/0/analysis" in report  # still says where
    assert "analyst-note" not in report


@pytest.mark.rabbitmq
async def test_the_detail_of_an_invalid_export_reaches_no_log_parked_message_or_event(
    serve, dt: FakeDt
):
    client, topo, events, _ = await serve()
    project = str(uuid.uuid4())
    dt.exports.as_is(project, _with_detail(NOTE, state="BOGUS", project=project))
    with structlog.testing.capture_logs() as lines:
        await post(client, project)
        (parked,) = await drain(topo.parked_queue.name, settle=2.0)
        await eventually(lambda: len(events.of("error.invalid_export")) == 1)
    assert parked.headers["x-park-reason"] == "invalid_export"
    seen = repr(lines) + repr(parked.headers) + repr(events.of("error.invalid_export"))
    assert "/findings/0/analysis" in seen
    assert "analyst-note" not in seen
