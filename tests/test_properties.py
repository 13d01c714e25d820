"""Properties of the pure core over generated documents (hypothesis)."""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.test_split import described, whole
from tests.test_validation import SMALL_FPF, mutated
from worker.adapters import schemas
from worker.core import dates as dt_dates
from worker.core import fpf, ids
from worker.core.errors import InvalidExport
from worker.core.events import EVENT_ID_NAMESPACE, EventIds

CONTRACTS = schemas.load()

text = st.text(max_size=20)
uuids = st.uuids().map(str)
scores = st.one_of(st.integers(0, 10), st.floats(0, 10, allow_nan=False))
probabilities = st.floats(0, 1, allow_nan=False)
dates = st.one_of(
    st.datetimes().map(lambda d: d.isoformat(sep=" ")),  # DT 4.x: space, no zone
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),  # DT 5.x: offset
    st.builds(
        lambda y, m, d, t, h, mi, s, f: f"{y:04d}-{m:02d}-{d:02d}{t}{h:02d}:{mi:02d}:{s:02d}.{f}",
        st.integers(1, 9999),
        st.integers(1, 12),
        st.integers(1, 31),
        st.sampled_from(["T", " "]),
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(0, 59),
        st.from_regex(r"\A[0-9]{1,9}\Z"),
    ),  # includes days that do not exist, like the 31st of June
    st.integers(0, 253402300799999),  # epoch milliseconds
)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


components = st.builds(
    lambda required, extra: required | extra,
    st.fixed_dictionaries({"uuid": uuids, "name": text}),
    optional(
        group=text,
        version=text,
        purl=text,
        cpe=text,
        project=uuids,
        latestVersion=text,
        scope=st.sampled_from(["REQUIRED", "OPTIONAL", "EXCLUDED"]),
        hasOccurrences=st.booleans(),
    ),
)
aliases = st.lists(
    st.one_of(
        st.dictionaries(st.sampled_from(["cveId", "ghsaId", "osvId", "snykId", "gsdId"]), text),
        st.fixed_dictionaries(
            {"id": st.integers(0, 10**6)},
            optional={"cveId": text, "allBySource": st.dictionaries(text, text, max_size=3)},
        ),
    ),
    max_size=3,
)
vulnerabilities = st.builds(
    lambda required, extra: required | extra,
    st.fixed_dictionaries(
        {
            "source": st.sampled_from(["NVD", "GITHUB", "OSV", "OSSINDEX", "SNYK", "UNKNOWN"]),
            "vulnId": st.text(min_size=1, max_size=20),
        }
    ),
    optional(
        uuid=uuids,
        title=text,
        description=text,
        references=text,
        severity=st.sampled_from(["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO", "UNASSIGNED"]),
        severityRank=st.integers(0, 5),
        cweId=st.integers(0, 2000),
        cweName=text,
        cwes=st.lists(
            st.fixed_dictionaries({"cweId": st.integers(0, 2000)}, optional={"name": text})
        ),
        cvssV2BaseScore=scores,
        cvssV3BaseScore=scores,
        cvssV4Score=scores,
        cvssV3Vector=text,
        epssScore=probabilities,
        epssPercentile=probabilities,
        owaspLikelihoodScore=scores,
        aliases=aliases,
        published=dates,
        isKev=st.booleans(),
    ),
)
findings = st.builds(
    lambda component, vulnerability, extra: (
        {
            "component": component,
            "vulnerability": vulnerability,
            "matrix": f"p:{component['uuid']}:{vulnerability.get('uuid', 'v')}",
        }
        | extra
    ),
    components,
    vulnerabilities,
    optional(
        analysis=optional(
            state=st.sampled_from(["EXPLOITABLE", "IN_TRIAGE", "NOT_SET", "RESOLVED"]),
            isSuppressed=st.booleans(),
            detail=text,
        ),
        attribution=optional(analyzerIdentity=text, attributedOn=dates, referenceUrl=text),
    ),
)
exports = st.fixed_dictionaries(
    {
        "version": st.sampled_from(["1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.9"]),
        "meta": st.fixed_dictionaries(
            {"version": text, "timestamp": dates}, optional={"baseUrl": text}
        ),
        "project": st.fixed_dictionaries({"uuid": uuids, "name": text}, optional={"version": text}),
        "findings": st.lists(findings, max_size=5),
    }
)

_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_normalizes(document: dict[str, Any]) -> None:
    assume(CONTRACTS.fpf.is_valid(document))
    raw = orjson.dumps(document)
    zone = ZoneInfo("Pacific/Chatham")  # +12:45 / +13:45: no whole-hour shortcuts
    if dt_dates.instant(document["meta"]["timestamp"], zone) is None:  # no such day (or year 0)
        with pytest.raises(InvalidExport) as caught:
            fpf.process(raw, CONTRACTS.fpf, zone=zone)
        assert caught.value.problems[0].pointer == "/meta/timestamp"
        return
    first = list(fpf.process(raw, CONTRACTS.fpf, zone=zone).events())
    in_runs = fpf.process(raw, CONTRACTS.fpf, zone=zone, run_bytes=1)  # a finding a run
    assert described(in_runs) == described(whole(raw, CONTRACTS, zone=zone))
    again = list(fpf.process(raw, CONTRACTS.fpf, zone=zone).events())
    assert [event.id for event in first] == [event.id for event in again]
    assert len({event.id for event in first}) == len(first)
    for event in first:
        assert CONTRACTS.finding_event.problems(event.cloudevent()) == ()


@_settings
@given(document=exports)
def test_normalization_never_raises_on_a_schema_valid_export(document):
    _check_normalizes(document)


@_settings
@given(document=mutated(SMALL_FPF))
def test_normalization_never_raises_on_a_valid_mutation_of_a_real_export(document):
    _check_normalizes(document)


@_settings
@given(value=dates)
def test_the_quick_utc_path_agrees_with_the_calendar(value):
    assert dt_dates.instant(value, UTC) == dt_dates._instant(value, UTC)


@given(source=text, project=text, exported_at=text, key=text)
def test_event_ids_are_uuid5_of_the_documented_name(source, project, exported_at, key):
    expected = uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}\n{project}\n{exported_at}\n{key}")
    assert EventIds(source, project, exported_at)(key) == str(expected)


@given(bits=st.integers(min_value=0, max_value=2**128 - 1))
def test_random_ids_are_the_uuid4_of_their_bits(bits):
    assert ids.uuid4_text(bits) == str(uuid.UUID(int=bits, version=4))
