"""What the workers publish of their events: the finding filter (DTRACK_WORKER_FILTER) and the
output format (DTRACK_WORKER_FORMAT: CloudEvents, or OCSF Vulnerability Findings). Pure.

Both act on finding events (snapshot and change) as they are published, never on what the state
store records. Service events (export summaries, gone projects, invalid exports) are always
published as CloudEvents.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson

from worker.core import ocsf
from worker.core.batches import Serialized
from worker.core.config import OutputSettings
from worker.core.selection import FILTER_OUT, Filter, Verdict

FINDING_TYPES = "dtrack-worker.finding."  # the prefix of every finding and change event type


class Judge(Protocol):
    """Evaluates the filter away from its caller (the service: in a process of its own, within
    a time budget per event): one verdict per event body, in order."""

    async def verdicts(self, events: Sequence[bytes]) -> Sequence[Verdict]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Output:
    format: str = "cloudevents"
    filter: Filter | None = None
    product_version: str = "0"
    judge: Judge | None = dataclasses.field(default=None, compare=False)

    @property
    def transforms(self) -> bool:
        """Whether events are read again before they are published (else they go as made)."""
        return self.format == "ocsf" or self.filter is not None

    def judged(self, items: Sequence[Serialized]) -> list[bytes]:
        """The bodies the filter judges: the finding events of ``items``, in order."""
        if self.filter is None:
            return []
        return [body for _, body, _, type_ in items if type_.startswith(FINDING_TYPES)]

    def prepare(
        self, items: Sequence[Serialized], verdicts: Sequence[Verdict] | None = None
    ) -> tuple[list[Serialized], Counter[Verdict]]:
        """The items to publish, in order, and the filter's verdicts, counted. ``verdicts``:
        the judge's, one for each of ``judged(items)``; without them the filter runs here."""
        if not self.transforms:
            return list(items), Counter()
        given = iter(verdicts) if verdicts is not None else None
        counted: Counter[Verdict] = Counter()
        kept: list[Serialized] = []
        for item in items:
            routing_key, body, event_id, type_ = item
            if not type_.startswith(FINDING_TYPES):
                kept.append(item)
                continue
            event = None
            if self.filter is not None:
                if given is not None:
                    verdict = next(given)
                else:
                    event = orjson.loads(body)
                    verdict = self.filter.judge(event)
                counted[verdict] += 1
                if verdict == FILTER_OUT:
                    continue
            if self.format == "ocsf":
                if event is None:
                    event = orjson.loads(body)
                finding = ocsf.finding(event, product_version=self.product_version)
                kept.append((routing_key, orjson.dumps(finding), event_id, ocsf.MESSAGE_TYPE))
            else:
                kept.append(item)
        return kept, counted

    def line(self, body: bytes, type_: str) -> bytes | None:
        """One event as the offline commands print it (None: filtered out)."""
        kept, _ = self.prepare([("", body, "", type_)])
        return kept[0][1] if kept else None


AS_MADE = Output()  # every event, as a CloudEvent: the default


def from_settings(
    settings: OutputSettings,
    product_version: str,
    *,
    filter_name: str = "DTRACK_WORKER_FILTER",
    tried: Sequence[Mapping[str, Any]] | None = None,
) -> Output:
    """The filter, compiled (ConfigError for a bad one; tried on ``tried``, the example events
    of what will be judged, by default those the workers publish), and the format."""
    expression = settings.filter
    return Output(
        format=settings.format,
        filter=Filter(expression, name=filter_name, tried=tried) if expression else None,
        product_version=product_version,
    )
