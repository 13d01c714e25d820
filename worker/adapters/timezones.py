"""The DT server's time zone, by IANA name (reads the system's or tzdata's zone files)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, tzinfo

from worker.core.errors import ConfigError


def zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r} (DTRACK_WORKER_DT_TIMEZONE): use an IANA name such as "
            "UTC or Europe/Berlin"
        ) from exc
