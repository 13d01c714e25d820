"""Lines: DTRACK_WORKER_LINE_BY, which line a project is on, and the line's current version."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.core import lines
from worker.core.errors import ConfigError
from worker.core.lines import Line, ProjectVersion

SOURCE = "https://dt.example"


def _project(version: str | None = "1.0", **kw: object) -> ProjectVersion:
    return ProjectVersion(uuid=str(uuid.uuid4()), name="acme-app", version=version, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [None, "", "name", "  name  "])
def test_the_default_line_is_the_name(raw: str | None) -> None:
    assert lines.parse_line_by(raw) == lines.BY_NAME


def test_a_tag_prefix_rule() -> None:
    rule = lines.parse_line_by("name+tag:track:")
    assert rule == lines.LineBy("tag", tag_prefix="track:")


def test_a_version_pattern_rule() -> None:
    rule = lines.parse_line_by(r"name+version:^(\d+)\.")
    assert rule.mode == "version"
    assert rule.version_pattern is not None
    assert rule.version_pattern.pattern == r"^(\d+)\."


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("version", "is not a line rule: use name, name+tag:track:, or name+version:"),
        ("name+tag:", "name+tag: needs a tag prefix"),
        (
            "name+version:^(\\d+",
            "the version pattern is no regex: missing ), unterminated subpattern",
        ),
        (
            "name+version:^\\d+\\.",
            "the version pattern has 0 capturing groups; it needs exactly one",
        ),
        ("name+version:^(\\d+)\\.(\\d+)", "has 2 capturing groups; it needs exactly one"),
        ("name+version", "is not a line rule"),
    ],
)
def test_a_bad_rule_is_a_config_error_that_says_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^DTRACK_WORKER_LINE_BY=") as caught:
        lines.parse_line_by(raw)
    assert message in str(caught.value)


def test_by_name_every_version_is_one_line_and_group_less_projects_have_group_empty() -> None:
    rule = lines.BY_NAME
    found = {lines.line_of(_project(v), rule, SOURCE) for v in ("1.0", "2.0", None)}
    assert found == {Line(SOURCE, "", "acme-app")}
    grouped = lines.line_of(_project(group="org.acme"), rule, SOURCE)
    assert grouped == Line(SOURCE, "org.acme", "acme-app")
    assert grouped.id != Line(SOURCE, "", "acme-app").id


def test_by_tag_the_first_matching_tag_in_sorted_order_is_the_track() -> None:
    rule = lines.parse_line_by("name+tag:track:")
    two_x = _project(tags=("team:web", "track:2.x"))
    both = _project(tags=("track:3.x", "track:2.x"))
    none = _project(tags=("team:web",))
    assert lines.line_of(two_x, rule, SOURCE).track == "track:2.x"
    assert lines.line_of(both, rule, SOURCE).track == "track:2.x"
    assert lines.line_of(none, rule, SOURCE) == Line(SOURCE, "", "acme-app")


def test_by_version_the_group_is_the_track() -> None:
    rule = lines.parse_line_by(r"name+version:^(\d+)\.")
    tracks = [
        lines.line_of(_project(v), rule, SOURCE).track
        for v in ("1.2.3", "1.9", "2.0", "main", None)
    ]
    assert tracks == ["1", "1", "2", None, None]


def test_lines_of_groups_versions() -> None:
    rule = lines.parse_line_by(r"name+version:^(\d+)\.")
    versions = [_project("1.0"), _project("1.1"), _project("2.0")]
    grouped = lines.lines_of(versions, rule, SOURCE)
    assert sorted(len(v) for v in grouped.values()) == [1, 2]


@given(st.text(), st.text(), st.text(), st.one_of(st.none(), st.text()))
def test_line_keys_never_collide_across_parts(
    source: str, group: str, name: str, track: str | None
) -> None:
    line = Line(source, group, name, track)
    shifted = Line(source + "/" + group, "", name, track)
    if group:
        assert line.key != shifted.key
    assert line.id == Line(source, group, name, track).id


def test_the_current_version_is_the_one_flagged_latest() -> None:
    latest = _project("1.0", is_latest=True, last_bom_import=1)
    newer = _project("2.0-rc", is_latest=False, last_bom_import=99)
    assert lines.current([newer, latest]) == latest


def test_without_a_flag_the_active_version_with_the_latest_import_is_current() -> None:
    old = _project("1.0", last_bom_import=1_700_000_000_000)
    new = _project("1.1", last_bom_import=1_800_000_000_000)
    gone = _project("1.2", active=False, last_bom_import=1_900_000_000_000)
    assert lines.current([gone, new, old]) == new


def test_an_inactive_version_flagged_latest_is_not_current() -> None:
    flagged = _project("9", is_latest=True, active=False, last_bom_import=5)
    live = _project("8", last_bom_import=1)
    assert lines.current([flagged, live]) == live


def test_no_active_version_means_no_current_version() -> None:
    assert lines.current([_project(active=False)]) is None
    assert lines.current([]) is None


@given(st.lists(st.tuples(st.booleans(), st.one_of(st.none(), st.integers(0, 5))), min_size=1))
def test_the_choice_does_not_depend_on_order(facts: list[tuple[bool, int | None]]) -> None:
    versions = [
        ProjectVersion(uuid=f"{i:08d}", name="a", is_latest=flag, last_bom_import=when)
        for i, (flag, when) in enumerate(facts)
    ]
    chosen = lines.current(versions)
    assert chosen == lines.current(list(reversed(versions)))
    assert chosen is not None
    if any(flag for flag, _ in facts):
        assert chosen.is_latest
