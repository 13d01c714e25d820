"""The constants in code and the bundled schemas name the same contracts."""

from __future__ import annotations

import orjson

from worker.core import change_events, events, jobs


def test_event_constants_match_the_finding_event_schema(contracts):
    schema = contracts.finding_event.schema
    assert schema["$id"] == events.FINDING_EVENT_SCHEMA
    assert schema["properties"]["type"]["const"] == events.FINDING_EVENT_TYPE
    assert schema["properties"]["dataschema"]["const"] == events.FINDING_EVENT_SCHEMA
    assert schema["properties"]["specversion"]["const"] == events.SPEC_VERSION
    assert schema["properties"]["datacontenttype"]["const"] == events.DATA_CONTENT_TYPE
    severities = schema["$defs"]["data"]["properties"]["vulnerability"]["properties"]["severity"]
    assert severities["enum"] == list(events.SEVERITY_RANK)


def test_job_constants_match_the_job_schema(contracts):
    assert contracts.job.schema["$id"] == jobs.JOB_SCHEMA
    assert contracts.job.schema["properties"]["type"]["const"] == jobs.JOB_TYPE


def test_line_change_constants_match_the_v2_schema_and_v2_is_v1_plus_identity(contracts):
    from worker.core.change_events import KINDS
    from worker.core.line_change_events import LINE_CHANGE_EVENT_SCHEMA, line_change_type
    from worker.core.tracking import TRACKED

    v1, v2 = contracts.finding_change.schema, contracts.line_change.schema
    assert v2["$id"] == LINE_CHANGE_EVENT_SCHEMA
    assert v2["properties"]["dataschema"]["const"] == LINE_CHANGE_EVENT_SCHEMA
    assert v2["properties"]["type"]["enum"] == [line_change_type(kind) for kind in KINDS]
    data1, data2 = v1["$defs"]["data"]["properties"], v2["$defs"]["data"]["properties"]
    # every v1 key but finding_key (now finding_id) is in v2, the same but for change
    assert set(data1) - set(data2) == {"finding_key"}
    for key in set(data1) - {"finding_key", "change", "project"}:
        assert data2[key] == data1[key], key
    fields = data2["change"]["properties"]["changes"]["items"]["properties"]["field"]["enum"]
    assert fields == [*TRACKED, "epss", "component.version", "component.purl", "instances"]


def test_a_v1_change_event_is_not_a_v2_one(contracts):
    from tests.test_line_diff import GOLDEN, PHP

    line = (GOLDEN / f"{PHP}.by-project.jsonl").read_bytes().splitlines()[0]
    event = orjson.loads(line)
    assert contracts.finding_change.problems(event) == ()
    pointers = {problem.pointer for problem in contracts.line_change.problems(event)}
    assert {"/type", "/subject", "/dataschema", "/data"} <= pointers


def test_the_filter_example_of_a_v2_event_is_a_valid_v2_event(contracts):
    from worker.core import selection

    (example,) = selection.line_examples()
    assert contracts.line_change.problems(example) == ()


# the change reasons each published finding-change schema version accepts: an event claiming a
# version must be valid against that version's schema, so a new reason needs a new version
PUBLISHED_CHANGE_REASONS = {
    "1.1.0": ["not_in_export", "project_deleted", None],
}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_change_event_constants_match_the_finding_change_schema(contracts):
    """Review 2 M4: ``retracted_by_dt`` was added while the events still claimed 1.1.0."""
    schema = contracts.finding_change.schema
    assert schema["$id"] == change_events.CHANGE_EVENT_SCHEMA
    assert schema["properties"]["dataschema"]["const"] == change_events.CHANGE_EVENT_SCHEMA
    version = schema["x-schema-version"]
    assert schema["$id"].endswith(f":{version}")
    change = schema["$defs"]["data"]["properties"]["change"]["properties"]
    reasons = change["reason"]["enum"]
    for published, published_reasons in PUBLISHED_CHANGE_REASONS.items():
        if sorted(map(str, reasons)) != sorted(map(str, published_reasons)):
            assert _version(version) > _version(published), (
                f"the change reasons {reasons} differ from those of the published {published} "
                f"({published_reasons}), yet the schema still says {version}"
            )
