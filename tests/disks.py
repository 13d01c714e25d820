"""Disks that really fill up or refuse writes, for the state store's tests.

A tmpfs of the test's own (``mount`` needs root, as on the machines that run this suite:
scripts/ensure-postgres installs and starts PostgreSQL the same way) filled by a file until the
kernel answers ENOSPC; a read-only bind mount of a directory (EROFS, which stops root too, where
``chmod`` would not); a PostgreSQL tablespace on such a tmpfs, for DiskFull from the server.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from tests.state_db import POSTGRES


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:  # a failure, never a skip: these tests need the real condition
        raise RuntimeError(
            f"mount {' '.join(args)} failed ({result.stderr.strip()}): the full-disk and "
            "read-only tests need root (CAP_SYS_ADMIN) to mount a tmpfs"
        )


def _umount(path: Path) -> None:
    subprocess.run(["umount", "--lazy", str(path)], capture_output=True, check=False)


class Disk:
    """A small filesystem of its own at ``path``; ``fill`` leaves it (almost) no room."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / "filler"

    def free(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Write a file until the kernel says ENOSPC (or only ``leave`` bytes are left)."""
        chunk = b"\0" * 65536
        with open(self._filler, "ab") as filler:
            while True:
                room = self.free() - leave
                if room <= 0:
                    return
                try:
                    filler.write(chunk[: min(len(chunk), room)])
                    filler.flush()
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    return

    def empty(self) -> None:
        """Room again: the filler goes."""
        self._filler.unlink(missing_ok=True)


@contextlib.contextmanager
def tiny_disk(size: str = "4m", owner: str | None = None) -> Iterator[Disk]:
    """A tmpfs of ``size`` (owned by ``owner``), unmounted afterwards. In the temporary
    directory itself, not in pytest's (mode 0700): PostgreSQL's server reaches a tablespace."""
    path = Path(tempfile.mkdtemp(prefix="dtw-disk-"))
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    try:
        if owner is not None:
            shutil.chown(path, owner, owner)
        yield Disk(path)
    finally:
        _umount(path)
        path.rmdir()


@contextlib.contextmanager
def read_only_view(directory: Path, view: Path) -> Iterator[Path]:
    """``directory`` seen again at ``view``, read-only (EROFS for every process, root too)."""
    view.mkdir()
    _mount("--bind", str(directory), str(view))
    try:
        _mount("-o", "remount,bind,ro", str(view))
        yield view
    finally:
        _umount(view)


@contextlib.contextmanager
def database_on(disk: Disk) -> Iterator[str]:
    """A PostgreSQL database of its own whose tables (temporary ones too) live on ``disk``."""
    name = f"dtw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE TABLESPACE {name} LOCATION '{disk.path}'")
        admin.execute(f'CREATE DATABASE "{name}" TABLESPACE {name}')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        disk.empty()
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f"DROP TABLESPACE IF EXISTS {name}")
