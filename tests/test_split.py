"""Reading an export's findings in runs (worker.split) gives what the whole document gives."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import FPF, fixture_files
from worker.adapters.schemas import Contracts
from worker.core import fpf, split
from worker.core.errors import InvalidExport

EXPORTS = fixture_files(FPF / "real") + fixture_files(FPF / "docs") + fixture_files(FPF / "edge")
NPM = FPF / "real" / "defectdojo__deptrack_npm_4.14.1.json"


def whole(raw: bytes, contracts: Contracts, **options: Any) -> fpf.Export:
    """The reference: one orjson.loads, one validation, findings normalized from the tree."""
    document = fpf.parse(raw)
    contracts.fpf.check(document, InvalidExport, "FPF export")
    return fpf.normalize(document, **options)


def described(export: fpf.Export) -> tuple[Any, ...]:
    severities: dict[str, int] = {}
    events = [(event.id, event.routing_key, event.body) for event in export.events(severities)]
    return (repr(export), export.finding_count, export.repeated_rows, severities, events)


def assert_same_as_whole(raw: bytes, contracts: Contracts, run_bytes: int) -> None:
    expected = described(whole(raw, contracts))
    assert described(fpf.process(raw, contracts.fpf, run_bytes=run_bytes)) == expected


@pytest.mark.parametrize("run_bytes", [1, 700, split.RUN_BYTES])
@pytest.mark.parametrize("path", EXPORTS, ids=lambda p: p.name)
def test_runs_give_the_same_export_as_the_whole_document(path, run_bytes, contracts):
    raw = path.read_bytes()
    document = orjson.loads(raw)
    if not isinstance(document.get("findings"), list):  # the edge files without an array
        assert split.split(raw, run_bytes) is None
        with pytest.raises(InvalidExport):
            fpf.process(raw, contracts.fpf, run_bytes=run_bytes)
        return
    pieces = split.split(raw, run_bytes)
    assert pieces is not None
    runs = [pieces.findings(run) for run in pieces.runs]
    assert [finding for run in runs for finding in run] == document["findings"]
    if run_bytes == 1:  # every finding a run of its own
        assert len(runs) == max(1, len(document["findings"]))
    assert_same_as_whole(raw, contracts, run_bytes)


@pytest.mark.parametrize("run_bytes", [1, 700, split.RUN_BYTES])
@pytest.mark.parametrize("path", EXPORTS, ids=lambda p: p.name)
def test_a_streamed_export_makes_the_events_of_a_processed_one(path, run_bytes, contracts):
    """Validated first, made run by run when read: the same events, the same refusals."""
    raw = path.read_bytes()
    refusal: tuple[Any, ...] | None = None
    try:
        expected = described(fpf.process(raw, contracts.fpf, run_bytes=run_bytes))
    except InvalidExport as refused:
        refusal = (refused.args, refused.problems)
    if refusal is not None:
        with pytest.raises(InvalidExport) as caught:
            fpf.process(raw, contracts.fpf, run_bytes=run_bytes, streamed=True)
        assert (caught.value.args, caught.value.problems) == refusal
        return
    released: list[int] = []
    streamed = fpf.process(
        raw, contracts.fpf, run_bytes=run_bytes, release=released.append, streamed=True
    )
    validated = len(released)  # the first pass gave back every run it parsed
    assert described(streamed) == expected
    assert len(released) == 2 * validated  # and the second pass, as it made the events
    assert list(streamed.events()) == []  # made once: read, they are gone


def _reordered(document: dict[str, Any], first: list[str]) -> dict[str, Any]:
    return {key: document[key] for key in first} | document


@pytest.mark.parametrize(
    "order",
    [["findings"], ["version", "findings"], ["version", "meta", "project", "findings"]],
    ids=["findings first", "findings in the middle", "findings last"],
)
@pytest.mark.parametrize("indent", [0, orjson.OPT_INDENT_2], ids=["compact", "indented"])
def test_key_order_and_layout_do_not_matter(order, indent, contracts):
    document = _reordered(orjson.loads(NPM.read_bytes()), order)
    raw = orjson.dumps(document, option=indent)
    pieces = split.split(raw, 1)
    assert pieces is not None
    assert len(pieces.runs) == len(document["findings"])
    assert_same_as_whole(raw, contracts, 1)


def test_a_nested_look_alike_of_the_cut_falls_back_to_the_whole_document(contracts):
    document = orjson.loads(NPM.read_bytes())
    # an unknown key the contract tolerates, whose objects open like findings do
    document["findings"][3]["related"] = [{"component": "a"}, {"component": "b"}]
    raw = orjson.dumps(document)
    pieces = split.split(raw, 1)
    assert pieces is not None
    refused = 0
    for run in pieces.runs:
        try:
            pieces.findings(run)
        except orjson.JSONDecodeError:
            refused += 1
    assert refused >= 1  # the guess was wrong and is caught
    assert_same_as_whole(raw, contracts, 1)


def test_a_findings_key_somewhere_else_falls_back_to_the_whole_document(contracts):
    document = orjson.loads(NPM.read_bytes())
    document["meta"]["findings"] = [{"component": {}}, {"component": {}}]
    document = _reordered(document, ["meta"])  # before the real array
    raw = orjson.dumps(document)
    # the first match is meta's array: the document without it does not parse, the guess is refused
    assert split.split(raw, 1) is None
    assert_same_as_whole(raw, contracts, 1)


def test_text_beyond_ascii_around_the_end_of_the_array(contracts):
    document = _reordered(orjson.loads(NPM.read_bytes()), ["meta", "findings"])
    document["project"]["name"] = "Ünïcødé ✓ 漢字 ]"
    document["findings"][-1]["vulnerability"]["description"] = "ß€ 😀 ] }, {"
    raw = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    pieces = split.split(raw, 1)
    assert pieces is not None
    assert pieces.head["project"]["name"] == "Ünïcødé ✓ 漢字 ]"
    assert_same_as_whole(raw, contracts, 1)


@pytest.mark.parametrize("cut", [0.3, 0.9, 0.999])
def test_a_truncated_export_gets_the_error_of_the_whole_document(cut, contracts):
    raw = NPM.read_bytes()
    raw = raw[: int(len(raw) * cut)]
    with pytest.raises(InvalidExport) as expected:
        whole(raw, contracts)
    with pytest.raises(InvalidExport) as caught:
        fpf.process(raw, contracts.fpf, run_bytes=1)
    assert str(caught.value) == str(expected.value)
    assert str(caught.value).startswith("export is not valid JSON: /: unexpected end of data")
    assert caught.value.problems == expected.value.problems


def test_a_bad_finding_in_a_later_run_is_reported_at_its_place_in_the_document(contracts):
    document = orjson.loads(NPM.read_bytes())
    document["findings"][17]["vulnerability"]["severity"] = "SEVERE"
    raw = orjson.dumps(document)
    with pytest.raises(InvalidExport) as caught:
        fpf.process(raw, contracts.fpf, run_bytes=1)
    assert [p.pointer for p in caught.value.problems] == ["/findings/17/vulnerability/severity"]


def _findings_rules(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every subschema that applies to the top-level ``findings`` array itself."""
    own = schema.get("properties", {}).get("findings")
    found = [own] if own else []
    for branch in schema.get("allOf", []):
        for key in ("then", "else"):
            found += _findings_rules(branch.get(key, {}))
    return found


def test_the_contract_has_no_rule_across_findings(contracts):
    """Runs are validated one by one with the head: a rule relating findings would be missed."""
    rules = _findings_rules(contracts.fpf.schema)
    assert rules  # the walk found the array's schema
    for rule in rules:
        assert set(rule) <= {"type", "items", "description"}, rule


def test_no_findings_array_means_no_pieces():
    assert split.split(b'{"version": "1.5", "findings": null}') is None
    assert split.split(b"[1, 2]") is None
    assert split.split(b'{"findings": [{"component": {}}') is None  # never closes


def test_with_two_problems_the_schema_one_is_reported_first_as_for_the_whole_document(contracts):
    document = orjson.loads(NPM.read_bytes())
    document["meta"]["timestamp"] = "2026-02-30T10:00:00Z"  # matches the pattern, no such day
    document["findings"][17]["vulnerability"]["severity"] = "SEVERE"
    raw = orjson.dumps(document)
    with pytest.raises(InvalidExport) as expected:
        whole(raw, contracts)
    with pytest.raises(InvalidExport) as caught:
        fpf.process(raw, contracts.fpf, run_bytes=1)
    assert caught.value.problems == expected.value.problems
    assert [p.pointer for p in caught.value.problems] == ["/findings/17/vulnerability/severity"]
