"""``dtrack-worker sync LINE`` (DTRACK_WORKER_TRACK=line): the line a name means, as DT lists its
versions now, and the version to sync, its current one (docs/lines.md, "Current version").

A line is named ``NAME`` (every group and track of it: one, or an error listing them),
``NAME#TRACK`` (one track of DTRACK_WORKER_LINE_BY), or ``GROUP/NAME`` (DT 5's groups), as
``status`` names it. The versions come from DT (``line_delta.versions_of``), never from the
store: a DT failure is an error, never "no such line".
"""

from __future__ import annotations

import dataclasses

from worker.core.lines import Line, LineBy, ProjectVersion, current, line_of
from worker.service.line_delta import VersionsSource, versions_of
from worker.service.sync import Target


class LineRefused(Exception):
    """The argument names no line DT knows, several, or one with no active version."""


@dataclasses.dataclass(frozen=True, slots=True)
class LineTarget:
    line: Line
    target: Target  # the current version's project
    because: str  # why it is the current one

    @property
    def label(self) -> str:
        return _label(self.line)


def _label(line: Line) -> str:
    name = f"{line.group}/{line.name}" if line.group else line.name
    return name if line.track is None else f"{name}#{line.track}"


def _readings(text: str) -> list[tuple[str, str | None, str | None, bool]]:
    """(name, group, track, tracked) readings of ``text``, the plainest first."""
    found: list[tuple[str, str | None, str | None, bool]] = [(text, None, None, False)]
    base, hash_, track = text.rpartition("#")
    names = [(text, None, False)] + ([(base, track, True)] if hash_ and base else [])
    for name, wanted, tracked in names:
        if tracked:
            found.append((name, None, wanted, True))
        for at in (i for i, c in enumerate(name) if c == "/"):
            found.append((name[at + 1 :], name[:at], wanted, tracked))
    return found


async def resolve_line(
    dt: VersionsSource, text: str, rule: LineBy, source: str
) -> LineTarget | None:
    """The line ``text`` names and its current version; None when DT lists no project of any
    name ``text`` can be read as (then it may name a project: ``name@version``); LineRefused
    for several lines, a track or group DT lists none of, or no active version."""
    listed: dict[str, list[ProjectVersion]] = {}
    named: list[tuple[Line, list[ProjectVersion]]] = []
    for name, group, track, tracked in _readings(text):
        if name not in listed:
            listed[name] = await versions_of(dt, name)
        lines: dict[Line, list[ProjectVersion]] = {}
        for version in listed[name]:
            lines.setdefault(line_of(version, rule, source), []).append(version)
        named = [
            (line, versions)
            for line, versions in sorted(lines.items(), key=lambda item: item[0].key)
            if (group is None or line.group == group) and (not tracked or line.track == track)
        ]
        if named:
            break
    if not named:
        known = sorted({_label(line_of(v, rule, source)) for vs in listed.values() for v in vs})
        if not known:
            return None
        raise LineRefused(f"{text}: DT has no such line (lines of that name: {', '.join(known)})")
    if len(named) > 1:
        listing = ", ".join(_label(line) for line, _ in named)
        raise LineRefused(f"{text} names {len(named)} lines; say which: {listing}")
    ((line, versions),) = named
    head = current(versions)
    if head is None:
        raise LineRefused(
            f"{_label(line)}: no active version in DT ({len(versions)} inactive): nothing to sync"
        )
    because = "DT flags it isLatest" if head.is_latest else "the active version last imported"
    return LineTarget(line, Target(head.uuid, head.name, head.version), because)


async def resolve_line_id(dt: VersionsSource, line: Line, rule: LineBy, source: str) -> LineTarget:
    """The current version of a line the store knows (the console's ticked lines), as DT lists
    its versions now; LineRefused when DT lists none of it, or no active version."""
    versions = [v for v in await versions_of(dt, line.name) if line_of(v, rule, source) == line]
    if not versions:
        raise LineRefused(f"{_label(line)}: DT lists no version of this line now")
    head = current(versions)
    if head is None:
        raise LineRefused(
            f"{_label(line)}: no active version in DT ({len(versions)} inactive): nothing to sync"
        )
    because = "DT flags it isLatest" if head.is_latest else "the active version last imported"
    return LineTarget(line, Target(head.uuid, head.name, head.version), because)
