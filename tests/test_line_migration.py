"""`state migrate` to lines, the pure part (worker/core/line_migration.py): a line's state built
from a per-project store's findings (their packed snapshots, as the store keeps them) is the state
building it from the export itself gives, on every real export in tests/fixtures/fpf/real."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

import orjson
import pytest

from worker.adapters.state import packing
from worker.core import line_migration
from worker.core.line_findings import group
from worker.core.line_state import of_export
from worker.core.lines import BY_NAME, Line, ProjectVersion, parse_line_by
from worker.core.tracking import Comparison
from worker.core.transitions import Stored, detect

REAL = Path(__file__).parent / "fixtures" / "fpf" / "real"
EXPORTS = sorted(p.name for p in REAL.glob("*.json"))
LINE = Line("https://dt.example", "", "acme-app")


def _first_rows(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for row in document["findings"]:
        rows.setdefault(row["matrix"], row)
    return rows


def _stored(
    rows: dict[str, dict[str, Any]], *, suppressed: frozenset[str] = frozenset()
) -> list[Stored]:
    """The findings as the per-project store keeps them after a first sync: the stream's own
    comparison and writes, each snapshot packed and read back."""
    seen = Comparison({}, UTC, None)(None, list(rows.values()))
    plan = detect(seen, {}, (), now=1000.0, suppressions={})
    found = []
    for n, write in enumerate(plan.writes):
        snapshot = packing.unpack(write.key, packing.pack(write.key, write.snapshot))
        found.append(
            Stored(
                key=write.key,
                status="suppressed" if write.key in suppressed else write.status,
                severity=write.severity,
                fingerprint=write.fingerprint,
                tracked=packing.tracked_of(
                    packing.tracked_column(write.tracked, write.snapshot), snapshot
                ),
                epss=write.epss,
                snapshot=snapshot,
                first_seen=1000.0 + n,
                opened_at=1000.0 + n,
                resolved_at=None,
            )
        )
    return found


@pytest.mark.parametrize("name", EXPORTS)
def test_a_line_state_from_the_store_is_the_one_from_the_export(name: str) -> None:
    document = orjson.loads((REAL / name).read_bytes())
    rows = _first_rows(document)
    version = document["project"].get("version")
    expected = of_export(
        group(LINE, document["findings"], project_version=version), rows, UTC, at=0.0
    )
    built = line_migration.state_of(LINE, _stored(rows), UTC, project_version=version)
    assert built.known == expected.known
    assert sorted(built.findings) == sorted(expected.findings)
    for ident, want in expected.findings.items():
        got = built.findings[ident]
        assert (got.status, got.instances, got.matrix) == (want.status, want.instances, want.matrix)
        assert (got.package, got.vulnerability, got.aliases) == (
            want.package, want.vulnerability, want.aliases,
        )  # fmt: skip
        assert (got.severity, got.tracked, got.epss) == (want.severity, want.tracked, want.epss)
        assert got.snapshot == want.snapshot
    assert len(built.findings) > 0


def test_suppressed_and_resolved_findings_of_the_store() -> None:
    """A finding the store holds suppressed (it left the export suppressed in DT) is a suppressed
    line finding; a resolved one is no DT finding any more: left out. Times are the earliest of
    the instances'."""
    document = orjson.loads((REAL / "defectdojo__deptrack_php_4.14.1.json").read_bytes())
    rows = _first_rows(document)
    stored = _stored(rows)
    psysh = {s.key for s in stored if s.snapshot["component"]["name"] == "psysh"}
    stored = _stored(rows, suppressed=frozenset(psysh))
    gone = stored[-1]
    stored[-1] = Stored(**{**{f: getattr(gone, f) for f in gone.__slots__}, "status": "resolved"})
    built = line_migration.state_of(LINE, stored, UTC, project_version="develop")
    by_package: dict[str, set[str]] = {}
    for f in built.findings.values():
        by_package.setdefault(f.package.key, set()).add(f.status)
    assert by_package["pkg:composer/psy/psysh"] == {"suppressed"}
    assert all(gone.key not in {i.instance.matrix for i in f.instances}
               for f in built.findings.values())  # fmt: skip
    for f in built.findings.values():
        times = [s.first_seen for s in stored if s.key in {i.instance.matrix for i in f.instances}]
        assert f.first_seen == min(times)


def _project(uuid: str, name: str, version: str, applied: float) -> line_migration.StoredProject:
    return line_migration.StoredProject(
        uuid=uuid, name=name, version=version, revision=1, last_applied_at=applied
    )


def test_the_version_a_line_starts_from() -> None:
    a, b, c = (
        _project("a", "app", "1.0", 30.0),
        _project("b", "app", "2.0", 10.0),
        _project("c", "other", "1.0", 5.0),
    )
    # offline: by name, from the version applied last
    (app, other) = line_migration.plan([a, b, c], None, BY_NAME, "src")
    assert (app.line, app.start.uuid, app.because) == (
        Line("src", "", "app"), "a", "the version applied last",
    )  # fmt: skip
    assert (other.line.name, other.start.uuid) == ("other", "c")
    # DT flags 2.0 latest: the line starts from it
    listed = {
        "app": [
            ProjectVersion(uuid="a", name="app", version="1.0", active=True, is_latest=False),
            ProjectVersion(uuid="b", name="app", version="2.0", active=True, is_latest=True),
            ProjectVersion(uuid="d", name="app", version="3.0", active=False),
        ],
        "other": [],
    }
    (app,) = line_migration.plan([a, b, c], listed, BY_NAME, "src")
    assert (app.start.uuid, app.because) == ("b", "DT's current version")
    assert [v.uuid for v in app.versions] == ["a", "b", "d"]
    # DT's current version is not in the store: from the version applied last, said so
    listed["app"].append(
        ProjectVersion(uuid="e", name="app", version="4.0", active=True, is_latest=True)
    )
    listed["app"][1] = ProjectVersion(uuid="b", name="app", version="2.0", active=True)
    (app,) = line_migration.plan([a, b, c], listed, BY_NAME, "src")
    assert app.start.uuid == "a"
    assert "DT's current version 4.0 is not in the store yet" in app.because
    # tracks by version, offline
    tracks = line_migration.plan([a, b], None, parse_line_by(r"name+version:^(\d+)\."), "src")
    assert [(p.line.track, p.start.uuid) for p in tracks] == [("1", "a"), ("2", "b")]
