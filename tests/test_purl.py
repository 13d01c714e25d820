"""Package URLs against the purl-spec test suite, and the package keys built on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.core import package, purl

SUITE = Path(__file__).parent / "fixtures" / "purl"

# Parse failures the suite expects that we do not check: each type's own value rules, which do
# not change a package's identity (we only need a stable key, never to reject DT's data).
UNCHECKED_FAILURES = {
    "pkg:chrome-extension/44444algnefjeiefhmpklpfiohadpglk",  # name alphabet a-p
    "pkg:chrome-extension/dogs",  # name length 32
    "pkg:chrome-extension/dlpngalgnefjeiefhmpklpfiohadpglk@1.2.3.4.5",  # version syntax
    "pkg:chrome-extension/dlpngalgnefjeiefhmpklpfiohadpglk@1.2.3-beta",
    "pkg:gem/jruby-launcher@1.1.2?Platform=java",  # how-to-parse says keys are lowercased
    "pkg:Rpm/fedora/curl@7.50.3-1.fc25?Arch=i386&Distro=fedora-25",  # the same
    "pkg:julia/Dates",  # julia's required uuid qualifier
    "pkg:swift/github.com/Alamofire/@5.4.3",  # trailing slashes are stripped by how-to-parse
}


SUITE_FILES = sorted(SUITE.glob("*/*.json"))
assert SUITE_FILES, f"no purl-spec test files in {SUITE}"


def _cases(path: Path, *, failing: bool) -> list[dict[str, Any]]:
    return [
        case
        for case in json.loads(path.read_text())["tests"]
        if case["test_type"] == "parse" and case["expected_failure"] is failing
    ]


def _parts(case: dict[str, Any]) -> tuple[Any, ...]:
    expected = case["expected_output"]
    keys = ("type", "namespace", "name", "version", "qualifiers", "subpath")
    return tuple(expected[k] for k in keys)


# one test per suite file, not per case: the suite has ~200 parse cases
@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda p: p.stem)
def test_parsing_gives_the_suites_canonical_parts(path: Path) -> None:
    wrong = []
    for case in _cases(path, failing=False):
        parsed = purl.parse(case["input"])
        got = (
            parsed.type,
            parsed.namespace,
            parsed.name,
            parsed.version,
            dict(parsed.qualifiers) or None,
            parsed.subpath,
        )
        if got != _parts(case):
            wrong.append((case["input"], got, _parts(case)))
    assert wrong == []


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda p: p.stem)
def test_what_the_suite_refuses_is_refused_or_a_known_unchecked_rule(path: Path) -> None:
    accepted = []
    for case in _cases(path, failing=True):
        try:
            purl.parse(case["input"])
        except purl.PurlError:
            continue
        accepted.append(case["input"])
    assert set(accepted) <= UNCHECKED_FAILURES, set(accepted) - UNCHECKED_FAILURES


def test_the_suite_was_read_and_every_unchecked_rule_is_in_it() -> None:
    passing = [c for p in SUITE_FILES for c in _cases(p, failing=False)]
    failing = [c["input"] for p in SUITE_FILES for c in _cases(p, failing=True)]
    assert len(passing) > 150
    assert set(failing) >= UNCHECKED_FAILURES
    for text in [c["input"] for c in passing] + failing:
        found = package.key(purl=text if isinstance(text, str) else None, group=None, name="x")
        assert found.key
        assert (found.kind == "purl") is (found.problem is None)


@given(st.text(), st.one_of(st.none(), st.text()), st.one_of(st.none(), st.text()))
def test_garbage_never_raises(text: str, group: str | None, cpe: str | None) -> None:
    found = package.key(purl=text, group=group, name=text, cpe=cpe)
    assert found.key
    assert package.key(purl="pkg:" + text, group=group, name=None, cpe=cpe).key


@pytest.mark.parametrize(
    "purls",
    [
        # pypi: the spec lowercases and dashes underscores; PEP 503 also folds dots
        ["pkg:pypi/Django_Package@1.0", "pkg:PYPI/django-package@2.0", "pkg:pypi/django.package"],
        # npm scope, encoded or not; versions and locating qualifiers never count
        ["pkg:npm/%40babel/core@7.0.0", "pkg:npm/@babel/core@7.1.0?vcs_url=git://x"],
        # maven: case kept, type=jar is the default, subpath ignored
        [
            "pkg:maven/org.apache.commons/commons-io@1.3.4",
            "pkg:maven/org.apache.commons/commons-io@2.0?type=jar&repository_url=https://r",
            "pkg:maven/org.apache.commons/commons-io@2.0#META-INF/x",
        ],
        # nuget ids are case-insensitive (the spec keeps their case)
        ["pkg:nuget/Newtonsoft.Json@13.0.1", "pkg:nuget/newtonsoft.json@12.0.0"],
        # deb: namespace and name lowercased; distro and epoch do not count
        ["pkg:deb/Debian/CURL@7.50?arch=amd64&distro=jessie", "pkg:deb/debian/curl@8?arch=amd64"],
        ["pkg:github/Package-URL/Purl-Spec@1", "pkg:github/package-url/purl-spec@2"],
    ],
)
def test_one_package_one_key(purls: list[str]) -> None:
    keys = {package.key(purl=p, group=None, name="n").key for p in purls}
    assert len(keys) == 1, keys
    assert keys.pop().startswith("pkg:")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("pkg:maven/org.x/lib@1", "pkg:maven/org.x/lib@1?classifier=sources"),
        ("pkg:maven/org.x/lib@1", "pkg:maven/org.x/lib@1?type=war"),
        ("pkg:maven/org.x/lib@1", "pkg:maven/org.X/lib@1"),  # maven is case-sensitive
        ("pkg:deb/debian/curl@1?arch=amd64", "pkg:deb/debian/curl@1?arch=i386"),
        ("pkg:gem/jruby-launcher@1", "pkg:gem/jruby-launcher@1?platform=java"),
        ("pkg:golang/github.com/Sirupsen/logrus@1", "pkg:golang/github.com/sirupsen/logrus@1"),
        ("pkg:npm/a@1", "pkg:pypi/a@1"),
    ],
)
def test_different_artifacts_have_different_keys(one: str, other: str) -> None:
    assert (
        package.key(purl=one, group=None, name="n").key
        != package.key(purl=other, group=None, name="n").key
    )


def test_a_component_without_purl_is_keyed_by_group_and_name() -> None:
    found = package.of_component({"uuid": "u", "name": "log4j-core", "group": "org.apache"})
    assert found == package.Package("name:org.apache/log4j-core", "name")


def test_a_broken_purl_falls_back_to_group_and_name_and_says_why() -> None:
    found = package.of_component({"name": "curl", "purl": "pkg:deb/curl@7"})  # no namespace
    assert found.kind == "name"
    assert found.key == "name:/curl"
    assert found.problem == "purl not used: a deb purl has a namespace"


@pytest.mark.parametrize(
    ("cpe", "expected"),
    [
        ("cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*", ("apache", "log4j")),
        ("cpe:2.3:a:Vendor\\:Inc:my\\.product:1:*:*:*:*:*:*:*", ("vendor:inc", "my.product")),
        ("cpe:/a:haxx:curl:7.50", ("haxx", "curl")),
        ("cpe:/a:%7evendor:pro%2fduct", ("~vendor", "pro/duct")),
        ("cpe:2.3:a:*:log4j:1", None),  # a wildcard vendor names nothing
        ("cpe:/a:vendor", None),
        ("not a cpe", None),
    ],
)
def test_cpe_vendor_and_product(cpe: str, expected: tuple[str, str] | None) -> None:
    assert package.cpe_product(cpe) == expected


def test_cpe_is_the_last_resort_and_then_nothing() -> None:
    by_cpe = package.key(purl=None, group=None, name=None, cpe="cpe:/a:haxx:curl:7")
    assert by_cpe == package.Package("cpe:haxx:curl", "cpe")
    assert package.key(purl=None, group=None, name="", cpe=None).kind == "none"


BASES = [
    "pkg:maven/org.apache.commons/commons-io",
    "pkg:npm/%40babel/core",
    "pkg:pypi/django-allauth",
    "pkg:deb/debian/curl",
    "pkg:golang/github.com/gorilla/mux",
    "pkg:nuget/Newtonsoft.Json",
]
VERSIONS = st.text(st.characters(codec="ascii", exclude_characters="#?@/"), min_size=1)
LOCATING = st.dictionaries(
    st.sampled_from(["repository_url", "vcs_url", "download_url", "distro", "epoch"]),
    st.text(st.characters(codec="ascii", exclude_characters="#&="), min_size=1),
)


@given(st.sampled_from(BASES), VERSIONS, LOCATING)
def test_version_and_locating_qualifiers_never_change_the_key(
    base: str, version: str, qualifiers: dict[str, str]
) -> None:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in qualifiers.items())
    text = f"{base}@{quote(version, safe='')}" + (f"?{query}" if query else "")
    assert package.key(purl=text, group=None, name="n") == package.key(
        purl=base, group=None, name="n"
    )


@given(st.text() | st.from_regex(r"[A-Za-z0-9._~+:/@ -]*", fullmatch=True))
def test_encode_writes_what_quote_writes(value: str) -> None:
    # encode skips quote when nothing needs escaping: the same text either way
    assert purl.encode(value) == quote(value, safe=".-_~+:", errors="backslashreplace")
