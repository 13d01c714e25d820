"""What the workers publish of their events: the finding filter (DTRACK_WORKER_FILTER) and the
output format (DTRACK_WORKER_FORMAT: CloudEvents, or OCSF Vulnerability Findings). Pure.

Both act on finding events (snapshot and change) as they are published, never on what the state
store records. Service events (export summaries, gone projects, invalid exports) are always
published as CloudEvents.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

import orjson

from worker.core import ocsf
from worker.core.batches import Serialized
from worker.core.config import OutputSettings
from worker.core.selection import FILTERED_OUT, Filter

FINDING_TYPES = "dtrack-worker.finding."  # the prefix of every finding and change event type


@dataclasses.dataclass(frozen=True, slots=True)
class Output:
    format: str = "cloudevents"
    filter: Filter | None = None
    product_version: str = "0"

    @property
    def transforms(self) -> bool:
        """Whether events are read again before they are published (else they go as made)."""
        return self.format == "ocsf" or self.filter is not None

    def prepare(self, items: Sequence[Serialized]) -> tuple[list[Serialized], Counter[str]]:
        """The items to publish, in order, and the filter's outcomes by name."""
        if not self.transforms:
            return list(items), Counter()
        outcomes: Counter[str] = Counter()
        kept: list[Serialized] = []
        for item in items:
            routing_key, body, event_id, type_ = item
            if not type_.startswith(FINDING_TYPES):
                kept.append(item)
                continue
            event = orjson.loads(body)
            if self.filter is not None:
                outcome = self.filter.matches(event)
                outcomes[outcome] += 1
                if outcome == FILTERED_OUT:
                    continue
            if self.format == "ocsf":
                finding = ocsf.finding(event, product_version=self.product_version)
                kept.append((routing_key, orjson.dumps(finding), event_id, ocsf.MESSAGE_TYPE))
            else:
                kept.append(item)
        return kept, outcomes

    def line(self, body: bytes, type_: str) -> bytes | None:
        """One event as the offline commands print it (None: filtered out)."""
        kept, _ = self.prepare([("", body, "", type_)])
        return kept[0][1] if kept else None


AS_MADE = Output()  # every event, as a CloudEvent: the default


def from_settings(
    settings: OutputSettings, product_version: str, *, filter_name: str = "DTRACK_WORKER_FILTER"
) -> Output:
    """The filter, compiled (ConfigError for a bad one), and the format of finding events."""
    expression = settings.filter
    return Output(
        format=settings.format,
        filter=Filter(expression, name=filter_name) if expression else None,
        product_version=product_version,
    )
