"""The packed snapshot's format (``state/packing.py``) outlives its compressor: rows are packed
with zlib-ng, and what it writes must be the raw DEFLATE the standard library's ``zlib`` reads to
the same bytes (a release, or a tool, without zlib-ng reads the store); rows the standard
library packed, as every release before wrote them, must unpack as they did."""

from __future__ import annotations

import random
import zlib
from datetime import UTC
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_state import REAL
from worker.adapters.state import packing
from worker.core import finding
from worker.core.tracking import snapshot

SHOTS = [(row["matrix"], snapshot(finding.parts(row, UTC))) for row in REAL["findings"]]

_text = st.text(max_size=300)


def _long(seed: int, size: int) -> str:  # past hypothesis' own size limit
    return "".join(random.Random(seed).choices("abcdef0123456789 -:/.", k=size))


# a real snapshot with some of its values replaced: texts, numbers, nothing, and now and then
# one long enough (past DEFLATE's 32 KiB window) to take several blocks
_value = st.one_of(
    _text,
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(_text, max_size=5),
    st.builds(_long, st.integers(0, 2**32), st.integers(40_000, 70_000)),
)
_changes = st.dictionaries(st.sampled_from(["component", "vulnerability", "analysis"]), _value)


@st.composite
def keyed_snapshots(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    key, shot = draw(st.sampled_from(SHOTS))
    changed = dict(shot)
    for part, value in draw(_changes).items():
        changed[part] = dict(changed[part]) | {draw(st.sampled_from(sorted(shot[part]))): value}
    # the key is part of the dictionary: any text a finding key may hold
    return draw(st.one_of(st.just(key), st.text(min_size=1, max_size=200))), changed


def _stdlib_inflated(key: str, packed: bytes) -> bytes:
    inflate = zlib.decompressobj(-15, packing._DICTIONARY + key.encode())
    text = inflate.decompress(packed[1:]) + inflate.flush()
    assert inflate.eof  # one complete stream, nothing after it
    assert inflate.unused_data == b""
    return text


def _stdlib_packed(key: str, shot: dict[str, Any], level: int) -> bytes:
    deflate = zlib.compressobj(
        level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, packing._DICTIONARY + key.encode()
    )
    return bytes((packing.FORMAT_DEFLATE,)) + deflate.compress(orjson.dumps(shot)) + deflate.flush()


def test_the_real_snapshots_packed_read_with_the_standard_library_to_the_same_bytes() -> None:
    for key, shot in SHOTS:
        packed = packing.pack(key, shot)
        assert packed[0] == packing.FORMAT_DEFLATE
        assert _stdlib_inflated(key, packed) == orjson.dumps(shot)
        assert packing.unpack(key, packed) == shot


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keyed_snapshots())
def test_any_snapshot_packed_reads_with_the_standard_library_to_the_same_bytes(
    keyed: tuple[str, dict[str, Any]],
) -> None:
    key, shot = keyed
    packed = packing.pack(key, shot)
    assert _stdlib_inflated(key, packed) == orjson.dumps(shot)
    assert packing.unpack(key, packed) == shot


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keyed_snapshots(), st.integers(1, 9))
def test_a_row_the_standard_library_packed_unpacks_as_it_was(
    keyed: tuple[str, dict[str, Any]], level: int
) -> None:
    # releases before packed with the standard library's zlib, at 6 and then at 1
    key, shot = keyed
    assert packing.unpack(key, _stdlib_packed(key, shot, level)) == shot


def test_the_rows_older_releases_wrote_unpack() -> None:
    for key, shot in SHOTS:
        for level in (6, 1):
            assert packing.unpack(key, _stdlib_packed(key, shot, level)) == shot
