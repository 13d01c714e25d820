"""Cut an FPF export's findings array into runs of findings that parse on their own. Pure.

Parsing a large export in one ``orjson.loads`` holds the bytes, orjson's whole document tree and
every Python object at once (about 4.7 times the export's size), and touching that much fresh
memory is slow. Parsed in runs of about ``RUN_BYTES``, the same memory is used again and again.

The cuts are found by pattern, not by a full scan, so they are only guesses until checked:
each run must parse as a JSON array on its own, and the document with the array replaced by a
marker string must parse with that marker as its top-level ``findings``. A guess inside a string
leaves some run with an unterminated string; a guess at the wrong depth leaves some run
unbalanced. So when every piece parses, the pieces are exactly the document's; when one does
not, the caller parses the whole document instead (which also names the real syntax error).
"""

from __future__ import annotations

import dataclasses
import json
import mmap
import re
from collections.abc import Callable
from typing import Any

import orjson

# Measured on a 21 MB export: runs of 100-256 KiB parse in a third of the time of one
# orjson.loads of the whole, runs of 1 MiB in half that time. The whole pipeline (parse,
# validate, make the events) gains a little more from runs whose objects stay in the core's
# cache while their events are made: 128 KiB against 256 KiB, 4-5% at 10k findings, 10-15%
# at 50k (best of 25 and of 7, taken in turns); 64 KiB no more than 128.
RUN_BYTES = 128 * 1024

_FINDINGS = re.compile(rb'"findings"\s*:\s*\[')
# between two findings: the end of one object, a comma, and an object opening with a finding's key
_BETWEEN = re.compile(
    rb'\}\s*,\s*(?=\{\s*"(?:component|vulnerability|analysis|attribution|matrix)")'
)
_MARKER = "\x00findings"  # no real export has it: DT writes findings as an array

# An export's text: bytes, or a file mapped into memory (``worker.adapters.spool``), which
# gives back the pages of what was read.
Raw = bytes | mmap.mmap
# Told offsets up to which the text has been read (searched or parsed; not yet validated):
# a mapped file drops those pages, and reads them again should they be needed after all.
Release = Callable[[int], None]


def keep(upto: int) -> None:
    """The Release of text held in memory: nothing to give back."""


@dataclasses.dataclass(frozen=True, slots=True)
class Pieces:
    """An export seen as its head (everything but the findings) and runs of findings."""

    head: dict[str, Any]  # the parsed document, its findings left out
    runs: tuple[tuple[int, int], ...]  # byte ranges of the array's text, between separators
    raw: Raw = dataclasses.field(repr=False)
    duplicated_keys: tuple[str, ...] = ()  # keys named twice in one object of the head

    def findings(self, run: tuple[int, int]) -> list[Any]:
        """One run's findings; raises ``orjson.JSONDecodeError`` when it is not one."""
        start, end = run
        parsed: list[Any] = orjson.loads(b"".join((b"[", memoryview(self.raw)[start:end], b"]")))
        return parsed


def split(raw: Raw, run_bytes: int = RUN_BYTES, release: Release = keep) -> Pieces | None:
    """The export cut into runs, or None when its findings array cannot be found this way.

    ``release`` is told of each cut: the pages a mapped file brings in around each search
    (whole folios of up to 2 MiB) would otherwise add up to the whole text before its first
    run is read.
    """
    key = _FINDINGS.search(raw)
    if key is None:
        return None
    runs: list[tuple[int, int]] = []
    start = key.end()
    while (cut := _BETWEEN.search(raw, start + run_bytes)) is not None:
        runs.append((start, cut.start() + 1))
        start = cut.end()
        release(start)
    tail_cuts = list(_BETWEEN.finditer(raw, start))  # within the last run: a few hundred at most
    if tail_cuts:  # the last finding alone, so finding the array's end reads little
        runs.append((start, tail_cuts[-1].start() + 1))
        start = tail_cuts[-1].end()
    close = _closing_bracket(raw, start)
    if close is None:
        return None
    runs.append((start, close))
    text = b"".join((raw[: key.end() - 1], orjson.dumps(_MARKER), raw[close + 1 :]))
    try:
        head = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(head) is not dict or head.get("findings") != _MARKER:
        return None
    del head["findings"]
    return Pieces(head, tuple(runs), raw, duplicated_keys(text))


def duplicated_keys(text: Raw) -> tuple[str, ...]:
    """Keys named twice in one object of a JSON text (orjson keeps the last without a word).

    Read with the standard library, which shows every pair: for a head (a few hundred bytes)
    it costs microseconds; for a whole export it is the slow path of odd documents only.
    """
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in items]
        if len(names) != len(set(names)):
            found.extend(sorted({name for name in names if names.count(name) > 1}))
        return dict(items)

    try:
        json.loads(text if type(text) is bytes else text[:], object_pairs_hook=pairs)
    except ValueError:  # not JSON: the caller's parse says so
        return ()
    return tuple(dict.fromkeys(found))


def _closing_bracket(raw: Raw, start: int) -> int | None:
    """Where the array that goes on at ``start`` closes: orjson reads past it and says where."""
    try:
        orjson.loads(b"".join((b"[", memoryview(raw)[start:])))
    except orjson.JSONDecodeError as exc:
        # the text was "[" + raw[start:]; exc.pos counts characters, raw is bytes (and when
        # that text is not UTF-8, doc is empty: no bracket is found, the whole parse says why)
        read = len(exc.doc[: exc.pos].encode()) - 1
        close = raw.rfind(b"]", start, start + read)
        return close if close >= 0 else None
    return None  # the text ended with the array: the export was no JSON object
