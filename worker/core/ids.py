"""UUID text made fast: deterministic UUIDv5 ids (one SHA-1 and a string format) and v4 ids
from random bits the caller draws. Pure.

``uuid.uuid5`` builds two UUID objects per call; on the receiver's and the workers' hot paths
that costs more than the hash.
"""

from __future__ import annotations

import hashlib
import uuid

_VARIANT = {digit: format((int(digit, 16) & 0x3) | 0x8, "x") for digit in "0123456789abcdef"}


def _format(h: str) -> str:
    # the first 16 bytes, with version nibble 5 and the RFC 4122 variant bits
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def uuid4_text(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))`` for 128 random bits, without the UUID object."""
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def uuid5(namespace: uuid.UUID, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))``, faster."""
    digest = hashlib.sha1(namespace.bytes + name.encode(), usedforsecurity=False)
    return _format(digest.hexdigest())


class Uuid5Prefix:
    """``uuid5(namespace, prefix + name)`` for many names sharing a prefix: hashed once."""

    __slots__ = ("_digest",)

    def __init__(self, namespace: uuid.UUID, prefix: str) -> None:
        self._digest = hashlib.sha1(namespace.bytes + prefix.encode(), usedforsecurity=False)

    def __call__(self, name: str) -> str:
        digest = self._digest.copy()
        digest.update(name.encode())
        h = digest.hexdigest()  # _format, inlined: this runs once per finding
        return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
