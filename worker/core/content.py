"""Request bodies under a ``Content-Encoding``: decompressed here, within a size limit. Pure.

The receiver reads bodies as sent (aiohttp's own decompression answers in plain text and
cannot be limited), so every answer, for every encoding, is one of ours.
"""

from __future__ import annotations

import zlib

from worker.core.errors import PermanentError

# Content-Encoding -> zlib's wbits: gzip, zlib-wrapped deflate (what RFC 9110 means by it)
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
ACCEPTED = ("identity", *_WBITS)


class UnsupportedEncoding(PermanentError):
    """A Content-Encoding we do not take (br, zstd, ...): HTTP 415."""


class CorruptBody(PermanentError):
    """The body does not decompress under its Content-Encoding: HTTP 400."""


class BodyTooLarge(PermanentError):
    """The body, decompressed, is over the limit: HTTP 413."""


def encodings(header: str | None) -> tuple[str, ...]:
    """The codings of a Content-Encoding header, in the order they were applied."""
    if not header:
        return ()
    codings = tuple(part.strip().lower() for part in header.split(",") if part.strip())
    for coding in codings:
        if coding not in ACCEPTED:
            raise UnsupportedEncoding(
                f"Content-Encoding {coding!r} is not accepted: send the body as is (identity), "
                "gzip or deflate"
            )
    return codings


def decoded(raw: bytes, codings: tuple[str, ...], limit: int) -> bytes:
    """``raw`` with its codings undone, last applied first; at most ``limit`` bytes out."""
    for coding in reversed(codings):
        if coding == "identity":
            continue
        inflater = zlib.decompressobj(_WBITS[coding])
        try:
            out = inflater.decompress(raw, limit + 1)
            if len(out) > limit or inflater.unconsumed_tail:
                raise BodyTooLarge(f"the body is over {limit} bytes once decompressed")
            out += inflater.flush()
            if len(out) > limit:
                raise BodyTooLarge(f"the body is over {limit} bytes once decompressed")
        except zlib.error as exc:
            raise CorruptBody(f"the body is not valid {coding}: {exc}") from None
        if not inflater.eof:
            raise CorruptBody(f"the body is not valid {coding}: it ends before the stream does")
        raw = out
    if len(raw) > limit:
        raise BodyTooLarge(f"the body is over {limit} bytes")
    return raw
