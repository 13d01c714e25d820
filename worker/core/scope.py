"""Which projects the service works for (DTRACK_WORKER_INCLUDE_TAGS, _EXCLUDE_TAGS,
_INCLUDE_PROJECTS, _EXCLUDE_PROJECTS). Pure.

A project is in scope when no exclusion matches it and, for each kind of inclusion that is set,
one matches. Project patterns are globs (``*``, ``?``, ``[...]``) on the project's name, or on
``name@version`` when the pattern holds an ``@``; tags match exactly, ignoring case.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Sequence

IN, OUT, UNDECIDED = "in", "out", "undecided"


@dataclasses.dataclass(frozen=True, slots=True)
class Scope:
    include_tags: frozenset[str] = frozenset()
    exclude_tags: frozenset[str] = frozenset()
    include_projects: tuple[str, ...] = ()
    exclude_projects: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        return not (
            self.include_tags or self.exclude_tags or self.include_projects or self.exclude_projects
        )

    @property
    def by_tags(self) -> bool:
        return bool(self.include_tags or self.exclude_tags)

    def decide(
        self, name: str | None, version: str | None, tags: Sequence[str] | None
    ) -> tuple[str, str | None]:
        """(IN, None), (OUT, why), or (UNDECIDED, what is missing) when the tags or the name it
        needs are not known."""
        if self.everything:
            return IN, None
        why = self._by_tags(tags) or self._by_name(name, version)
        if why is not None:
            return OUT, why
        missing = []
        if self.by_tags and tags is None:
            missing.append("tags")
        if (self.include_projects or self.exclude_projects) and name is None:
            missing.append("name")
        return (UNDECIDED, " and ".join(missing)) if missing else (IN, None)

    def _by_tags(self, tags: Sequence[str] | None) -> str | None:
        if tags is None:
            return None
        own = {tag.lower() for tag in tags}
        excluded = sorted(own & self.exclude_tags)
        if excluded:
            return f"tag {excluded[0]} is excluded (DTRACK_WORKER_EXCLUDE_TAGS)"
        if self.include_tags and not own & self.include_tags:
            return "no tag of DTRACK_WORKER_INCLUDE_TAGS"
        return None

    def _by_name(self, name: str | None, version: str | None) -> str | None:
        if name is None:
            return None
        pattern = _matching(self.exclude_projects, name, version)
        if pattern is not None:
            return f"{pattern} is excluded (DTRACK_WORKER_EXCLUDE_PROJECTS)"
        if self.include_projects and _matching(self.include_projects, name, version) is None:
            return "no pattern of DTRACK_WORKER_INCLUDE_PROJECTS matches"
        return None


EVERYTHING = Scope()


def _matching(patterns: Sequence[str], name: str, version: str | None) -> str | None:
    for pattern in patterns:
        subject = f"{name}@{version or ''}" if "@" in pattern else name
        if fnmatch.fnmatchcase(subject, pattern):
            return pattern
    return None


def parse(
    include_tags: str | None,
    exclude_tags: str | None,
    include_projects: str | None,
    exclude_projects: str | None,
) -> Scope:
    """The variables' comma-separated lists as a Scope."""
    return Scope(
        include_tags=frozenset(_items(include_tags, lower=True)),
        exclude_tags=frozenset(_items(exclude_tags, lower=True)),
        include_projects=tuple(_items(include_projects)),
        exclude_projects=tuple(_items(exclude_projects)),
    )


def _items(raw: str | None, *, lower: bool = False) -> list[str]:
    items = [item.strip() for item in (raw or "").split(",") if item.strip()]
    return [item.lower() for item in items] if lower else items
