"""Finding identity in a line: alias groups, stable ids, instances, versions (issue 26 §1-3)."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.core import ids, vulnid
from worker.core.line_findings import (
    Instance,
    Unjoined,
    diff_instances,
    finding_id,
    group,
)
from worker.core.lines import LINE_ID_NAMESPACE, Line
from worker.core.package import Package

REAL = Path(__file__).parent / "fixtures" / "fpf" / "real"  # copies of FIXTURES/fpf/real
LINE = Line("https://dt.example", "", "acme-app")


def _rows(name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((REAL / name).read_text())["findings"]
    return rows


PHP = "defectdojo__deptrack_php_4.14.1.json"
NPM = "defectdojo__deptrack_npm_4.14.1.json"
ALIASES_47 = "defectdojo__many_findings_with_alias.json"
STATES = "defectdojo__with_state_fp_na_resolved.json"


# --- vulnerability tokens and alias groups ---------------------------------------------------


@pytest.mark.parametrize(
    ("source", "vuln_id", "expected"),
    [
        ("NVD", "cve-2021-44228", "CVE-2021-44228"),
        ("OSV", "CVE-2021-44228", "CVE-2021-44228"),  # a CVE is a CVE whoever mirrored it
        ("GITHUB", "ghsa-JFH8-C2JP-5V3Q", "GHSA-jfh8-c2jp-5v3q"),
        ("OSSINDEX", "sonatype-2020-0926", "OSSINDEX:sonatype-2020-0926"),
        ("osv", "PYSEC-2021-1", "OSV:PYSEC-2021-1"),
        (None, "X-1", "UNKNOWN:X-1"),
    ],
)
def test_tokens(source: str | None, vuln_id: str, expected: str) -> None:
    assert vulnid.token(source, vuln_id) == expected


@pytest.mark.parametrize(
    "aliases",
    [
        [{"cveId": "CVE-2022-1", "ghsaId": "GHSA-aaaa-bbbb-cccc"}],  # FPF 1.2+
        [  # FPF 1.1 (DT 4.6-4.7): a database id, and allBySource
            {"id": 7, "allBySource": {"NVD": "CVE-2022-1", "GITHUB": "GHSA-aaaa-bbbb-cccc"}}
        ],
        [{"vulnId": "CVE-2022-1", "source": "NVD"}, {"vulnId": "GHSA-aaaa-bbbb-cccc"}],  # webhook
        ["CVE-2022-1", "GHSA-aaaa-bbbb-cccc", "", None, 3],  # strings, and junk ignored
    ],
)
def test_every_alias_shape_gives_the_same_tokens(aliases: list[Any]) -> None:
    found = vulnid.identifiers("OSV", "PYSEC-2022-9", aliases)
    assert found.own == "OSV:PYSEC-2022-9"
    assert found.aliases == {"CVE-2022-1", "GHSA-aaaa-bbbb-cccc"}


def test_a_ghsa_and_its_cve_are_one_finding_on_the_real_php_export() -> None:
    grouped = group(LINE, _rows(PHP))
    phpseclib = [f for f in grouped.findings if f.package.key == "pkg:composer/phpseclib/phpseclib"]
    assert [f.vulnerability for f in phpseclib] == ["CVE-2026-32935", "CVE-2026-40194"] or [
        f.vulnerability for f in phpseclib
    ] == ["CVE-2026-40194", "CVE-2026-32935"]
    first = next(f for f in phpseclib if f.vulnerability == "CVE-2026-32935")
    assert sorted(i.vuln_id for i in first.instances) == ["CVE-2026-32935", "GHSA-94g3-g5v7-q4jg"]
    assert first.aliases == ("CVE-2026-32935", "GHSA-94g3-g5v7-q4jg")
    # 13 DT findings: five GHSA/CVE pairs on one component each, so 8 line findings
    assert len(_rows(PHP)) == 13
    assert len(grouped.findings) == 8
    assert sum(len(f.instances) == 2 for f in grouped.findings) == 5


def test_a_shared_distribution_advisory_does_not_join_vulnerabilities() -> None:
    # DT 4.7 lists DLA-3132-1 as an alias of four snakeyaml CVEs: still 7 snakeyaml findings
    grouped = group(LINE, _rows(ALIASES_47))
    snakeyaml = [f for f in grouped.findings if f.package.key.endswith("/snakeyaml")]
    assert len(snakeyaml) == 7
    assert all(len(f.instances) == 1 for f in grouped.findings)
    assert (
        "OSV:DLA-3132-1"
        in next(f for f in snakeyaml if f.vulnerability == "CVE-2022-25857").aliases
    )


def test_a_library_in_two_versions_is_one_finding_with_two_instances() -> None:
    grouped = group(LINE, _rows(STATES))
    found = next(
        f
        for f in grouped.findings
        if f.package.key == "pkg:npm/async" and f.vulnerability == "CVE-2021-43138"
    )
    assert found.versions == ("2.6.3", "3.2.0")
    assert len({i.component_uuid for i in found.instances}) == 2


def _shuffled(rows: list[dict[str, Any]], order: list[int], flip: bool) -> list[dict[str, Any]]:
    out = [copy.deepcopy(rows[i]) for i in order]
    if flip:
        for row in out:
            for alias in row["vulnerability"].get("aliases") or []:
                items = list(alias.items())[::-1]
                alias.clear()
                alias.update(items)
            row["vulnerability"]["aliases"] = (row["vulnerability"].get("aliases") or [])[::-1]
    return out


@pytest.mark.parametrize("name", [PHP, NPM, ALIASES_47, STATES])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_identity_is_the_same_in_any_order_of_findings_and_aliases(
    name: str, data: st.DataObject
) -> None:
    rows = _rows(name)
    order = data.draw(st.permutations(range(len(rows))))
    flip = data.draw(st.booleans())
    expected = group(LINE, rows).findings
    again = group(LINE, _shuffled(rows, list(order), flip)).findings
    assert [(f.id, f.vulnerability, f.instances) for f in again] == [
        (f.id, f.vulnerability, f.instances) for f in expected
    ]


# --- stable ids while aliases grow -----------------------------------------------------------


def test_a_ghsa_that_learns_its_cve_keeps_its_id() -> None:
    first = vulnid.assign({}, [frozenset({"GHSA-aaaa-bbbb-cccc"})])
    assert first.ids == {"GHSA-aaaa-bbbb-cccc": "GHSA-aaaa-bbbb-cccc"}
    later = vulnid.assign(first.known, [frozenset({"GHSA-aaaa-bbbb-cccc", "CVE-2026-1"})])
    assert later.ids == {
        "GHSA-aaaa-bbbb-cccc": "GHSA-aaaa-bbbb-cccc",
        "CVE-2026-1": "GHSA-aaaa-bbbb-cccc",
    }
    assert later.merges == ()
    # a line that first sees it with its CVE names it by the CVE
    assert (
        vulnid.assign({}, [frozenset({"GHSA-aaaa-bbbb-cccc", "CVE-2026-1"})]).ids[
            "GHSA-aaaa-bbbb-cccc"
        ]
        == "CVE-2026-1"
    )


def test_two_ids_that_become_one_group_are_merged_and_reported() -> None:
    known = {"GHSA-aaaa-bbbb-cccc": "GHSA-aaaa-bbbb-cccc", "CVE-2026-1": "CVE-2026-1"}
    merged = vulnid.assign(known, [frozenset(known)])
    assert merged.merges == (vulnid.Merge("CVE-2026-1", ("GHSA-aaaa-bbbb-cccc",)),)
    assert set(merged.ids.values()) == {"CVE-2026-1"}
    assert merged.known["GHSA-aaaa-bbbb-cccc"] == "CVE-2026-1"


def test_an_alias_withdrawn_splits_the_group_and_the_own_token_keeps_the_id() -> None:
    known = {"CVE-2026-1": "CVE-2026-1", "GHSA-aaaa-bbbb-cccc": "CVE-2026-1"}
    split = vulnid.assign(known, [frozenset({"CVE-2026-1"}), frozenset({"GHSA-aaaa-bbbb-cccc"})])
    assert split.ids == {"CVE-2026-1": "CVE-2026-1", "GHSA-aaaa-bbbb-cccc": "GHSA-aaaa-bbbb-cccc"}
    assert split.splits == (vulnid.Split("CVE-2026-1", ("GHSA-aaaa-bbbb-cccc",)),)


def test_known_ids_carry_into_line_findings() -> None:
    rows = [r for r in _rows(PHP) if r["vulnerability"]["source"] == "GITHUB"]  # GHSAs alone
    before = group(LINE, rows)
    after = group(LINE, _rows(PHP), before.known)  # their CVE rows appear
    assert {f.id for f in after.findings} == {f.id for f in before.findings}
    assert {f.vulnerability for f in after.findings} == {f.vulnerability for f in before.findings}


TOKENS = ["CVE-2026-1", "CVE-2026-2", "GHSA-aaaa-bbbb-cccc", "OSV:X"]


@given(st.lists(st.frozensets(st.sampled_from(TOKENS), min_size=1), min_size=1, max_size=6))
def test_ids_once_given_stay_while_their_groups_only_grow(sets: list[frozenset[str]]) -> None:
    groups = vulnid.groups(sets)
    first = vulnid.assign({}, groups)
    assert set(first.ids) == set().union(*sets)
    assert all(len({first.ids[t] for t in g}) == 1 for g in groups)
    # the same groups again (in another order) keep every id
    again = vulnid.assign(first.known, list(reversed(groups)))
    assert again.ids == first.ids
    assert again.merges == ()
    assert again.splits == ()
    # one group gaining a new token keeps its id, and so do the others: a lower CVE when it
    # has none (a GHSA learning its CVE), else a GHSA (a second CVE would be another group)
    grouping = vulnid.grouping(sets)
    grows = next(g for g in grouping.groups if min(sets[0]) in g)
    unjoined = any(set(c.tokens) == grows for c in grouping.conflicts)
    new = "GHSA-zzzz-zzzz-zzzz" if unjoined or any(map(vulnid.is_cve, grows)) else "CVE-2000-1"
    grown = vulnid.assign(first.known, vulnid.groups([*sets, frozenset({min(grows), new})]))
    assert grown.merges == ()
    assert grown.splits == ()
    assert {t: grown.ids[t] for t in first.ids} == first.ids
    assert grown.ids[new] == first.ids[min(sets[0])]


MORE_TOKENS = [*TOKENS, "CVE-2026-3", "GHSA-dddd-eeee-ffff", "OSV:Y"]


@given(
    st.lists(st.frozensets(st.sampled_from(MORE_TOKENS), min_size=1), min_size=1, max_size=8),
    st.randoms(use_true_random=False),
)
def test_no_alias_group_holds_two_cves_in_any_order(
    sets: list[frozenset[str]], random: Any
) -> None:
    found = vulnid.grouping(sets)
    every = set().union(*sets)
    assert sorted(t for g in found.groups for t in g) == sorted(every)  # a partition
    assert all(sum(map(vulnid.is_cve, g)) <= 1 for g in found.groups)
    shuffled = [frozenset(random.sample(sorted(s), len(s))) for s in sets]
    random.shuffle(shuffled)
    assert vulnid.grouping(shuffled) == found
    # a union with at most one CVE is joined as before; every refused join is reported
    for joined in vulnid._union(sets):
        cves = {t for t in joined if vulnid.is_cve(t)}
        if len(cves) <= 1:
            assert joined in found.groups
        else:  # each CVE in a group of its own making; a group left with none is reported
            inner = [g for g in found.groups if g <= joined]
            assert sorted(t for g in inner for t in g if vulnid.is_cve(t)) == sorted(cves)
            reported = {frozenset(c.tokens) for c in found.conflicts}
            assert all(g in reported for g in inner if not any(map(vulnid.is_cve, g)))
    # and no CVE is ever given another CVE's id, whatever ids were known before
    known = {t: random.choice(MORE_TOKENS) for t in every if random.random() < 0.5}
    ids = vulnid.assign(known, found.groups).known
    assert all(ids[c] == c or not vulnid.is_cve(ids[c]) for c in every if vulnid.is_cve(c))


# --- a version series of one line ------------------------------------------------------------


def _next_version(rows: list[dict[str, Any]], project: str, bump: int) -> list[dict[str, Any]]:
    """The same findings as DT shows them for another version of the project: a new project
    UUID, new component UUIDs (DT makes new rows), versions bumped in version and purl."""
    out = copy.deepcopy(rows)
    components: dict[str, str] = {}
    for row in out:
        component = row["component"]
        new_uuid = components.setdefault(component["uuid"], str(uuid.uuid4()))
        old_version = component.get("version")
        component["uuid"] = new_uuid
        component["project"] = project
        if old_version:
            component["version"] = f"{old_version}.{bump}"
            if component.get("purl"):
                component["purl"] = component["purl"].replace(
                    f"@{old_version}", f"@{component['version']}"
                )
        row["matrix"] = f"{project}:{new_uuid}:{row['vulnerability']['uuid']}"
    return out


@pytest.mark.parametrize("name", [PHP, NPM, STATES])
def test_a_version_series_keeps_every_line_finding_id(name: str) -> None:
    rows = _rows(name)
    first = group(LINE, rows)
    second = group(LINE, _next_version(rows, str(uuid.uuid4()), 1), first.known)
    third = group(LINE, _next_version(rows, str(uuid.uuid4()), 2), second.known)
    assert [f.id for f in second.findings] == [f.id for f in first.findings]
    assert [f.id for f in third.findings] == [f.id for f in first.findings]
    matrices = {i.matrix for f in first.findings for i in f.instances}
    assert not matrices & {i.matrix for f in third.findings for i in f.instances}
    # each instance moved version: changed, never resolved + opened
    for before, after in zip(first.findings, third.findings, strict=True):
        diff = diff_instances(before.instances, after.instances)
        assert diff.added == ()
        assert diff.removed == ()
        assert diff.kept == ()
        assert len(diff.moved) == len(before.instances)
        for move in diff.moved:
            assert move.before.component_uuid != move.after.component_uuid
            assert (move.before.source, move.before.vuln_id) == (
                move.after.source,
                move.after.vuln_id,
            )  # a GHSA row moves to the GHSA row, the CVE row to the CVE row
            if move.before.component_version:
                assert move.after.component_version == f"{move.before.component_version}.2"


def test_instances_pair_by_matrix_then_by_version_order() -> None:
    def instance(matrix: str, version: str) -> Instance:
        return Instance(
            matrix=matrix,
            project_uuid="p",
            project_version="1",
            component_uuid=matrix,
            component_version=version,
            purl=None,
            vulnerability_uuid="v",
            source="NVD",
            vuln_id="CVE-2026-1",
        )

    before = [instance("a", "1.10.0"), instance("b", "1.9.0"), instance("c", "2.0")]
    after = [
        instance("c", "2.0"),
        instance("d", "1.11.0"),
        instance("e", "1.9.1"),
        instance("f", "3"),
    ]
    diff = diff_instances(before, after)
    assert [i.matrix for i in diff.kept] == ["c"]
    assert [(m.before.matrix, m.after.matrix) for m in diff.moved] == [("b", "e"), ("a", "d")]
    assert [i.matrix for i in diff.added] == ["f"]
    assert diff.removed == ()


def test_a_ghsa_and_cve_pair_moves_row_to_row_whatever_the_uuids() -> None:
    def instance(matrix: str, version: str, vuln_id: str) -> Instance:
        return Instance(
            matrix=matrix,
            project_uuid="p",
            project_version="1",
            component_uuid=matrix,
            component_version=version,
            purl=None,
            vulnerability_uuid=matrix,
            source="GITHUB" if vuln_id.startswith("GHSA") else "NVD",
            vuln_id=vuln_id,
        )

    ghsa, cve = "GHSA-94g3-g5v7-q4jg", "CVE-2026-32935"
    before = [instance("a", "3.0.49", ghsa), instance("b", "3.0.49", cve)]
    after = [instance("c", "3.0.50", cve), instance("d", "3.0.50", ghsa)]  # new DT uuids
    diff = diff_instances(before, after)
    assert sorted((m.before.matrix, m.after.matrix) for m in diff.moved) == [("a", "d"), ("b", "c")]


def test_the_finding_id_is_a_uuid5_of_its_key_in_the_line_namespace() -> None:
    package = Package("pkg:npm/uuid", "purl")
    found = finding_id(LINE, package, "GHSA-w5hq-g745-h8pq")
    assert found == str(
        uuid.uuid5(LINE_ID_NAMESPACE, f"finding\n{LINE.key}\npkg:npm/uuid\nGHSA-w5hq-g745-h8pq")
    )
    assert uuid.UUID(found).version == 5
    assert found == ids.uuid5(
        LINE_ID_NAMESPACE,
        "finding\nhttps:%2F%2Fdt.example//acme-app\npkg:npm/uuid\nGHSA-w5hq-g745-h8pq",
    )
    other_line = Line("https://dt.example", "", "acme-app", "track:2.x")
    assert finding_id(other_line, package, "GHSA-w5hq-g745-h8pq") != found


def test_identity_data_keeps_what_a_consumer_needs_to_call_dt() -> None:
    found = group(LINE, _rows(PHP), project_version="develop").findings[0]
    data = found.identity()
    assert data["line"]["id"] == LINE.id
    assert data["vulnerability"]["id"] == found.vulnerability
    assert {i["matrix"] for i in data["instances"]} == {i.matrix for i in found.instances}
    assert all(
        i["project_uuid"] == "ca4f2da9-0fad-4a13-92d7-f627f3168a57" for i in data["instances"]
    )


def test_a_row_repeated_for_another_attribution_is_the_same_instance() -> None:
    rows = _rows(PHP)
    again = copy.deepcopy(rows[0])
    again["attribution"] = {"analyzerIdentity": "OSSINDEX_ANALYZER", "attributedOn": "2026-01-01"}
    once = group(LINE, rows).findings
    twice = group(LINE, [*rows, again]).findings
    assert [(f.id, f.instances) for f in twice] == [(f.id, f.instances) for f in once]


# --- alias groups never join distinct CVEs (REVIEW-2 M1) ------------------------------------

PROJECT = "11111111-1111-4111-8111-111111111111"
P_UUID = "22222222-2222-4222-8222-222222222222"
Q_UUID = "33333333-3333-4333-8333-333333333333"
GHSA_OF_TWO = "GHSA-aaaa-bbbb-cccc"


def _row(
    component: str, purl: str, vuln_id: str, source: str, aliases: list[Any]
) -> dict[str, Any]:
    return {
        "matrix": f"{PROJECT}:{component}:{vuln_id}",
        "component": {
            "uuid": component,
            "name": purl.split("/")[-1].split("@")[0],
            "purl": purl,
            "version": "1",
        },
        "vulnerability": {
            "vulnId": vuln_id,
            "source": source,
            "aliases": aliases,
            "uuid": vuln_id,
            "severity": "HIGH",
        },
        "attribution": {},
    }


def _probe_rows() -> list[dict[str, Any]]:
    """/tmp/rv2_lines.py's rows: p has two CVEs; q's GHSA names both of them."""
    return [
        _row(P_UUID, "pkg:npm/p@1", "CVE-2024-1001", "NVD", []),
        _row(P_UUID, "pkg:npm/p@1", "CVE-2024-1002", "NVD", []),
        _row(
            Q_UUID,
            "pkg:npm/q@1",
            GHSA_OF_TWO,
            "GITHUB",
            [{"cveId": "CVE-2024-1001"}, {"cveId": "CVE-2024-1002"}],
        ),
    ]


def _shown(findings: Any) -> list[tuple[str, str, list[str]]]:
    return sorted(
        (f.package.key, f.vulnerability, [i.vuln_id for i in f.instances]) for f in findings
    )


def test_another_components_ghsa_naming_two_cves_does_not_join_them() -> None:
    grouped = group(LINE, _probe_rows(), project_version="1")
    assert _shown(grouped.findings) == [
        ("pkg:npm/p", "CVE-2024-1001", ["CVE-2024-1001"]),
        ("pkg:npm/p", "CVE-2024-1002", ["CVE-2024-1002"]),
        ("pkg:npm/q", GHSA_OF_TWO, [GHSA_OF_TWO]),
    ]
    p_1002 = next(f for f in grouped.findings if f.vulnerability == "CVE-2024-1002")
    assert p_1002.aliases == ("CVE-2024-1002",)  # nothing of q's leaks into p's finding
    # reported: the GHSA would have joined two CVEs, so it joined nothing
    assert grouped.unjoined == (
        Unjoined("pkg:npm/q", (GHSA_OF_TWO,), ("CVE-2024-1001", "CVE-2024-1002")),
    )
    # the stored ids: no CVE is kept under another CVE
    assert grouped.known["pkg:npm/p"] == {
        "CVE-2024-1001": "CVE-2024-1001",
        "CVE-2024-1002": "CVE-2024-1002",
    }
    assert grouped.known["pkg:npm/q"][GHSA_OF_TWO] == GHSA_OF_TWO


def test_a_cve_never_takes_the_id_of_another_cve() -> None:
    # GHSA-x was CVE-2026-1's; DT corrected its alias to CVE-2026-2 (CVE-2026-1 not in this export)
    known = {"CVE-2026-1": "CVE-2026-1", GHSA_OF_TWO: "CVE-2026-1"}
    moved = vulnid.assign(known, [frozenset({GHSA_OF_TWO, "CVE-2026-2"})])
    assert moved.ids == {GHSA_OF_TWO: "CVE-2026-2", "CVE-2026-2": "CVE-2026-2"}
    assert moved.known["CVE-2026-2"] == "CVE-2026-2"
    assert moved.known["CVE-2026-1"] == "CVE-2026-1"


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_the_refused_join_is_the_same_in_any_order_of_findings_and_aliases(
    data: st.DataObject,
) -> None:
    rows = [
        *_probe_rows(),  # and q's own CVE row, with the GHSA as its alias: still apart from p's
        _row(Q_UUID, "pkg:npm/q@1", "CVE-2024-1001", "NVD", [{"ghsaId": GHSA_OF_TWO}]),
    ]
    order = data.draw(st.permutations(range(len(rows))))
    expected = group(LINE, rows)
    again = group(LINE, _shuffled(rows, list(order), data.draw(st.booleans())))
    assert [(f.id, f.aliases, f.instances) for f in again.findings] == [
        (f.id, f.aliases, f.instances) for f in expected.findings
    ]
    assert again.unjoined == expected.unjoined
    assert _shown(expected.findings) == [
        ("pkg:npm/p", "CVE-2024-1001", ["CVE-2024-1001"]),
        ("pkg:npm/p", "CVE-2024-1002", ["CVE-2024-1002"]),
        ("pkg:npm/q", "CVE-2024-1001", ["CVE-2024-1001"]),
        ("pkg:npm/q", GHSA_OF_TWO, [GHSA_OF_TWO]),
    ]
