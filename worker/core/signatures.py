"""Webhook signatures as DT 5.2 makes them: HMAC-SHA256 over the exact bytes sent. Pure.

DT (PR #7323; docs ``reference/notifications/publishers.md``, "Signature") sends
``X-Webhook-Signature: sha256=<lower-case hex>``, keyed with the UTF-8 bytes of the alert's
signing secret. Read here too: hex in any case, base64 (standard or URL-safe, padded or not),
each with or without the ``sha256=`` prefix, so a proxy or another sender that re-encodes it
still verifies. No timestamp is signed: DT sends none.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable

DT_HEADER = "X-Webhook-Signature"
_PREFIX = "sha256="
_SIZE = hashlib.sha256().digest_size
_HEX = frozenset("0123456789abcdefABCDEF")


def digest_of(value: str) -> bytes | None:
    """The 32 bytes a signature header carries; None when it carries no HMAC-SHA256."""
    text = value.strip()
    if text[: len(_PREFIX)].lower() == _PREFIX:
        text = text[len(_PREFIX) :]
    if len(text) == 2 * _SIZE and _HEX.issuperset(text):
        return bytes.fromhex(text)
    try:
        standard = text.replace("-", "+").replace("_", "/")
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == _SIZE else None


def verify(body: bytes, digest: bytes, keys: Iterable[bytes]) -> bool:
    """Whether ``digest`` is the HMAC-SHA256 of ``body`` under one of ``keys`` (each compared
    in constant time, all of them every time)."""
    matched = False
    for key in keys:
        expected = hmac.new(key, body, hashlib.sha256).digest()
        matched |= hmac.compare_digest(expected, digest)
    return matched
