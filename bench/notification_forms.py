"""Benchmark: routing one DT 5 notification from its JSON form and from its protobuf form, in
this process (the part of a request that differs between the two). Not a test.

    .venv/bin/python -m bench.notification_forms

JSON: orjson.loads, then notifications.route (contract check, rules). Protobuf:
protobuf_notifications.route (decode with DT's schema, the same rules). The runs alternate,
the best of 25 is kept for each, and the time is this process's CPU time: other load on a
shared machine hits both alike and counts little.
"""

from __future__ import annotations

import functools
import time
import timeit

import orjson

from tests.dt5_notifications import documents, protobuf_of
from worker.adapters import schemas
from worker.core import notifications, protobuf_notifications
from worker.core.validation import Contract

NAMES = (
    "v5__dt-5.0.4-e2e__GROUP_BOM_PROCESSED",
    "v5__dt-5.0.4-e2e__GROUP_NEW_VULNERABILITY",
    "built__VULNERABILITY_RETRACTED",
    "built__NEW_VULNERABILITIES_SUMMARY",
)
RUNS, CALLS = 25, 2000


def _from_json(raw: bytes, contract: Contract) -> notifications.Routing:
    return notifications.route(orjson.loads(raw), contract)


def main() -> None:
    contract = schemas.load().notification
    print(f"{'notification':<44} {'JSON B':>7} {'us':>6} {'protobuf B':>10} {'us':>6} {'ratio':>6}")
    for name in NAMES:
        document = documents()[name]
        as_json, as_protobuf = orjson.dumps(document), protobuf_of(document)
        json_timer = timeit.Timer(
            functools.partial(_from_json, as_json, contract), timer=time.process_time
        )
        protobuf_timer = timeit.Timer(
            functools.partial(protobuf_notifications.route, as_protobuf), timer=time.process_time
        )
        json_times, protobuf_times = [], []
        for _ in range(RUNS):
            json_times.append(json_timer.timeit(CALLS))
            protobuf_times.append(protobuf_timer.timeit(CALLS))
        json_us, protobuf_us = min(json_times) / CALLS * 1e6, min(protobuf_times) / CALLS * 1e6
        print(
            f"{name:<44} {len(as_json):>7} {json_us:>6.1f} {len(as_protobuf):>10} "
            f"{protobuf_us:>6.1f} {protobuf_us / json_us:>6.2f}"
        )


if __name__ == "__main__":
    main()
