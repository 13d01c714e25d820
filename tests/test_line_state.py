"""A line's stored state (worker/core/line_state.py) and the comparison against it
(line_compare): packing, and properties over random version series of real exports built the
way DT makes them. Pure: no store, no DT."""

from __future__ import annotations

import copy
import random
from datetime import UTC
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_line_diff import NPM, PHP, STATES, _document, next_version
from worker.adapters import schemas
from worker.core import fpf, line_state
from worker.core.dates import epoch
from worker.core.line_compare import compare
from worker.core.line_findings import group
from worker.core.lines import Line

LINE = Line("https://dt.example", "", "acme-app")
CONTRACT = schemas.load().fpf


def _rows(document: dict[str, Any]) -> tuple[fpf.Export, dict[str, Any]]:
    export, rows = fpf.read(orjson.dumps(document), CONTRACT, lambda _, r: list(r), zone=UTC)
    return export, {r["matrix"]: r for r in rows}


def _step(state: line_state.LineState, document: dict[str, Any], carry: bool) -> Any:
    export, rows = _rows(document)
    later = group(LINE, rows.values(), state.known, project_version=export.project_version)
    return compare(state, later, rows, UTC, now=epoch(export.exported_at), carry=carry)


def test_a_state_packs_and_unpacks_to_itself() -> None:
    for name in (PHP, NPM, STATES):
        compared = _step(line_state.empty(LINE), _document(name), carry=True)
        packed = line_state.pack(compared.state)
        assert line_state.unpack(LINE, packed) == compared.state
        assert len(packed) < len(orjson.dumps(_document(name))) / 3


def _replayed(events: list[Any], carry: bool) -> set[str]:
    """What a consumer holds open after applying the events in order to an empty map."""
    open_ids: set[str] = set()
    for t in events:
        if t.kind in ("opened", "reopened"):
            open_ids.add(t.finding.id)
        elif t.kind in ("resolved", "suppressed"):
            open_ids.discard(t.finding.id)
    return open_ids


@st.composite
def _series(draw: st.DrawFn) -> tuple[list[dict[str, Any]], bool]:
    name = draw(st.sampled_from([PHP, NPM, STATES]))
    document = _document(name)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    names = sorted({r["component"]["name"] for r in document["findings"]})
    versions = [document]
    for n in range(draw(st.integers(1, 4))):
        dropped = set(rng.sample(names, rng.randint(0, max(0, len(names) // 3))))
        bumped = {c: f"{n + 9}.0.{rng.randint(0, 3)}" for c in rng.sample(names, 2)}

        def kept(row: dict[str, Any], gone: frozenset[str] = frozenset(dropped)) -> bool:
            return row["component"]["name"] not in gone

        later = next_version(
            versions[0], f"{n + 2}", bump=bumped, keep=kept, seconds=3600 * (n + 1)
        )
        for row in later["findings"]:  # DT's findings API: some suppressed, listed anyway
            if rng.random() < 0.15:
                row["analysis"] = {"state": "FALSE_POSITIVE", "isSuppressed": True}
        rng.shuffle(later["findings"])
        versions.append(later)
    return versions, draw(st.booleans())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_series())
def test_replaying_the_line_events_gives_the_stored_open_set(drawn: Any) -> None:
    versions, carry = drawn
    state = line_state.empty(LINE)
    events: list[Any] = []
    for document in versions:
        compared = _step(state, document, carry)
        events += compared.transitions
        state = line_state.unpack(LINE, line_state.pack(compared.state))  # as the store keeps it
    assert _replayed(events, carry) == {f.id for f in state.open}


def _shuffled(document: dict[str, Any], seed: int) -> dict[str, Any]:
    out = copy.deepcopy(document)
    rng = random.Random(seed)
    rng.shuffle(out["findings"])
    for row in out["findings"]:
        aliases = row["vulnerability"].get("aliases")
        if isinstance(aliases, list):
            rng.shuffle(aliases)
    return out


@settings(max_examples=15, deadline=None)
@given(st.sampled_from([PHP, NPM, STATES]), st.integers(0, 2**32 - 1))
def test_the_stored_state_is_the_same_in_any_order_of_findings_and_aliases(
    name: str, seed: int
) -> None:
    document = _document(name)
    # one row per matrix: which of two attributions of one DT finding is described is DT's
    # row order (as in the per-project stream), not identity
    document["findings"] = list({r["matrix"]: r for r in document["findings"][::-1]}.values())
    later = next_version(document, "2", bump={"phpseclib": "3.0.50", "async": "3.2.6"})
    one = _step(_step(line_state.empty(LINE), document, True).state, later, True)
    other = _step(
        _step(line_state.empty(LINE), _shuffled(document, seed), True).state,
        _shuffled(later, seed + 1),
        True,
    )
    assert line_state.pack(one.state) == line_state.pack(other.state)
    assert [(t.kind, t.finding.id) for t in one.transitions] == [
        (t.kind, t.finding.id) for t in other.transitions
    ]
