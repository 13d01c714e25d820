"""Project lines: all versions of a DT project that users call "the project". Pure.

A line is the DT instance, the project's group and name, and an optional track (``LineBy``):
every version (every DT project) of it shares one change stream, which follows the line's
*current* version (``current``). See docs/lines.md.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Literal

from worker.core import ids
from worker.core.errors import ConfigError
from worker.core.purl import encode

VARIABLE = "DTRACK_WORKER_LINE_BY"
# Namespace of line and line-finding ids (a fixed UUIDv4): changing it changes every id.
LINE_ID_NAMESPACE = uuid.UUID("4d38b503-b292-413a-a011-eb4622d406e6")

_EXAMPLES = "name, name+tag:track:, or name+version:^(\\d+)\\."


@dataclasses.dataclass(frozen=True, slots=True)
class LineBy:
    """How versions are told apart into lines: by name only, by a tag prefix, or by a
    version pattern whose one group is the track."""

    mode: Literal["name", "tag", "version"] = "name"
    tag_prefix: str | None = None
    version_pattern: re.Pattern[str] | None = None


BY_NAME = LineBy()


def parse_line_by(raw: str | None) -> LineBy:
    """``DTRACK_WORKER_LINE_BY``: ``name`` (the default), ``name+tag:PREFIX`` or
    ``name+version:REGEX`` (exactly one capturing group); ConfigError otherwise."""
    text = (raw or "").strip()
    if text in ("", "name"):
        return BY_NAME
    mode, colon, argument = text.partition(":")
    mode = mode.strip().lower()
    if mode == "name+tag" and colon:
        if not argument:
            raise ConfigError(f"{VARIABLE}={raw!r}: name+tag: needs a tag prefix ({_EXAMPLES})")
        return LineBy("tag", tag_prefix=argument)
    if mode == "name+version" and colon:
        return LineBy("version", version_pattern=_pattern(raw, argument))
    raise ConfigError(f"{VARIABLE}={raw!r} is not a line rule: use {_EXAMPLES}")


def _pattern(raw: str | None, argument: str) -> re.Pattern[str]:
    try:
        pattern = re.compile(argument)
    except re.error as exc:
        raise ConfigError(f"{VARIABLE}={raw!r}: the version pattern is no regex: {exc}") from None
    if pattern.groups != 1:
        raise ConfigError(
            f"{VARIABLE}={raw!r}: the version pattern has {pattern.groups} capturing groups;"
            " it needs exactly one, the track (example: ^(\\d+)\\. for one line per major)"
        )
    return pattern


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ProjectVersion:
    """What a line needs of a DT project (``GET /api/v1/project/{uuid}`` or the list)."""

    uuid: str
    name: str
    version: str | None = None
    group: str | None = None  # 4.x projects have none: read as ""
    tags: tuple[str, ...] = ()
    active: bool | None = None  # None: not known, taken as active
    is_latest: bool | None = None  # DT 4.12+ "isLatest"
    last_bom_import: int | None = None  # epoch milliseconds


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    """One line: a DT instance (the events' ``source``), group, name and track."""

    source: str
    group: str
    name: str
    track: str | None = None

    @property
    def key(self) -> str:
        """The line as text: each part escaped, so different lines never read the same."""
        parts = (self.source, self.group, self.name)
        text = "/".join(encode(p) for p in parts)
        return text if self.track is None else f"{text}#{encode(self.track)}"

    @property
    def id(self) -> str:
        """The line's own stable id, a UUIDv5 of its key."""
        return ids.uuid5(LINE_ID_NAMESPACE, "line\n" + self.key)


def line_of(project: ProjectVersion, rule: LineBy, source: str) -> Line:
    """The line ``project`` belongs to under ``rule``. A project the rule finds no track in
    (no tag with the prefix, a version the pattern does not match) is on its name's own line."""
    return Line(source, project.group or "", project.name, _track(project, rule))


def _track(project: ProjectVersion, rule: LineBy) -> str | None:
    if rule.mode == "tag" and rule.tag_prefix is not None:
        # "first" in a stable order: DT's tag order is not something to rely on
        matching = sorted(t for t in project.tags if t.startswith(rule.tag_prefix))
        return matching[0] if matching else None
    if rule.mode == "version" and rule.version_pattern is not None and project.version:
        found = rule.version_pattern.search(project.version)
        return found.group(1) if found and found.group(1) is not None else None
    return None


def lines_of(
    projects: Iterable[ProjectVersion], rule: LineBy, source: str
) -> dict[Line, list[ProjectVersion]]:
    """The projects grouped into their lines, each line's versions in uuid order."""
    found: dict[Line, list[ProjectVersion]] = {}
    for project in sorted(projects, key=lambda p: p.uuid):
        found.setdefault(line_of(project, rule, source), []).append(project)
    return found


def current(versions: Sequence[ProjectVersion]) -> ProjectVersion | None:
    """The version a line's stream follows: the one DT flags ``isLatest`` (4.12+), else the
    active one with the latest BOM import; None when no version is active.

    An inactive version is never current, even if flagged latest (DT lets both be set). Ties
    (two flagged, which DT prevents per name but a track may see, or equal imports) go to the
    latest import, then to the highest uuid, so every reader picks the same one.
    """
    live = [v for v in versions if v.active is not False]
    flagged = [v for v in live if v.is_latest]
    pool = flagged or live
    if not pool:
        return None
    return max(pool, key=lambda v: (v.last_bom_import or 0, v.uuid))
