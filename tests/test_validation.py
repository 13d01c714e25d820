"""The compiled validator (hot path) and jsonschema (reports) must agree on every document."""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
import jsonschema_rs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FPF, NOTIFICATIONS, fixture_files
from worker.adapters import schemas
from worker.adapters.schemas import Contracts
from worker.core import fpf
from worker.core.validation import Contract

_CONTRACTS = schemas.load()  # hypothesis tests cannot take function-scoped fixtures
FPF_FILES = fixture_files(FPF / "real") + fixture_files(FPF / "docs") + fixture_files(FPF / "edge")
NOTIFICATION_FILES = fixture_files(NOTIFICATIONS) + fixture_files(NOTIFICATIONS / "templated")


def _agree(contract: Contract, document: object) -> bool:
    fast = contract.is_valid(document)
    problems = contract.problems(document)
    assert fast == (problems == ()), (fast, problems)
    return fast


@pytest.mark.parametrize("path", FPF_FILES, ids=lambda p: p.name)
def test_validators_agree_on_every_fpf_fixture(path, contracts):
    _agree(contracts.fpf, orjson.loads(path.read_bytes()))


@pytest.mark.parametrize("path", NOTIFICATION_FILES, ids=lambda p: p.name)
def test_validators_agree_on_every_notification_fixture(path, contracts):
    _agree(contracts.notification, orjson.loads(path.read_bytes()))


def test_validators_agree_on_every_event_we_produce(contracts):
    for path in fixture_files(FPF / "real"):
        for event in fpf.process(path.read_bytes(), contracts.fpf).events():
            assert _agree(contracts.finding_event, event.cloudevent())


# -- mutations ------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(
        [
            "1.3",
            "1.3\n",
            "2.0",
            "CRITICAL",
            "critical",
            "NVD",
            "",
            "2024-01-01 00:00:00.0",
            "2024-13-01T00:00:00Z",
            "a:b:c",
            "a:b",
            "NEW_VULNERABILITY",
            "GROUP_BOM_PROCESSED",
            "SCOPE_SYSTEM",
            "LEVEL_ERROR",
            "PORTFOLIO",
        ]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def _containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if isinstance(node, dict | list) else []
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        found.extend(_containers(child, (*path, key)))
    return found


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


@st.composite
def mutated(draw: st.DrawFn, originals: list[Any]) -> Any:
    document = copy.deepcopy(draw(st.sampled_from(originals)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        container = _at(document, draw(st.sampled_from(_containers(document))))
        keys = (
            list(container.keys()) if isinstance(container, dict) else list(range(len(container)))
        )
        action = draw(st.sampled_from(["replace", "delete", "add"] if keys else ["add"]))
        if action == "add":
            if isinstance(container, dict):
                container[draw(st.text(max_size=8))] = draw(json_values)
            else:
                container.append(draw(json_values))
        elif action == "delete":
            del container[draw(st.sampled_from(keys))]
        else:
            container[draw(st.sampled_from(keys))] = draw(json_values)
    # what a receiver would really hold: JSON text parsed back
    return orjson.loads(orjson.dumps(document))


def _load(paths: list[Any]) -> list[Any]:
    return [orjson.loads(path.read_bytes()) for path in paths]


SMALL_FPF = _load([p for p in FPF_FILES if p.stat().st_size < 40_000])
NOTIFICATION_DOCS = _load(fixture_files(NOTIFICATIONS))

_settings = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(document=mutated(SMALL_FPF))
def test_validators_agree_on_mutated_exports(document):
    _agree(_CONTRACTS.fpf, document)


@_settings
@given(document=mutated(NOTIFICATION_DOCS))
def test_validators_agree_on_mutated_notifications(document):
    _agree(_CONTRACTS.notification, document)


@_settings
@given(document=json_values)
def test_validators_agree_on_arbitrary_json(document):
    for contract in (_CONTRACTS.fpf, _CONTRACTS.notification, _CONTRACTS.job):
        _agree(contract, document)


def test_a_trailing_newline_fails_both_validators_like_ecma_262(contracts):
    document = orjson.loads((FPF / "docs" / "defectdojo__one_finding.json").read_bytes())
    document["version"] = "1.0\n"
    assert not _agree(contracts.fpf, document)
    assert [p.pointer for p in contracts.fpf.problems(document)] == ["/version"]


def test_every_bundled_schema_has_an_id_and_a_version(contracts: Contracts):
    for contract in (contracts.fpf, contracts.notification, contracts.job, contracts.finding_event):
        assert re.fullmatch(r"urn:dtrack-worker:schema:[a-z-]+:\d+\.\d+\.\d+", contract.id)
        assert contract.id.endswith(":" + contract.version)
        assert contract.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", sorted(schemas.FILES))
def test_every_bundled_schema_is_valid_under_the_2020_12_meta_schema(name):
    # jsonschema's own check, here rather than at every start: Contract no longer imports it
    jsonschema.Draft202012Validator.check_schema(getattr(_CONTRACTS, name).schema)


def test_a_schema_that_breaks_its_meta_schema_is_refused():
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:dtrack-worker:schema:broken:1.0.0",
        "x-schema-version": "1.0.0",
        "type": "string",
        "minLength": -1,
    }
    with pytest.raises(jsonschema_rs.ValidationError, match="minimum of 0"):
        Contract(schema)
