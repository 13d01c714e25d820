"""A whole-line comparison with the findings that only moved settled from their packed entries
(``line_settled``), the purls the stored state keyed taken for the grouping, and the parts the
project's comparison made shared: the transitions, the stored bytes and the counts of the plain
comparison (``line_compare.compare`` and ``line_state.pack``)."""

from __future__ import annotations

import random
from datetime import UTC
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_line_diff import NPM, PHP, STATES, _document, next_version
from tests.test_line_increment import _reexported
from tests.test_line_state import LINE, _rows, _series
from worker.core import line_settled, line_state
from worker.core.dates import epoch
from worker.core.line_compare import NOTHING_MADE, Made, compare
from worker.core.line_findings import Instance, diff_instances, group
from worker.core.line_findings import _diff_instances as general_diff
from worker.core.tracking import Comparison, snapshot


def _made(rows: dict[str, Any]) -> Made:
    """What the project's comparison of a new project's first export makes of its rows."""
    seen = Comparison({}, UTC, None)(None, list(rows.values()))
    current = {s.key: s.current for s in seen if s.current is not None}
    return Made(current, {k: snapshot(c.parts) for k, c in current.items()})


def _check(
    data: bytes, document: dict[str, Any], *, carry: bool, delta: float | None, shared: bool
) -> tuple[bytes, int]:
    """Both ways from the state ``data``; the bytes packed, and how many findings settled."""
    export, rows = _rows(document)
    now = epoch(export.exported_at) + 60
    decoded = line_state.decode(data)
    version = export.project_version
    later = group(LINE, rows.values(), decoded.known, project_version=version)
    keyed = line_state.purl_packages(decoded)
    assert group(LINE, rows.values(), decoded.known, project_version=version, purls=keyed) == later
    earlier = line_state.unpack(LINE, data)
    full = compare(earlier, later, rows, UTC, now=now, carry=carry, epss_delta=delta)
    made = _made(rows) if shared else NOTHING_MADE
    whole = line_settled.compared(
        LINE, decoded, later, rows, UTC, now=now, carry=carry, epss_delta=delta, made=made
    )
    assert whole.transitions == full.transitions
    assert whole.packed == line_state.pack(full.state)
    counts = line_state.counts(full.state)
    assert list(whole.open_counts.items()) == list(counts.items())
    assert whole.opened_before == len(earlier.open)
    assert whole.oldest_open_at == line_state.oldest_open(full.state)
    assert line_settled.left(decoded, later) == any(
        f.id not in {g.id for g in later.findings} and (f.status == "open" or f.carried)
        for f in earlier.findings.values()
    )
    settled = line_settled.settle(LINE, decoded, later, rows, UTC, epss_delta=delta, made=made)
    return whole.packed, len(settled.entries)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_series(), st.integers(0, 2**32 - 1), st.sampled_from([None, 0.01]), st.booleans())
def test_a_settled_comparison_is_the_whole_comparison(
    drawn: Any, seed: int, delta: float | None, shared: bool
) -> None:
    versions, carry = drawn
    data = line_state.pack(line_state.empty(LINE))
    rng = random.Random(seed)
    for document in versions:  # each version a switch: new project and component UUIDs
        data, _ = _check(data, document, carry=carry, delta=delta, shared=shared)
        # then re-exported: re-scored, gone, suppressed, aliased, bumped in place, a new one
        again = _reexported(document, rng, 1)
        data, _ = _check(data, again, carry=carry, delta=delta, shared=False)


def test_on_the_fixtures_a_switch_settles_the_findings_that_only_moved() -> None:
    for name in (PHP, NPM, STATES):
        document = _document(name)
        data, _ = _check(
            line_state.pack(line_state.empty(LINE)), document, carry=True, delta=None,
            shared=True,
        )  # fmt: skip
        switched = next_version(document, "2", seconds=3600)
        _, settled = _check(data, switched, carry=True, delta=None, shared=True)
        opened = len(line_state.unpack(LINE, data).open)
        assert 0 < settled <= opened  # the open findings that only moved, not compared again


def _instances() -> st.SearchStrategy[Instance]:
    text = st.sampled_from(["a", "b"])
    return st.builds(
        Instance, matrix=text, project_uuid=text, project_version=st.none() | text,
        component_uuid=text, component_version=st.none() | st.sampled_from(["1.0", "1.2"]),
        purl=st.none() | text, vulnerability_uuid=st.none() | text, source=text, vuln_id=text,
    )  # fmt: skip


@given(_instances(), _instances())
def test_one_instance_each_side_pairs_as_the_general_pairing(b: Instance, a: Instance) -> None:
    assert diff_instances([b], [a]) == general_diff([b], [a])


# cases the random series do not draw: EPSS moving across a switch (tracked or not), and a
# suppressed finding whose new row is unsuppressed with the same analysis state (review 2)
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


def test_a_finding_resolves_retracted_by_dt_only_when_dt_retracted_every_row_it_had() -> None:
    """DT 5's VULNERABILITY_RETRACTED names DT rows (matrices): a line finding that left
    resolves ``retracted_by_dt`` when each of its rows was retracted, ``not_in_export`` when
    only some were, on the whole comparison (a switch, ``line_settled``) as on ``compare``."""
    document = _document(PHP)
    _, rows = _rows(document)
    data = line_state.pack(
        compare(line_state.empty(LINE), group(LINE, rows.values()), rows, UTC, now=0.0).state
    )
    decoded = line_state.decode(data)
    pairs = [f for f in line_state.unpack(LINE, data).open if len(f.instances) == 2]
    assert pairs, "the PHP export's GHSA rows and their CVE rows on one component"
    pair = pairs[0]
    both = {stored.instance.matrix for stored in pair.instances}
    switched = next_version(document, "2", seconds=3600)
    switched["findings"] = [
        r for r in switched["findings"] if r["vulnerability"]["uuid"] not in {
            m.split(":")[2] for m in both
        }
    ]  # fmt: skip
    _, after = _rows(switched)
    later = group(LINE, after.values(), decoded.known)
    # the retraction names the stored rows: a retraction job is of the version that had them
    for retracted, reason in ((set(), "not_in_export"), ({min(both)}, "not_in_export"),
                              (both, "retracted_by_dt")):  # fmt: skip
        made = compare(
            line_state.unpack(LINE, data), later, after, UTC, now=1.0, retracted=retracted
        ).transitions
        whole = line_settled.compared(
            LINE, decoded, later, after, UTC, now=1.0, retracted=retracted
        ).transitions
        assert whole == made
        (left,) = [t for t in made if t.kind == "resolved"]
        assert (left.finding.id, left.reason) == (pair.id, reason)
