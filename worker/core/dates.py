"""DT's dates as ISO 8601 UTC text, the way events carry them. Pure.

DT 4.x writes ``2026-02-04 22:16:00.813`` in the server's zone, DT 5 writes ``…Z``, Jackson
endpoints write epoch milliseconds. The common shapes are converted by slicing: this runs for
every date of every finding.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo


def instant(value: str | float | None, zone: tzinfo = UTC) -> str | None:
    """A DT date as ISO 8601 UTC (``…T…Z``); zone-less DT 4.x dates are read in ``zone``.

    Milliseconds are written when they carry the whole fraction, else microseconds (nanoseconds
    are cut). None when there is no date, or when the text names a day that does not exist.
    """
    if value is None:
        return None
    if zone is UTC and type(value) is str:
        # DT 4.x's usual "2026-02-04 22:16:00.813" (the contract checked the digits; days
        # after the 28th go the slow way, which knows the calendar)
        if len(value) == 23 and value[19] == "." and value[22] != "Z" and value[8:10] <= "28":
            return f"{value[:10]}T{value[11:]}Z"
        quick = _utc_text(value)
        if quick is not None:
            return quick
    return _instant(value, zone)


def _utc_text(value: str) -> str | None:
    """The common shapes (``2026-02-04 22:16:00.813``, ``…T…Z``) by slicing, or None.

    Only for text the FPF contract accepted, read as UTC; days after the 28th go the slow way,
    which knows the calendar.
    """
    if len(value) < 19 or value[16] != ":" or value[8:10] > "28":
        return None
    rest = value[19:].removesuffix("Z")
    if not rest:
        fraction = "000"
    elif rest[0] == "." and rest[1:].isdigit():
        micro = rest[1:7].ljust(6, "0")
        fraction = micro[:3] if micro[3:] == "000" else micro
    else:
        return None
    return f"{value[:10]}T{value[11:19]}.{fraction}Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _instant(value: str | float, zone: tzinfo) -> str | None:
    try:
        if not isinstance(value, str):  # epoch ms; JSON Schema's integer admits 5.0 as well
            moment = _EPOCH + timedelta(milliseconds=value)
        else:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    spec = "milliseconds" if moment.microsecond % 1000 == 0 else "microseconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def epoch(moment: str) -> float:
    """An instant as ``instant`` writes it (``…T…Z``), in epoch seconds."""
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()
