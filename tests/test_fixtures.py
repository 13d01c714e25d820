"""The suite is self-contained: its DT fixtures are in tests/fixtures with their origins and
licences, and nothing (test, benchmark, script or document) points outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, GUARDED, REPO

MANIFEST = (FIXTURES / "MANIFEST.md").read_text()
# DefectDojo's (BSD-3-Clause); Dependency-Track's and hyades' (Apache-2.0)
PREFIXES = ("defectdojo__", "dependency-track-docs-", "v4__", "v5__", "v5pre__")
# the folder the team's own machines keep beside their clones, which a user's clone has not
TEAM_FOLDER = "shared"
# a path built from the repository's parent, or one into the team's folder
OUTSIDE = re.compile(
    rf"\.\./{TEAM_FOLDER}\b|\b{TEAM_FOLDER}/fixtures\b|REPO\.parent\s*/|parent\.parent\.parent"
)


# DT's exports and notifications, which MANIFEST.md describes; the other folders (purl-spec's
# test data, golden outputs of our own) carry their own notes (test below)
DT_FOLDERS = ("fpf", "notifications")
NOTES = ("README.md", "NOTICE.md")


def _data_files() -> list[Path]:
    return sorted(
        path for folder in DT_FOLDERS for path in (FIXTURES / folder).rglob("*") if path.is_file()
    )


def test_every_other_fixture_folder_says_where_its_files_come_from():
    others = [
        path
        for path in FIXTURES.iterdir()
        if path.is_dir() and path.name not in (*DT_FOLDERS, "LICENSES", "__pycache__")
    ]
    assert others, "the purl and diff folders are expected here"
    for folder in others:
        assert any((folder / note).is_file() for note in NOTES), f"{folder} has no {NOTES}"


def test_the_manifest_names_every_fixture_file_and_no_other():
    files = _data_files()
    assert len(files) >= 61
    named = set(re.findall(r"[\w.-]+\.json", MANIFEST))
    on_disk = {path.name for path in files}
    assert on_disk - named == set(), "fixtures without origin and licence in MANIFEST.md"
    # the manifest names origin paths too (many_findings.json); our files carry a prefix
    ours = {name for name in named if name.startswith(PREFIXES)}
    assert ours - on_disk == set(), "MANIFEST.md names files that are not here"
    assert len(on_disk) == len(files), "two fixtures share a name: the manifest cannot tell"


def test_every_licence_the_manifest_names_travels_with_the_files():
    for licence in re.findall(r"\]\((LICENSES/[\w.-]+)\)", MANIFEST):
        assert (FIXTURES / licence).is_file(), licence
    assert "Apache License" in (FIXTURES / "LICENSES" / "Apache-2.0.txt").read_text()
    bsd = (FIXTURES / "LICENSES" / "BSD-3-Clause-DefectDojo.txt").read_text()
    assert "Copyright (c) 2015-2023 DefectDojo, Inc." in bsd
    # every file's origin repository is one of the three whose licence is here
    for path in _data_files():
        assert path.name.startswith(PREFIXES), path


def _own_text_files() -> list[Path]:
    folders = ("tests", "bench", "scripts", "docs", ".ci", "deploy")
    files = [REPO / "README.md", REPO / "pyproject.toml"]
    for folder in folders:
        files += [
            path
            for path in (REPO / folder).rglob("*")
            if path.is_file()
            and "fixtures" not in path.relative_to(REPO).parts
            and "__pycache__" not in path.parts
            and path.suffix in ("", ".py", ".md", ".sh", ".toml", ".yaml", ".yml", ".txt")
        ]
    # the fixtures' own notes too (their data files quote DT's texts, not our paths)
    files += list(FIXTURES.rglob("*.md"))
    return [path for path in files if path != Path(__file__)]


def test_nothing_in_the_repository_points_outside_it():
    """A fresh clone has nothing beside it: no path may lead out of it."""
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in _own_text_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == []


@pytest.mark.skipif(not GUARDED, reason="a clone at / or right in the temporary folder")
def test_a_test_that_opens_a_file_beside_the_repository_fails_loudly():
    beside = REPO.parent / "a-folder-beside-the-clone" / "MANIFEST.md"  # any name, there or not
    with pytest.raises(PermissionError, match="outside the repository"):
        beside.read_bytes()
    hidden = REPO.parent / ".not-a-fixture"  # a home's .cache and the like stay readable
    with pytest.raises(FileNotFoundError):
        hidden.read_bytes()
