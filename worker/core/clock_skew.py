"""Which export timestamps to trust: none further ahead of this host's clock than the
tolerance (DTRACK_WORKER_CLOCK_SKEW_TOLERANCE). Pure: the caller passes the host's time.

A project's exports are ordered by their ``meta.timestamp`` (the stale rule). One stamped years
ahead by a DT with a wrong clock would make every later export look older, so such a stamp is
replaced by the time the worker received the export (or just after the stamp stored, when
that one is ahead of the host within the tolerance), and a stored one is ignored.
"""

from __future__ import annotations

from worker.core.dates import epoch, instant


def trusted(stamp: str, now: float, tolerance: float) -> bool:
    """The stamp (as ``dates.instant`` writes it) is not beyond ``now + tolerance``."""
    return epoch(stamp) <= now + tolerance


def applied(stamp: str, now: float, tolerance: float, last: str | None = None) -> str:
    """The stamp to apply an export with: its own, or ``now`` when it is not trusted, but
    after ``last`` (the trusted stamp stored, which may be up to the tolerance ahead of
    ``now``): an untrusted stamp's order is unknowable, so it is never stale."""
    if trusted(stamp, now, tolerance):
        return stamp
    if last is not None and epoch(last) >= now:
        return received(epoch(last) + 0.001)
    return received(now)


def stored(stamp: str | None, now: float, tolerance: float) -> str | None:
    """A stored stamp to compare the next export with: None when it is not trusted (an older
    release stored it from an export stamped in the future)."""
    return stamp if stamp is not None and trusted(stamp, now, tolerance) else None


def received(now: float) -> str:
    """The host's time as an export stamp (UTC, milliseconds)."""
    stamp = instant(round(now * 1000))
    assert stamp is not None  # a number always makes a date
    return stamp
