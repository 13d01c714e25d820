"""Shared test fixtures. The real DT data lives in ../shared/fixtures (see its MANIFEST.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker import schemas

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures"
FPF = FIXTURES / "fpf"
NOTIFICATIONS = FIXTURES / "notifications"

if not (FIXTURES / "MANIFEST.md").is_file():  # a missing fixture tree must fail, never skip
    raise RuntimeError(f"the shared DT fixtures are missing: expected them at {FIXTURES}")


def fixture_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.json"))
    assert files, f"no fixtures in {folder}"
    return files


@pytest.fixture(scope="session")
def contracts() -> schemas.Contracts:
    return schemas.load()
