"""The wheel carries the bundled schemas inside the package, where worker.schemas looks, and
the console's templates and static files beside its code; the sdist carries the tests with their
fixtures and licence texts."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from tests.conftest import FIXTURES, REPO
from worker.adapters.schemas import FILES


def test_the_wheel_ships_every_schema_and_the_type_marker(tmp_path: Path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("dtrack_worker-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"worker/schemas/{name}" for name in FILES.values()} <= names
    assert "worker/py.typed" in names
    for layer in ("core", "adapters", "service", "commands"):
        assert f"worker/{layer}/__init__.py" in names
    console = REPO / "worker" / "service" / "console"  # the console's templates and static files
    shipped = {str(path.relative_to(REPO)) for path in console.glob("[st]*/*")}
    assert len(shipped) >= 10
    assert shipped <= names
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert (
        "dtrack-worker = worker.commands.main:main"
        in zipfile.ZipFile(wheel).read(entry_points).decode()
    )


def test_the_sdist_ships_the_tests_with_their_fixtures_and_licence_texts(tmp_path: Path):
    """The sdist carries tests/: their third-party data goes with its origins and licences."""
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(tmp_path)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (sdist,) = tmp_path.glob("dtrack_worker-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    shipped = {name for name in names if name.startswith("tests/fixtures/")}
    in_repository = {str(path.relative_to(REPO)) for path in FIXTURES.rglob("*") if path.is_file()}
    assert shipped == in_repository
    assert {
        "tests/fixtures/MANIFEST.md",
        "tests/fixtures/LICENSES/Apache-2.0.txt",
        "tests/fixtures/LICENSES/BSD-3-Clause-DefectDojo.txt",
    } <= shipped
