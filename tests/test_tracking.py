"""The tracked fields of a finding, read from the raw row or from its normalized parts, agree:
else a finding first seen would look changed at its next export."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

import orjson

from bench.synthetic import export
from tests.conftest import FPF, fixture_files
from worker.core import finding
from worker.core.tracking import fingerprint, tracked, tracked_from


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
