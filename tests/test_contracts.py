"""The constants in code and the bundled schemas name the same contracts."""

from __future__ import annotations

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
