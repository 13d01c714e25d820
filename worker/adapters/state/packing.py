"""A finding's last known state as the store keeps it, compact (see docs/capacity.md).

The snapshot (the last known finding, long texts left out: ``tracking.snapshot``) is its JSON
compressed with raw DEFLATE and a preset dictionary: the field names and common values every
snapshot repeats, then the finding's own key (the component and vulnerability uuids the
snapshot repeats are in it). On bench/synthetic's findings: 970 bytes of JSON in 251. The first
byte names the format, so that another can follow without rewriting the store.

The DEFLATE is zlib-ng's (the ``zlib-ng`` package), not the standard library's: the same format,
which the standard library's ``zlib`` reads to the same bytes, in about 40% of the CPU (a first
sync packs every finding before its commit). Rows the standard library packed read as they did.

The tracked fields are kept only where the snapshot does not give them (``tracking.
tracked_from``): never for rows this release writes for an open finding; rows an older release
wrote keep theirs as they were, so a `changed` event reports the old values it always did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import orjson
from zlib_ng import zlib_ng

from worker.core.tracking import tracked_from

FORMAT_DEFLATE = 1  # raw DEFLATE, _DICTIONARY then the finding's key as its preset dictionary
_WINDOW = -15  # raw DEFLATE (no zlib header: the format byte says what it is), 32 KiB window
# Level 1: a first sync packs every finding before its commit. zlib-ng's level 1 (its "quick"
# deflate) takes 5.6 us per snapshot on bench/synthetic where the standard library's level 1
# took 13.5 us (its 6: 15 us), for 251 bytes instead of 233 (211 at 6); zlib-ng's level 2 is
# 218 bytes at the standard library's 13.5 us, isal's level 1 228 bytes at 7.7 us. Any level
# and either library is the same format: rows packed by earlier releases (the standard
# library, at 6 then at 1) read as they did.
_LEVEL = 1

# Never change these bytes: every row packed with them must still read. A better dictionary is
# a new format number (and unpack keeps this one).
_DICTIONARY = orjson.dumps(
    {
        "component": {
            "uuid": None, "name": None, "group": "org.", "version": "1.0.0",
            "purl": "pkg:maven/pkg:npm/pkg:pypi/pkg:golang/", "cpe": "cpe:2.3:a:",
            "latest_version": None, "scope": "REQUIRED",
        },
        "vulnerability": {
            "uuid": None, "source": "NVD", "id": "CVE-20", "aliases": ["GHSA-"], "title": None,
            "severity": "medium", "severity_rank": 2,
            "cvss": {
                "v2": {"score": None, "vector": "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
                "v3": {"score": None, "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
                "v4": {
                    "score": None,
                    "vector": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                },
            },
            "owasp_rr": {
                "likelihood": None, "technical_impact": None, "business_impact": None,
                "vector": None,
            },
            "epss": {"score": None, "percentile": None},
            "cwes": [], "published": "T00:00:00.000Z", "kev": None,
        },
        "analysis": {"state": None, "suppressed": False, "detail": None},
        "attribution": {
            "analyzer": "INTERNAL_ANALYZER", "attributed_on": "T00:00:00.000Z",
            "alternate_identifier": None, "reference_url": None,
        },
    }
)  # fmt: skip


# what zlib-ng raises on a damaged stream (its stub types it as an instance, not the class)
_INFLATE_ERROR = cast("type[Exception]", zlib_ng.error)


class Unreadable(ValueError):
    """A packed snapshot in a format this release does not know, or damaged."""


def pack(key: str, snapshot: Mapping[str, Any]) -> bytes:
    """The snapshot of the finding ``key``, packed."""
    deflate = zlib_ng.compressobj(
        _LEVEL, zlib_ng.DEFLATED, _WINDOW, 8, zlib_ng.Z_DEFAULT_STRATEGY, _DICTIONARY + key.encode()
    )
    packed = deflate.compress(orjson.dumps(snapshot))
    return bytes((FORMAT_DEFLATE,)) + packed + deflate.flush()


def unpack(key: str, packed: bytes) -> dict[str, Any]:
    """The snapshot ``pack(key, ...)`` packed."""
    if not packed or packed[0] != FORMAT_DEFLATE:
        found = packed[0] if packed else "nothing"
        raise Unreadable(f"finding {key}: stored state of format {found}, unknown to this release")
    try:
        # zlib-ng inflates too: 7-10% less CPU than the standard library on either's rows
        inflate = zlib_ng.decompressobj(_WINDOW, _DICTIONARY + key.encode())
        text = inflate.decompress(memoryview(packed)[1:]) + inflate.flush()
        snapshot: dict[str, Any] = orjson.loads(text)
    except (_INFLATE_ERROR, orjson.JSONDecodeError) as exc:
        raise Unreadable(f"finding {key}: stored state damaged ({exc})") from exc
    return snapshot


def tracked_column(tracked: Mapping[str, Any], snapshot: Mapping[str, Any]) -> str:
    """The tracked fields as stored: empty when the snapshot gives them, the same to the byte
    (a score 5 and 5.0 are equal numbers, not the same JSON); else their JSON."""
    text = orjson.dumps(tracked)
    try:
        derived = orjson.dumps(tracked_from(snapshot))
    except (KeyError, TypeError):  # a snapshot without some field: keep them explicit
        derived = b""
    return "" if derived == text else text.decode()


def tracked_of(column: str, snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """``tracked_column``'s reverse."""
    if column:
        fields: dict[str, Any] = orjson.loads(column)
        return fields
    return tracked_from(snapshot)
