"""A changed re-export compared package by package (``line_increment``) gives the transitions
and the stored bytes of the whole comparison."""

from __future__ import annotations

import copy
import dataclasses
import random
from datetime import UTC
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_line_diff import NPM, PHP, STATES, _document
from tests.test_line_state import LINE, _rows, _series, _step
from worker.core import line_increment, line_state
from worker.core.dates import epoch
from worker.core.line_compare import Compared, compare
from worker.core.line_findings import Instance, group
from worker.core.tracking import tracked


def _reexported(document: dict[str, Any], rng: random.Random, n: int) -> dict[str, Any]:
    """``document`` exported again later by the same project: some findings re-scored, gone,
    suppressed or unsuppressed, given aliases, a component bumped in place, a new one."""
    out = copy.deepcopy(document)
    # one row per matrix: which attribution of a DT finding comes first is DT's row order, and
    # a snapshot-only difference (not tracked, not an instance) waits for the package to move,
    # as in the fast path (docs/lines.md)
    out["findings"] = list({r["matrix"]: r for r in out["findings"]}.values())
    rows = []
    for row in out["findings"]:
        roll = rng.random()
        vuln = row["vulnerability"]
        if roll < 0.08:
            continue
        if roll < 0.16:
            vuln["severity"] = rng.choice(["CRITICAL", "LOW", "MEDIUM"])
            vuln["cvssV3BaseScore"] = rng.choice([9.8, 3.1, 5.0])
        elif roll < 0.22:
            row["analysis"] = {"state": "FALSE_POSITIVE", "isSuppressed": True}
        elif roll < 0.26:
            row["analysis"] = {"state": "NOT_SET", "isSuppressed": False}
        elif roll < 0.30:
            vuln["aliases"] = [*(vuln.get("aliases") or []), {"ghsaId": f"GHSA-new{n}-xxxx-yyyy"}]
        elif roll < 0.33 and row["component"].get("version"):
            component = row["component"]
            old, new = component["version"], f"{component['version']}.{n}"
            component["version"] = new
            if component.get("purl"):
                component["purl"] = component["purl"].replace(f"@{old}", f"@{new}")
        rows.append(row)
        if roll > 0.97:  # a new DT vulnerability on the same component
            extra = copy.deepcopy(row)
            extra["vulnerability"]["uuid"] = f"00000000-0000-4000-8000-{n:04d}{len(rows):08d}"
            extra["vulnerability"]["vulnId"] = f"CVE-2031-{n}{len(rows):04d}"
            extra["vulnerability"]["aliases"] = []
            project, component_uuid, _ = row["matrix"].split(":")
            extra["matrix"] = f"{project}:{component_uuid}:{extra['vulnerability']['uuid']}"
            rows.append(extra)
    rng.shuffle(rows)
    out["findings"] = rows
    return out


def _changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """What the project's own comparison names: new, tracked fields moved, gone."""
    old = {r["matrix"]: r for r in before.values()}
    found = {m for m, r in after.items() if m not in old or tracked(old[m]) != tracked(r)}
    return found | (old.keys() - after.keys())


def _both(
    data: bytes, document: dict[str, Any], changed: set[str]
) -> tuple[Compared, tuple[Compared, line_increment.Finished]]:
    export, rows = _rows(document)
    now = epoch(export.exported_at) + 60
    earlier = line_state.unpack(LINE, data)
    later = group(LINE, rows.values(), earlier.known, project_version=export.project_version)
    full = compare(earlier, later, rows, UTC, now=now, carry=True)
    increment = line_increment.prepare(
        LINE, line_state.decode(data), rows, changed, project_version=export.project_version
    )
    part = compare(increment.earlier, increment.later, rows, UTC, now=now, carry=True)
    return full, (part, line_increment.finish(increment, part))


def _check(data: bytes, before: dict[str, Any], document: dict[str, Any]) -> bytes:
    full, (part, finished) = _both(data, document, _changed(_rows(before)[1], _rows(document)[1]))
    assert part.transitions == full.transitions
    assert finished.packed == line_state.pack(full.state)
    assert finished.open_counts == line_state.counts(full.state)
    assert finished.opened_before == len(line_state.unpack(LINE, data).open)
    return finished.packed


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_series(), st.integers(0, 2**32 - 1))
def test_a_changed_reexport_compared_by_package_is_the_whole_comparison(
    drawn: Any, seed: int
) -> None:
    versions, carry = drawn
    for document in versions:  # one row per matrix, as ``_reexported`` makes them
        document["findings"] = list({r["matrix"]: r for r in document["findings"]}.values())
    state = line_state.empty(LINE)
    for document in versions:
        state = line_state.unpack(LINE, line_state.pack(_step(state, document, carry).state))
    data, before, rng = line_state.pack(state), versions[-1], random.Random(seed)
    for n in range(3):  # re-exports in a row, each from the state the last one packed
        after = _reexported(before, rng, n)
        data = _check(data, before, after)
        before = after


def test_on_the_fixtures_a_reexport_by_package_is_the_whole_comparison() -> None:
    for name in (PHP, NPM, STATES):
        document = _document(name)
        data = line_state.pack(_step(line_state.empty(LINE), document, True).state)
        rng = random.Random(name)
        after = _reexported(document, rng, 1)
        _check(data, document, after)
        # nothing changed at all: nothing touched, the bytes as they were
        export, rows = _rows(document)
        increment = line_increment.prepare(
            LINE, line_state.decode(data), rows, set(), project_version=export.project_version
        )
        assert not increment.touched


def test_an_instance_packs_its_fields_in_order_and_back() -> None:
    fields = [f.name for f in dataclasses.fields(Instance)]
    made = Instance(**{name: f"{name}-value" for name in fields})
    entry = line_state.packed_instance(made, True)
    assert entry == [*(f"{name}-value" for name in fields), True]
    packed = ["id", ["k", "purl", None], "v", [], "open", False, [entry], "m", "low", {}, None,
              {}, 0.0, 0.0]  # fmt: skip
    assert line_state.built(packed).instances[0].instance == made
