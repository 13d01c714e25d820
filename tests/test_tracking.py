"""The tracked fields of a finding, read from the raw row or from its normalized parts, agree:
else a finding first seen would look changed at its next export; and they are what its stored
snapshot gives, so the store keeps no copy of them."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

import orjson

from bench.synthetic import export
from tests.conftest import FPF, fixture_files
from worker.adapters.state.packing import tracked_column
from worker.core import finding
from worker.core.tracking import TRACKED, Comparison, Prior, fingerprint, tracked, tracked_from
from worker.core.transitions import Stored, detect


def _rows() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for folder in ("real", "docs"):
        for path in fixture_files(FPF / folder):
            document = orjson.loads(path.read_bytes())
            found += [(f"{Path(path).name}#{n}", row) for n, row in enumerate(document["findings"])]
    found += [(f"synthetic#{n}", row) for n, row in enumerate(export(300)["findings"])]
    return found


def test_tracked_fields_agree_from_the_row_and_from_the_parts():
    rows = _rows()
    assert len(rows) > 400
    for where, row in rows:
        from_row = tracked(row)
        from_parts = tracked_from(finding.parts(row, UTC))
        assert from_row == from_parts, where
        assert fingerprint(from_row) == fingerprint(from_parts)


def test_a_finding_of_the_export_is_stored_without_its_tracked_fields():
    """``detect`` marks the rows of the export's findings ``derived``: their tracked fields are
    what the stored snapshot gives, to the byte, so the store keeps no copy of them (the
    column is left empty without comparing them again); first seen, changed or back."""
    rows = _rows()
    seen = Comparison({}, UTC, None)(None, [row for _, row in rows])
    changed = {entry.key: Prior("open", "another", None) for entry in seen}
    back = {
        entry.key: Prior("resolved", entry.current.fingerprint, None)
        for entry in seen
        if entry.current
    }
    for priors in ({}, changed, back):
        again = Comparison(priors, UTC, None)(None, [row for _, row in rows])
        stored = {key: _stored(key, prior) for key, prior in priors.items()}
        plan = detect(again, stored, set(), now=1.0, suppressions={})
        assert len(plan.writes) == len(rows)  # every row: new, changed or back
        for write in plan.writes:
            assert write.derived
            assert orjson.dumps(write.tracked) == orjson.dumps(tracked_from(write.snapshot))
            assert tracked_column(write.tracked, write.snapshot) == ""


def _stored(key: str, prior: Prior) -> Stored:
    fields = dict.fromkeys(TRACKED) | {"severity": "low", "aliases": []}
    return Stored(key, prior.status, "low", prior.fingerprint, fields, None, {}, 0.0, 0.0, None)


def test_a_fingerprint_is_the_same_in_every_release():
    """A store's fingerprints were written by earlier releases: another digest for the same
    fields would make every finding look changed at its next export."""
    fields = {
        "severity": "high",
        "cvss_v2_score": 5.0,
        "cvss_v2_vector": None,
        "cvss_v3_score": 7.5,
        "cvss_v3_vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
        "cvss_v4_score": None,
        "cvss_v4_vector": None,
        "kev": True,
        "analysis_state": "exploitable",
        "aliases": ["GHSA-xxxx-yyyy-zzzz"],
    }
    assert list(fields) == list(TRACKED)
    assert fingerprint(fields) == "d67ca77bffe18fc8"  # what every release so far wrote
    assert fingerprint(dict(reversed(fields.items()))) == "d67ca77bffe18fc8"  # by TRACKED
