"""Which export timestamps to trust: none further ahead of this host's clock than the
tolerance (DTRACK_WORKER_CLOCK_SKEW_TOLERANCE). Pure: the caller passes the host's time.

A project's exports are ordered by their ``meta.timestamp`` (the stale rule). One stamped years
ahead by a DT with a wrong clock would make every later export look older, so such a stamp is
replaced by the time the worker received the export, and a stored one is ignored.
"""

from __future__ import annotations

from worker.core.dates import epoch, instant


def trusted(stamp: str, now: float, tolerance: float) -> bool:
    """The stamp (as ``dates.instant`` writes it) is not beyond ``now + tolerance``."""
    return epoch(stamp) <= now + tolerance


def applied(stamp: str, now: float, tolerance: float) -> str:
    """The stamp to apply an export with: its own, or ``now`` when it is not trusted."""
    return stamp if trusted(stamp, now, tolerance) else received(now)


def stored(stamp: str | None, now: float, tolerance: float) -> str | None:
    """A stored stamp to compare the next export with: None when it is not trusted (an older
    release stored it from an export stamped in the future)."""
    return stamp if stamp is not None and trusted(stamp, now, tolerance) else None


def received(now: float) -> str:
    """The host's time as an export stamp (UTC, milliseconds)."""
    stamp = instant(round(now * 1000))
    assert stamp is not None  # a number always makes a date
    return stamp
