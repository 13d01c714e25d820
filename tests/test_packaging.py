"""The wheel carries the bundled schemas inside the package, where worker.schemas looks, and
the console's templates and static files beside its code."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO
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
