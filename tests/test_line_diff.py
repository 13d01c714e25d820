"""`dtrack-worker diff OLD NEW` by line (issue 26 §5): version series of real exports, built the
way DT makes them, compared as findings of their line; the events in the finding-change.v2
shape, checked against the bundled schema."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

from worker.core.line_findings import diff_instances, group
from worker.core.lines import Line

REAL = Path(__file__).parent / "fixtures" / "fpf" / "real"  # copies of FIXTURES/fpf/real
STATES = "defectdojo__with_state_fp_na_resolved.json"
LINE = Line("https://dt.example", "", "acme-app")


def _document(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((REAL / name).read_text())
    return document


def test_a_fixed_copy_of_a_library_present_twice_is_removed_not_moved_onto_the_other() -> None:
    # async 2.6.3 and 3.2.0 both have CVE-2021-43138; the next version drops 2.6.3. DT gives the
    # unchanged 3.2.0 a new component UUID: it must pair with 3.2.0, and 2.6.3 leave.
    rows = _document(STATES)["findings"]
    before = next(
        f
        for f in group(LINE, rows).findings
        if f.package.key == "pkg:npm/async" and f.vulnerability == "CVE-2021-43138"
    )
    project = str(uuid.uuid4())
    later = []
    for row in copy.deepcopy(rows):
        component = row["component"]
        if component["name"] == "async" and component["version"] == "2.6.3":
            continue
        component["uuid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, component["uuid"]))
        row["matrix"] = f"{project}:{component['uuid']}:{row['vulnerability']['uuid']}"
        later.append(row)
    after = next(f for f in group(LINE, later).findings if f.id == before.id)
    diff = diff_instances(before.instances, after.instances)
    assert [i.component_version for i in diff.removed] == ["2.6.3"]
    assert [(m.before.component_version, m.after.component_version) for m in diff.moved] == [
        ("3.2.0", "3.2.0")
    ]
