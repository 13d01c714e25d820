"""The constants in code and the bundled schemas name the same contracts."""

from __future__ import annotations

from worker.core import events, jobs


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
