"""`dtrack-worker diff OLD NEW` by line (issue 26 §5): version series of real exports, built the
way DT makes them (a new project UUID, new component UUIDs even for unchanged components,
bumped versions), compared as findings of their line; every event checked against the bundled
finding-change.v2 schema. `--by project` stays today's comparison, byte for byte."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import ocsf_contract
from tests.test_cli import run
from worker.adapters import schemas
from worker.core.line_change_events import of_diff
from worker.core.line_diff import diff
from worker.core.line_findings import diff_instances, group
from worker.core.lines import Line

HERE = Path(__file__).parent / "fixtures"
REAL = HERE / "fpf" / "real"  # copies of FIXTURES/fpf/real
GOLDEN = HERE / "diff"  # `diff --by project` as the code before --by printed it
PHP = "defectdojo__deptrack_php_4.14.1.json"
NPM = "defectdojo__deptrack_npm_4.14.1.json"
STATES = "defectdojo__with_state_fp_na_resolved.json"
LINE = Line("https://dt.example", "", "acme-app")
Document = dict[str, Any]


def _document(name: str) -> Document:
    document: Document = json.loads((REAL / name).read_text())
    return document


def next_version(
    document: Document,
    version: str,
    *,
    bump: dict[str, str] | None = None,
    keep: Callable[[dict[str, Any]], bool] = lambda row: True,
    seconds: int = 3600,
) -> Document:
    """``document`` as DT exports the project's next version: a new project (UUID, version),
    a new UUID for every component (DT makes new rows), the versions in ``bump``
    (name -> new version) bumped in version and purl, only the rows ``keep`` keeps, taken
    ``seconds`` later."""
    out = copy.deepcopy(document)
    project = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{document['project']['uuid']}/{version}"))
    out["project"] = dict(out["project"], uuid=project, version=version)
    out["meta"]["timestamp"] = _later(document["meta"]["timestamp"], seconds)
    rows = []
    for row in out["findings"]:
        if not keep(row):
            continue
        component = row["component"]
        old = component.get("version")
        new = (bump or {}).get(component["name"])
        if new is not None and old is not None:
            component["version"] = new
            component["purl"] = component["purl"].replace(f"@{old}", f"@{new}")
        component["uuid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{project}/{component['uuid']}"))
        component["project"] = project
        row["matrix"] = f"{project}:{component['uuid']}:{row['vulnerability']['uuid']}"
        rows.append(row)
    out["findings"] = rows
    return out


def _later(timestamp: str, seconds: int) -> str:
    from datetime import datetime, timedelta

    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _events(old: Document, new: Document) -> list[dict[str, Any]]:
    contract = schemas.load()
    found = diff(orjson.dumps(old), orjson.dumps(new), contract.fpf, source=None, zone=_utc())
    events = [event.cloudevent() for event in of_diff(found)]
    for event in events:
        assert contract.line_change.problems(event) == (), event
    return events


def _utc() -> Any:
    from datetime import UTC

    return UTC


def _kinds(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted(
        (e["data"]["change"]["kind"], e["data"]["package"]["key"], e["data"]["vulnerability_id"])
        for e in events
    )


def _changes(event: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {c["field"]: (c["old"], c["new"]) for c in event["data"]["change"]["changes"]}


# --- instance pairing (a defect of diff_instances, seen failing first) -----------------------


def test_a_fixed_copy_of_a_library_present_twice_is_removed_not_moved_onto_the_other() -> None:
    # async 2.6.3 and 3.2.0 both have CVE-2021-43138; the next version drops 2.6.3. DT gives the
    # unchanged 3.2.0 a new component UUID: it must pair with 3.2.0, and 2.6.3 leave.
    document = _document(STATES)
    before = next(
        f
        for f in group(LINE, document["findings"]).findings
        if f.package.key == "pkg:npm/async" and f.vulnerability == "CVE-2021-43138"
    )
    later = next_version(document, "2", keep=lambda r: r["component"].get("version") != "2.6.3")
    after = next(f for f in group(LINE, later["findings"]).findings if f.id == before.id)
    diff = diff_instances(before.instances, after.instances)
    assert [i.component_version for i in diff.removed] == ["2.6.3"]
    assert [(m.before.component_version, m.after.component_version) for m in diff.moved] == [
        ("3.2.0", "3.2.0")
    ]


# --- --by project: today's comparison, byte for byte -----------------------------------------


def project_later(document: Document) -> Document:
    """The same project exported an hour later: one finding re-rated, the last two gone, a
    new one, one analysed."""
    out = copy.deepcopy(document)
    out["meta"]["timestamp"] = _later(document["meta"]["timestamp"], 3600)
    rows = out["findings"][:-2]
    rows[0]["vulnerability"]["severity"] = "LOW"
    rows[1]["analysis"] = {"state": "NOT_AFFECTED", "isSuppressed": False}
    added = copy.deepcopy(rows[2])
    added["vulnerability"] |= {
        "uuid": "5b0a7c38-7f0e-4a53-9b0c-3c1c1b0b9a01",
        "vulnId": "CVE-2026-99999",
        "source": "NVD",
        "aliases": [],
    }
    added["matrix"] = added["matrix"].rsplit(":", 1)[0] + ":5b0a7c38-7f0e-4a53-9b0c-3c1c1b0b9a01"
    out["findings"] = [*rows, added]
    return out


def project_pair(name: str, tmp: Path) -> tuple[Path, Path]:
    old, new = tmp / f"old-{name}", tmp / f"new-{name}"
    old.write_bytes((REAL / name).read_bytes())
    new.write_bytes(orjson.dumps(project_later(_document(name))))
    return old, new


@pytest.mark.parametrize("name", [PHP, NPM])
def test_by_project_prints_what_diff_printed_before_lines(name: str, tmp_path: Path) -> None:
    old, new = project_pair(name, tmp_path)
    result = run("diff", str(old), str(new), "--by", "project", "--source", "https://dt.example")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (GOLDEN / f"{name}.by-project.jsonl").read_bytes()
    assert len(result.stdout.splitlines()) >= 4  # changed, changed, opened, resolved, ...


# --- --by line: version series (new-feature tests) -------------------------------------------


def test_an_unchanged_next_version_is_no_change_though_every_uuid_is_new() -> None:
    # DT: a new project, new component rows; keyed by matrix, every finding left and came back
    for name in (PHP, NPM, STATES):
        document = _document(name)
        assert _events(document, next_version(document, "2")) == []


def test_a_bump_that_keeps_the_vulnerability_is_changed_with_version_and_purl_old_and_new() -> None:
    document = _document(PHP)
    events = _events(document, next_version(document, "2", bump={"phpseclib": "3.0.50"}))
    # two vulnerabilities, each a GHSA/CVE pair on phpseclib: two line findings
    assert _kinds(events) == [
        ("changed", "pkg:composer/phpseclib/phpseclib", "CVE-2026-32935"),
        ("changed", "pkg:composer/phpseclib/phpseclib", "CVE-2026-40194"),
    ]
    for event in events:
        assert event["type"] == "dtrack-worker.finding.changed.v2"
        assert _changes(event) == {
            "component.version": ("3.0.49", "3.0.50"),
            "component.purl": (
                "pkg:composer/phpseclib/phpseclib@3.0.49",
                "pkg:composer/phpseclib/phpseclib@3.0.50",
            ),
        }
        data = event["data"]
        assert event["subject"] == data["finding_id"]
        assert data["component"]["version"] == "3.0.50"
        assert data["project"]["version"] == "2"
        assert data["matrix"] in {i["matrix"] for i in data["instances"]}
        assert data["matrix"].startswith(data["project"]["uuid"] + ":")
        assert data["vulnerability"]["id"] == data["vulnerability_id"]  # the CVE row described
        assert sorted(i["vuln_id"] for i in data["instances"]) == [
            data["vulnerability_id"],
            next(a for a in data["aliases"] if a.startswith("GHSA-")),
        ]


def test_a_bump_that_fixes_resolves_and_a_new_vulnerability_opens() -> None:
    document = _document(PHP)
    later = next_version(
        document, "2", keep=lambda row: row["component"]["name"] != "composer"
    )  # composer 2.9.5 -> 2.9.6 fixed both its vulnerabilities: DT lists no finding for it
    new = copy.deepcopy(later["findings"][0])  # psysh gets a new one, reported by NVD
    new["vulnerability"] |= {
        "uuid": "7e57c0de-0000-4000-8000-000000000001",
        "vulnId": "CVE-2026-55555",
        "source": "NVD",
        "aliases": [],
    }
    new["matrix"] = new["matrix"].rsplit(":", 1)[0] + ":7e57c0de-0000-4000-8000-000000000001"
    later["findings"].append(new)
    events = _events(document, later)
    assert _kinds(events) == [
        ("opened", "pkg:composer/psy/psysh", "CVE-2026-55555"),
        ("resolved", "pkg:composer/composer/composer", "CVE-2026-40176"),
        ("resolved", "pkg:composer/composer/composer", "CVE-2026-40261"),
    ]
    resolved = [e for e in events if e["data"]["change"]["kind"] == "resolved"]
    for event in resolved:
        data = event["data"]
        assert data["change"]["reason"] == "not_in_export"
        assert len(data["instances"]) == 2  # its GHSA and CVE rows, where last seen: OLD
        assert {i["project_uuid"] for i in data["instances"]} == {document["project"]["uuid"]}
        assert data["project"]["uuid"] == later["project"]["uuid"]  # the version that fixed it
    assert [int(e["sequence"]) for e in events] == [1, 2, 3]


def test_a_cve_beside_its_ghsa_is_one_finding() -> None:
    document = _document(PHP)
    # OLD: DT had mirrored only GitHub's advisories; NEW: NVD's CVE rows are there too
    ghsa_only = copy.deepcopy(document)
    ghsa_only["findings"] = [
        r for r in document["findings"] if r["vulnerability"]["source"] != "NVD"
    ]
    events = _events(ghsa_only, next_version(document, "2"))
    assert {e["data"]["change"]["kind"] for e in events} == {"changed"}  # never opened
    for event in events:
        old, new = _changes(event)["instances"]
        assert [i["source"] for i in old] == ["GITHUB"]
        assert sorted(i["source"] for i in new) == ["GITHUB", "NVD"]
    # and a new vulnerability reported as a GHSA and its CVE opens once, with both instances
    without = copy.deepcopy(document)
    without["findings"] = [
        r for r in document["findings"] if "phpunit" not in r["component"]["name"]
    ]
    (opened,) = [
        e
        for e in _events(without, next_version(document, "2"))
        if e["data"]["vulnerability_id"] == "CVE-2026-24765"
    ]
    assert opened["data"]["change"]["kind"] == "opened"
    assert sorted(i["vuln_id"] for i in opened["data"]["instances"]) == [
        "CVE-2026-24765",
        "GHSA-vvj3-c3rp-c85p",
    ]


def test_a_ghsa_that_learns_its_cve_is_merged_into_the_cve_finding_not_resolved() -> None:
    document = _document(PHP)
    apart = copy.deepcopy(document)  # OLD: DT did not know yet that they are one
    for row in apart["findings"]:
        row["vulnerability"]["aliases"] = []
    events = _events(apart, next_version(document, "2"))
    merged = [e for e in events if e["data"]["change"]["reason"] == "merged"]
    assert len(merged) == 5  # the five GHSA/CVE pairs
    by_id = {e["subject"]: e for e in events}
    for event in merged:
        change = event["data"]["change"]
        assert change["kind"] == "resolved"
        assert event["data"]["vulnerability_id"].startswith("GHSA-")
        into = by_id[change["merged_into"]]  # the CVE finding lives on, with both rows
        assert into["data"]["change"]["kind"] == "changed"
        assert into["data"]["vulnerability_id"].startswith("CVE-")
        assert event["data"]["vulnerability_id"] in into["data"]["aliases"]
        assert len(into["data"]["instances"]) == 2
    assert {e["data"]["change"]["kind"] for e in events} == {"resolved", "changed"}


def test_another_sbom_tool_adding_purl_qualifiers_changes_nothing() -> None:
    document = _document(NPM)
    later = next_version(document, "2")
    for row in later["findings"]:  # DT: a new purl is a new component row, a new UUID
        row["component"]["purl"] += "?repository_url=https%3A%2F%2Fregistry.npmjs.org"
    assert _events(document, later) == []
    maven = _document(STATES)
    assert _events(maven, next_version(maven, "2")) == []


def test_a_library_in_two_versions_one_fixed_stays_open_with_its_instances_changed() -> None:
    document = _document(STATES)
    later = next_version(document, "2", keep=lambda r: r["component"].get("version") != "2.6.3")
    events = _events(document, later)
    (event,) = [
        e
        for e in events
        if (e["data"]["package"]["key"], e["data"]["vulnerability_id"])
        == ("pkg:npm/async", "CVE-2021-43138")
    ]
    assert event["data"]["change"]["kind"] == "changed"
    old, new = _changes(event)["instances"]
    assert [i["component_version"] for i in old] == ["2.6.3", "3.2.0"]
    assert [i["component_version"] for i in new] == ["3.2.0"]
    assert "component.version" not in _changes(event)  # 3.2.0 stayed 3.2.0
    assert all(e["data"]["change"]["kind"] != "opened" for e in events)


def test_a_suppression_in_dt_on_the_same_instance_suppresses_and_its_removal_reopens() -> None:
    document = _document(NPM)
    suppressed = copy.deepcopy(document)  # the same project re-read from DT's findings API
    suppressed["meta"]["timestamp"] = _later(document["meta"]["timestamp"], 60)
    for row in suppressed["findings"]:
        if row["component"]["name"] == "next-intl":  # its GHSA and CVE rows
            row["analysis"] = {"state": "NOT_AFFECTED", "isSuppressed": True, "detail": "unused"}
    (event,) = _events(document, suppressed)
    data = event["data"]
    assert (data["change"]["kind"], data["change"]["previous_status"]) == ("suppressed", "open")
    assert data["analysis"] == {"state": "not_affected", "suppressed": True, "detail": "unused"}
    assert data["change"]["resolved_at"] == "2026-04-24T19:40:49.000Z"
    # un-suppressed in DT on the same instances: reopened, a real change
    back = copy.deepcopy(document)
    back["meta"]["timestamp"] = _later(document["meta"]["timestamp"], 120)
    (event,) = _events(suppressed, back)
    assert event["subject"] == data["finding_id"]
    change = event["data"]["change"]
    assert (change["kind"], change["previous_status"]) == ("reopened", "suppressed")
    assert change["analysis_lost_in_dt"] is False
    # a new version: DT deleted the analysis with the old component rows; the event says so
    (event,) = _events(suppressed, next_version(document, "2"))
    assert event["data"]["change"]["kind"] == "reopened"
    assert event["data"]["change"]["analysis_lost_in_dt"] is True


def test_new_older_than_old_is_refused_in_both_modes(tmp_path: Path) -> None:
    document = _document(PHP)
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_bytes(orjson.dumps(document))
    earlier = project_later(document)  # the same project, for --by project
    earlier["meta"]["timestamp"] = _later(document["meta"]["timestamp"], -60)
    for by, older in (("line", next_version(document, "2", seconds=-60)), ("project", earlier)):
        new.write_bytes(orjson.dumps(older))
        result = run("diff", str(old), str(new), "--by", by)
        assert result.returncode == 1
        assert result.stdout == b""
        assert b"NEW is older than OLD" in result.stderr, by
        assert run("diff", str(new), str(old), "--by", by).returncode == 0  # the right way


def test_exports_of_two_lines_are_refused_and_by_project_needs_one_project(tmp_path: Path) -> None:
    php, npm = str(REAL / PHP), str(REAL / NPM)
    result = run("diff", php, npm)
    assert result.returncode == 1
    assert b"the two exports are of different lines" in result.stderr
    later = tmp_path / "later.json"
    later.write_bytes(orjson.dumps(next_version(_document(PHP), "2")))
    result = run("diff", php, str(later), "--by", "project")
    assert result.returncode == 1
    assert b"the two exports are of different projects" in result.stderr


def test_the_command_prints_v2_events_by_default_and_as_ocsf(tmp_path: Path) -> None:
    document = _document(PHP)
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_bytes(orjson.dumps(document))
    new.write_bytes(
        orjson.dumps(
            next_version(
                document,
                "2",
                bump={"phpseclib": "3.0.50"},
                keep=lambda row: row["component"]["name"] != "composer",
            )
        )
    )
    result = run("diff", str(old), str(new), "--source", "https://dt.example")
    assert result.returncode == 0, result.stderr
    events = [orjson.loads(line) for line in result.stdout.splitlines()]
    contract = schemas.load().line_change
    assert [contract.problems(e) for e in events] == [()] * 4
    assert {e["source"] for e in events} == {"https://dt.example"}
    assert {e["data"]["line"]["key"] for e in events} == {
        "https:%2F%2Fdt.example//acme%2Facme-app%20%28php%29"
    }
    result = run("diff", str(old), str(new), "--format", "ocsf", "--source", "https://dt.example")
    assert result.returncode == 0, result.stderr
    findings = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [ocsf_contract.problems(f) for f in findings] == [[]] * 4
    assert {f["finding_info"]["uid"] for f in findings} == {e["subject"] for e in events}
    assert sorted(f["activity_id"] for f in findings) == [2, 2, 3, 3]  # changed, resolved


# --- properties --------------------------------------------------------------------------------


def _reordered(document: Document, order: list[int], flip: bool) -> Document:
    out = copy.deepcopy(document)
    out["findings"] = [out["findings"][i] for i in order]
    if flip:
        for row in out["findings"]:
            aliases = row["vulnerability"].get("aliases") or []
            for alias in aliases:
                items = list(alias.items())[::-1]
                alias.clear()
                alias.update(items)
            row["vulnerability"]["aliases"] = aliases[::-1]
    return out


def _series(name: str) -> tuple[Document, Document]:
    document = _document(name)
    first = document["findings"][0]["component"]
    later = next_version(
        document,
        "2",
        bump={first["name"]: first["version"] + "-1"},
        keep=lambda row: row["component"]["name"] not in ("composer", "qs", "uuid"),
    )
    return document, later


@pytest.mark.parametrize("name", [PHP, NPM, STATES])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_the_diff_is_the_same_in_any_order_of_findings_and_aliases(
    name: str, data: st.DataObject
) -> None:
    old, new = _series(name)
    expected = _events(old, new)
    assert expected  # the series changes something: a bump, fixes
    shuffled = []
    for document in (old, new):
        order = data.draw(st.permutations(range(len(document["findings"]))))
        shuffled.append(_reordered(document, list(order), data.draw(st.booleans())))
    assert _events(*shuffled) == expected


def test_a_filter_on_the_v2_fields_is_accepted_and_applied(tmp_path: Path) -> None:
    document = _document(PHP)
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_bytes(orjson.dumps(document))
    new.write_bytes(orjson.dumps(next_version(document, "2", bump={"phpseclib": "3.0.50"})))
    result = run(
        "diff", str(old), str(new), "--filter", 'data.vulnerability_id == "CVE-2026-32935"'
    )
    assert result.returncode == 0, result.stderr
    (event,) = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert event["data"]["vulnerability_id"] == "CVE-2026-32935"
    bumped = 'data.change.changes.exists(c, c.field == "component.version")'
    assert len(run("diff", str(old), str(new), "--filter", bumped).stdout.splitlines()) == 2
    # --by project prints v1 events: a v2 field is refused there, as before
    result = run(
        "diff", str(old), str(old), "--by", "project", "--filter", "data.package.key == 'x'"
    )
    assert result.returncode == 2
    assert b"no field 'package'" in result.stderr


def test_a_reupload_into_the_same_project_with_a_bump_is_changed_not_resolved_and_opened(
    tmp_path: Path,
) -> None:
    # DT 4.12+: a re-upload into the same project gives the bumped component a new UUID, and
    # deletes the old row; diff before --by printed 4 resolved + 4 opened for this
    document = _document(PHP)
    later = copy.deepcopy(document)
    later["meta"]["timestamp"] = _later(document["meta"]["timestamp"], 3600)
    component = str(uuid.uuid5(uuid.NAMESPACE_URL, "phpseclib 3.0.50"))
    for row in later["findings"]:
        if row["component"]["name"] == "phpseclib":
            row["component"] |= {
                "uuid": component,
                "version": "3.0.50",
                "purl": "pkg:composer/phpseclib/phpseclib@3.0.50",
            }
            row["matrix"] = (
                f"{document['project']['uuid']}:{component}:{row['vulnerability']['uuid']}"
            )
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_bytes(orjson.dumps(document))
    new.write_bytes(orjson.dumps(later))
    result = run("diff", str(old), str(new))
    assert result.returncode == 0, result.stderr
    events = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [e["type"] for e in events] == ["dtrack-worker.finding.changed.v2"] * 2
    assert {_changes(e)["component.version"] for e in events} == {("3.0.49", "3.0.50")}
    by_project = run("diff", str(old), str(new), "--by", "project").stdout.splitlines()
    assert (
        sorted(orjson.loads(line)["type"] for line in by_project)
        == ["dtrack-worker.finding.opened.v1"] * 4 + ["dtrack-worker.finding.resolved.v1"] * 4
    )


def _probe_document() -> Document:
    """REVIEW-2 M1's rows in a real export: p has CVE-2024-1001 and CVE-2024-1002, no aliases;
    another component, q, has a GHSA whose aliases are both CVEs."""
    document = _document(PHP)
    template = next(r for r in document["findings"] if r["vulnerability"]["source"] == "NVD")
    project = document["project"]["uuid"]

    def row(name: str, vuln_id: str, source: str, aliases: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = copy.deepcopy(template)
        component = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{project}/{name}"))
        vulnerability = str(uuid.uuid5(uuid.NAMESPACE_URL, vuln_id))
        out["component"].update(
            uuid=component, name=name, group=None, version="1", purl=f"pkg:npm/{name}@1"
        )
        out["vulnerability"].update(
            vulnId=vuln_id, source=source, aliases=aliases, uuid=vulnerability
        )
        out["matrix"] = f"{project}:{component}:{vulnerability}"
        return out

    document["findings"] = [
        row("p", "CVE-2024-1001", "NVD", []),
        row("p", "CVE-2024-1002", "NVD", []),
        row(
            "q",
            "GHSA-aaaa-bbbb-cccc",
            "GITHUB",
            [{"cveId": "CVE-2024-1001"}, {"cveId": "CVE-2024-1002"}],
        ),
    ]
    return document


def test_one_cve_of_a_package_fixed_resolves_though_another_components_ghsa_names_both() -> None:
    old = _probe_document()
    fixed = next_version(old, "2", keep=lambda r: r["vulnerability"]["vulnId"] != "CVE-2024-1002")
    events = _events(old, fixed)
    assert _kinds(events) == [("resolved", "pkg:npm/p", "CVE-2024-1002")]
    assert events[0]["data"]["change"]["reason"] == "not_in_export"
    assert _kinds(_events(fixed, next_version(old, "3", seconds=7200))) == [
        ("opened", "pkg:npm/p", "CVE-2024-1002")
    ]
