"""An export read from a mapped file (worker.adapters.spool): the same events as from its bytes,
the same report when it is invalid, and the pages of what was read given back."""

from __future__ import annotations

import mmap
import os
import resource
import tempfile
import threading
from pathlib import Path

import orjson
import pytest

from bench.synthetic import export
from tests.conftest import FPF, fixture_files
from tests.fake_dt import API_KEY, FakeDt, Fault
from tests.harness import REAL, _project
from worker.adapters.dtrack import DtClient
from worker.adapters.schemas import Contracts
from worker.adapters.spool import Spool, SpoolWriter
from worker.core import fpf
from worker.core.config import Settings
from worker.core.errors import DtUnavailable, InvalidExport
from worker.service import checks

EXPORTS = fixture_files(FPF / "real") + fixture_files(FPF / "edge")


def _events(made: fpf.Export) -> list[tuple[str, str, bytes]]:
    return [(event.id, event.routing_key, event.body) for event in made.events()]


def _outcome(raw: bytes | mmap.mmap, contracts: Contracts, **options: object) -> object:
    """The events, or the refusal with its problems."""
    try:
        return _events(fpf.process(raw, contracts.fpf, **options))  # type: ignore[arg-type]
    except InvalidExport as exc:
        return (exc.args[0], exc.problems)


@pytest.mark.parametrize("path", EXPORTS, ids=lambda p: p.name)
def test_a_mapped_export_released_run_by_run_gives_what_its_bytes_give(path, contracts):
    expected = _outcome(path.read_bytes(), contracts, run_bytes=700)
    with Spool.of_path(path) as text:
        assert _outcome(text.raw, contracts, run_bytes=700, release=text.release) == expected


def test_an_export_invalid_at_its_end_is_reported_whole_after_its_runs_were_released(
    tmp_path: Path, contracts
):
    document = export(400, seed=3)
    document["findings"][-1]["vulnerability"]["severity"] = 7  # the last run fails
    raw = orjson.dumps(document)
    path = tmp_path / "late-error.fpf"
    path.write_bytes(raw)
    expected = _outcome(raw, contracts, run_bytes=4096)
    assert isinstance(expected, tuple)  # refused, with the whole document's report
    assert any("/findings/399/vulnerability/severity" in str(p) for p in expected[1])
    released: list[int] = []
    with Spool.of_path(path) as text:

        def release(upto: int) -> None:
            released.append(upto)
            text.release(upto)

        assert _outcome(text.raw, contracts, run_bytes=4096, release=release) == expected
    assert len(released) > 10
    assert released[-2] > len(raw) // 2  # most of it had been given back before the failure


def _rss_file() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("RssFile:")[1].split()[0]) * 1024


def test_released_pages_leave_the_process_and_come_back_when_read_again(tmp_path: Path):
    size = 32 << 20
    path = tmp_path / "big"
    path.write_bytes(os.urandom(1 << 20) * 32)
    with Spool.of_path(path) as text:
        assert isinstance(text.raw, mmap.mmap)
        before = _rss_file()
        with memoryview(text.raw) as view:
            first = bytes(view[: 1 << 20])
            touched = sum(view[offset] for offset in range(0, size, mmap.PAGESIZE))
        assert _rss_file() - before > size * 0.9  # every page in the process
        text.release(size - 100)  # up to the last whole page
        assert _rss_file() - before < size * 0.1
        with memoryview(text.raw) as view:  # a second pass reads the same text
            assert bytes(view[: 1 << 20]) == first
            assert sum(view[offset] for offset in range(0, size, mmap.PAGESIZE)) == touched
        text.release(1 << 20)  # the second pass gives back again, from its start
        assert _rss_file() - before < size


def test_a_pipe_is_spooled_and_an_empty_file_is_empty_bytes(tmp_path: Path):
    body = REAL
    read_end, write_end = os.pipe()

    def feed() -> None:
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(body)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        with Spool.of_path(f"/dev/fd/{read_end}") as text:  # what <(curl ...) names
            assert isinstance(text.raw, mmap.mmap)
            assert text.raw[:] == body
    finally:
        feeder.join()
        os.close(read_end)
    (tmp_path / "empty").write_bytes(b"")
    with Spool.of_path(tmp_path / "empty") as text:
        assert text.raw == b""
        text.release(10)  # nothing to give back, no error


def test_without_a_writable_temporary_directory_the_text_stays_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    writer = SpoolWriter()
    writer.write(b'{"a": ')
    writer.write(b"1}")
    with writer.finish() as text:
        assert text.raw == b'{"a": 1}'
        text.release(8)


def test_closing_while_a_reader_still_holds_the_text_leaves_the_mapping_to_that_reader(
    tmp_path: Path,
):
    (tmp_path / "export").write_bytes(REAL)
    text = Spool.of_path(tmp_path / "export")
    assert isinstance(text.raw, mmap.mmap)
    view = memoryview(text.raw)  # what a cancelled job's worker thread may still hold
    text.close()  # on cancellation: no BufferError in place of CancelledError
    assert bytes(view[:1]) == b"{"
    view.release()


def test_a_spool_that_cannot_grow_brings_what_it_holds_back_to_memory():
    """A full disk, made real with the process's file size limit (EFBIG, as ENOSPC would)."""
    chunks = [bytes([n]) * 40_000 for n in range(3)]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    writer = SpoolWriter()
    resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, hard))
    try:
        for chunk in chunks:  # the second write is cut short by the limit
            writer.write(chunk)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    with writer.finish() as text:
        assert type(text.raw) is bytes  # in memory now
        assert text.raw == b"".join(chunks)  # nothing lost, nothing doubled


def test_the_spool_check_says_where_exports_go_and_when_they_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    settings = Settings.from_env(
        {"DTRACK_WORKER_DT_CONCURRENCY": "3", "DTRACK_WORKER_MAX_EXPORT": "1GiB"}
    )
    found = checks.spool(None, settings.dt)
    assert found.ok
    assert found.detail.startswith(f"exports spooled in {tempfile.gettempdir()} (")
    assert found.detail.endswith(
        "; at most 3.0 GiB at once: DTRACK_WORKER_DT_CONCURRENCY x DTRACK_WORKER_MAX_EXPORT)"
    )
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))  # no candidate at all
    failed = checks.spool(None, settings.dt)
    assert not failed.ok
    assert "no temporary file can be made" in failed.detail
    assert "each export is held in memory whole" in failed.detail
    assert "TMPDIR" in failed.fix


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def test_an_export_is_fetched_into_a_mapped_file_that_closing_removes(dt: FakeDt):
    project = _project()
    dt.exports[project] = REAL
    settings = Settings.from_env(
        {
            "DTRACK_WORKER_DT_URL": dt.url,
            "DTRACK_WORKER_DT_API_KEY": API_KEY,
            "DTRACK_WORKER_DT_HTTP_ATTEMPTS": "1",
        }
    )
    async with DtClient.open(settings.dt) as client:
        with await client.fetch_export(project):  # the session's connection, opened once
            pass
        before = _open_fds()
        with await client.fetch_export(project) as text:
            assert isinstance(text.raw, mmap.mmap)
            assert orjson.loads(text.raw[:])["project"]["uuid"] == project  # DT's file, whole
            assert _open_fds() - before  # the spool's file
        assert _open_fds() <= before
        dt.always[project] = Fault(truncate=True)  # half the body, then the connection closes
        with pytest.raises(DtUnavailable):
            await client.fetch_export(project)
        assert _open_fds() <= before  # the half-written spool was closed too
