"""Review 2: cases tests/test_line_settled.py never draws (EPSS moving across a switch, a
suppressed finding whose new row is unsuppressed with the same analysis state)."""

from __future__ import annotations

from typing import Any

from tests.test_line_diff import LINE, PHP, STATES, _document, next_version
from tests.test_line_settled import _check
from worker.core import line_state


def _switch(name: str, edit: Any, *, delta: float | None) -> None:
    document = _document(name)
    document["findings"] = list({r["matrix"]: r for r in document["findings"]}.values())
    edit(document, 0)
    empty = line_state.pack(line_state.empty(LINE))
    data, _ = _check(empty, document, carry=False, delta=delta, shared=True)
    switched = next_version(document, "2", seconds=3600)
    edit(switched, 1)
    _check(data, switched, carry=False, delta=delta, shared=True)


def _epss(document: dict[str, Any], n: int) -> None:
    for row in document["findings"]:
        row["vulnerability"]["epssScore"] = [0.10, 0.50][n]


def test_epss_moving_over_a_switch_tracked() -> None:
    for name in (PHP, STATES):
        _switch(name, _epss, delta=0.01)


def test_epss_moving_over_a_switch_not_tracked() -> None:
    for name in (PHP, STATES):
        _switch(name, _epss, delta=None)


def _unsuppressed_later(document: dict[str, Any], n: int) -> None:
    for row in document["findings"]:
        row["analysis"] = {"state": "NOT_AFFECTED", "isSuppressed": n == 0}


def test_a_suppressed_finding_unsuppressed_over_a_switch_with_the_same_state() -> None:
    for name in (PHP, STATES):
        _switch(name, _unsuppressed_later, delta=None)
