"""The rounds a job of this process just committed, kept in memory for the relay: it publishes
them as they were made instead of reading their bodies back from the store and decoding them
(a first sync of 10,000 findings holds 30 MB of events).

The outbox rows stay the truth: the relay reads which rows wait (ids, sequences, first event
ids: no body) under its lease as always, and takes a row from here only when a round kept for
that project starts at the row's sequence with the row's first event id and holds as many
events; else it reads the batch from the store. A round is taken out when it is handed to the
relay (a failed publish reads it back from the store), and kept ones older than the first row
still waiting are dropped (another process's relay published them). What is kept is bounded:
past ``BUDGET_BYTES`` a job's rounds are left to the store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from worker.adapters.state.outbox_queries import OutboxHead, OutboxRow
from worker.adapters.state.queries import Committed
from worker.core.events import Event

BUDGET_BYTES = 64 * 2**20  # events' bytes kept at most, over every project
# kept this long at most: a busy deployment's relays always see many projects pending, so
# rounds another process published would otherwise stay until the budget is full
KEPT_SECONDS = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class _Kept:
    event_id: str  # its first event's, as its row says
    events: tuple[Event, ...]
    size: int


class Handoff:
    def __init__(self, budget: int = BUDGET_BYTES) -> None:
        self._budget = budget
        self._kept: dict[str, dict[int, _Kept]] = {}  # project -> a row's sequence -> round
        self._since: dict[str, float] = {}  # project -> when its oldest kept round came
        self.bytes = 0

    def keep(self, committed: Committed, now: float) -> None:
        """What a job of this process committed (its rows are in the outbox now)."""
        first = committed.sequences[0]
        if committed.rounds:
            self._since.setdefault(committed.project, now)
        for made in committed.rounds:
            size = sum(len(event.body) for event in made.made)
            if not made.made or self.bytes + size > self._budget:
                return  # the rest is read from the store, in order as ever
            rounds = self._kept.setdefault(committed.project, {})
            rounds[first + made.offset] = _Kept(made.event_id, made.made, size)
            self.bytes += size

    def holds(self, project: str) -> bool:
        return project in self._kept

    def rows(self, project: str, heads: Sequence[OutboxHead]) -> list[OutboxRow] | None:
        """The events of the rows ``heads`` names, from what was kept (taken out); None unless
        every one of them was (the caller reads the batch from the store). No heads: none."""
        if not heads:  # none waits past what the relay took: the rest went out elsewhere
            self.forget(project)
            return []
        kept = self._kept.get(project, {})
        for sequence in [s for s in kept if s < heads[0].sequence]:  # published and deleted
            self._drop(project, sequence)
        found: list[OutboxRow] = []
        for head in heads:
            same = kept.get(head.sequence)
            if same is None or same.event_id != head.event_id or head.events != len(same.events):
                return None
            self._drop(project, head.sequence)
            sequence, trace = head.sequence, head.trace_parent
            found += (
                OutboxRow(head.id, e.id, e.type, e.routing_key, e.body, sequence + n, trace)
                for n, e in enumerate(same.events)
            )
        return found

    def forget(self, project: str) -> None:
        """Nothing of the project waits in the outbox any more."""
        for sequence in list(self._kept.get(project, ())):
            self._drop(project, sequence)
        self._since.pop(project, None)

    def projects(self) -> list[str]:
        return list(self._kept)

    def expire(self, before: float) -> None:
        """Forget the projects whose rounds were kept before ``before``: their rows are read
        from the store if they still wait."""
        for project in [p for p, since in self._since.items() if since < before]:
            self.forget(project)

    def _drop(self, project: str, sequence: int) -> None:
        rounds = self._kept[project]
        self.bytes -= rounds.pop(sequence).size
        if not rounds:
            del self._kept[project]
            self._since.pop(project, None)
