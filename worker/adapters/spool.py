"""An export's text in a file mapped into memory, its pages given back as it is read.

Held as one bytes object, an export stays whole in the process until its job ends, beside
everything made from it (its serialized events are about 1.35 times its size). Written to an
unlinked temporary file and mapped instead (a file named on the command line is mapped as it
is), the pages of the runs already parsed are dropped with ``madvise(MADV_DONTNEED)``. They are
clean file pages: should the whole document be needed after all (an invalid export's report,
a second pass), the kernel reads them again from its cache. The process then peaks near the
size of what it makes, not of the text plus what it makes.

Temporary files go where ``tempfile`` puts them (``$TMPDIR``, else ``/tmp``). When no file can
be made or written there, the text is kept in memory, whole until the job ends: never lost.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, BinaryIO, Self

from worker.core.split import Raw

CHUNK = 1 << 20  # bytes read from a stream at a time


class Spool:
    """An export's text (``raw``: bytes or a mapped file) and ``release``, its Release."""

    __slots__ = ("_file", "_map", "_released", "raw")

    def __init__(self, raw: Raw, file: IO[bytes] | None = None) -> None:
        self.raw = raw
        self._map = raw if isinstance(raw, mmap.mmap) else None
        self._file = file
        self._released = 0

    @classmethod
    def of_path(cls, path: str | os.PathLike[str]) -> Spool:
        """A regular file's text, mapped in place; a pipe's (``<(curl ...)``), spooled."""
        with Path(path).open("rb") as file:
            status = os.fstat(file.fileno())
            if not stat.S_ISREG(status.st_mode):
                return cls.of_stream(file)
            if status.st_size == 0:
                return cls(b"")
            return cls(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ))

    @classmethod
    def of_stream(cls, stream: BinaryIO) -> Spool:
        """Everything a stream (standard input) gives, spooled."""
        writer = SpoolWriter()
        try:
            while chunk := stream.read(CHUNK):
                writer.write(chunk)
        except BaseException:
            writer.discard()
            raise
        return writer.finish()

    def __len__(self) -> int:
        return len(self.raw)

    def release(self, upto: int) -> None:
        """The text before ``upto`` was read: its whole pages leave the process."""
        if self._map is None:
            return
        end = upto - upto % mmap.PAGESIZE
        if end < self._released:  # read again from the start (a second pass)
            self._released = 0
        if end > self._released:
            self._map.madvise(mmap.MADV_DONTNEED, self._released, end - self._released)
            self._released = end

    def close(self) -> None:
        if self._map is not None and not self._map.closed:
            # a thread the job stopped waiting for may still read it: then the mapping goes
            # when that reader lets go of it
            with contextlib.suppress(BufferError):
                self._map.close()
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def probe() -> tuple[str, int]:
    """Where exports are spooled, and the bytes free there; OSError when no file can be made."""
    directory = tempfile.gettempdir()  # FileNotFoundError when no candidate is usable
    with tempfile.TemporaryFile(buffering=0) as file:
        file.write(b"\0")
    stats = os.statvfs(directory)
    return directory, stats.f_bavail * stats.f_frsize


def _in_memory(exc: OSError) -> None:
    # structlog (some 60 ms to import) only when it is needed: normalize and validate log nothing
    import structlog

    log = structlog.get_logger(__name__)
    log.warning("spool.in_memory", directory=tempfile.gettempdir(), error=str(exc))


class SpoolWriter:
    """Chunks in (a response body, a stream), a Spool out."""

    __slots__ = ("_chunks", "_file", "size")

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._chunks: list[bytes] | None = None  # only when no temporary file could be made
        self.size = 0
        try:
            # unbuffered: what ``size`` counts is in the file, should a write fail
            self._file = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 - Spool closes it
        except OSError as exc:
            _in_memory(exc)
            self._chunks = []

    def write(self, chunk: bytes) -> None:
        if self._file is not None:
            try:
                view = memoryview(chunk)
                while view:  # a raw write may take less than it was given
                    view = view[self._file.write(view) or 0 :]
            except OSError as exc:  # the disk is full: what was written comes back to memory
                _in_memory(exc)
                self._to_memory()
        if self._chunks is not None:
            self._chunks.append(chunk)
        self.size += len(chunk)

    def _to_memory(self) -> None:
        assert self._file is not None
        file, self._file = self._file, None
        with file:
            file.seek(0)
            self._chunks = [file.read(self.size)]

    def finish(self) -> Spool:
        if self._chunks is not None:
            return Spool(b"".join(self._chunks))
        assert self._file is not None
        if self.size == 0:
            self._file.close()
            return Spool(b"")
        try:
            mapped = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except BaseException:
            self._file.close()
            raise
        return Spool(mapped, self._file)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
