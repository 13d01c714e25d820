"""The finding filter in core (worker.core.selection): what it refuses at start, what it
accepts, and the verdict, with its reason, for every kind of error CEL raises at run time."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from worker.core.config import output_settings
from worker.core.errors import ConfigError
from worker.core.selection import FAILURES, FILTER_OUT, PASS, Filter, examples

SNAPSHOT, CHANGE = examples()


def _snapshot(**vulnerability: Any) -> dict[str, Any]:
    event = copy.deepcopy(SNAPSHOT)
    event["data"]["vulnerability"] |= vulnerability
    return event


@pytest.mark.parametrize(
    ("expression", "event", "reason"),
    [
        ('data.vulnerability.aliases[0] != ""', _snapshot(aliases=[]), "index_out_of_range"),
        ("100 / size(data.vulnerability.aliases) > 0", _snapshot(aliases=[]), "division_by_zero"),
        ("10 % size(data.vulnerability.aliases) == 0", _snapshot(aliases=[]), "division_by_zero"),
        (
            "9223372036854775807 - size(data.vulnerability.aliases) + 1 > 0",
            _snapshot(aliases=[]),
            "overflow",
        ),
        ("int(data.vulnerability.epss.score * 1e30) > 0", _snapshot(), "overflow"),
        ('data.change.kind != "changed"', _snapshot(), "missing_field"),
        ("data.vulnerability.epss.score > 0.5", _snapshot(epss=None), "wrong_type"),
        (
            'timestamp(data.vulnerability.published) > timestamp("2020-01-01T00:00:00Z")',
            _snapshot(published="2021-02-15"),
            "function_error",
        ),
        ("data.vulnerability.kev", _snapshot(kev=None), "not_boolean"),
    ],
)
def test_an_error_at_run_time_is_a_failed_verdict_with_its_reason(expression, event, reason):
    chosen = Filter(expression)
    assert chosen.judge(event) == FAILURES[reason]
    assert chosen.judge(event).outcome == "error"


def test_true_passes_and_false_filters_out():
    chosen = Filter('data.vulnerability.severity == "high"')
    assert chosen.judge(SNAPSHOT) == PASS
    assert chosen.judge(_snapshot(severity="low")) == FILTER_OUT


def test_a_filter_that_holds_for_one_kind_of_event_is_accepted_and_says_for_which_not():
    chosen = Filter('data.change.kind != "changed"')
    (unevaluable,) = chosen.unevaluable
    assert unevaluable.type == "dtrack-worker.finding.v1"
    assert unevaluable.problem == "no field 'change'"
    assert chosen.judge(CHANGE) == FILTER_OUT  # the example's change is "changed"
    assert Filter('has(data.change) && data.change.kind != "changed"').unevaluable == ()


def test_an_error_that_depends_on_the_example_s_values_is_no_reason_to_refuse():
    # the example has one alias: an expression for events with three is no mistake
    chosen = Filter('data.vulnerability.aliases[2] == "x"')
    assert [u.type for u in chosen.unevaluable] == [e["type"] for e in examples()]
    assert chosen.judge(_snapshot(aliases=["a", "b", "x"])) == PASS


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("data.vulnerability.sevrity == 1", "fails on a dtrack-worker.finding.v1 event: no field"),
        ("data.vulnerability.severity > 3", "fails on a dtrack-worker.finding.v1 event"),
        ("nope(data) == 1", "fails on a dtrack-worker.finding.v1 event: Undefined"),
        ("data.vulnerability.cvss.v3.score", "must be true or false for an event, not float"),
        ('has(data.change) ? data.change.kind : "x"', "must be true or false"),
    ],
)
def test_what_holds_for_no_example_is_refused_at_start(expression, message):
    with pytest.raises(ConfigError, match=message):
        Filter(expression)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0", "DTRACK_WORKER_FILTER_BUDGET_MS='0' must be between 1 and 10000"),
        ("20000", "DTRACK_WORKER_FILTER_BUDGET_MS='20000' must be between 1 and 10000"),
        ("0.5", "DTRACK_WORKER_FILTER_BUDGET_MS='0.5' is not a whole number"),
    ],
)
def test_the_budget_is_whole_milliseconds_within_bounds(raw, message):
    assert output_settings({}).filter_budget == 0.1
    assert output_settings({"DTRACK_WORKER_FILTER_BUDGET_MS": "250"}).filter_budget == 0.25
    with pytest.raises(ConfigError, match=re.escape(message)):
        output_settings({"DTRACK_WORKER_FILTER_BUDGET_MS": raw})
