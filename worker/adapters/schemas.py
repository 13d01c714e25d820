"""Load the bundled JSON Schemas once, at start-up, into compiled contracts.

In an installed wheel the schemas live in ``worker/schemas/``; in a source checkout (editable
install, tests) they are read from the repository's top-level ``schemas/``.
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import orjson

from worker.core.errors import ConfigError
from worker.core.validation import Contract

FILES = {
    "fpf": "fpf.v1.schema.json",
    "notification": "notification.v1.schema.json",
    "job": "job.v1.schema.json",
    "finding_event": "finding-event.v1.schema.json",
    "finding_change": "finding-change.v1.schema.json",
    "line_change": "finding-change.v2.schema.json",
    "service_event": "service-event.v1.schema.json",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Contracts:
    fpf: Contract
    notification: Contract
    job: Contract
    finding_event: Contract
    finding_change: Contract
    line_change: Contract  # finding-change.v2: the change events of a line
    service_event: Contract


def schema_dir() -> Traversable:
    packaged = resources.files("worker") / "schemas"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "schemas"
    if checkout.is_dir():
        return checkout
    raise ConfigError("the bundled JSON Schemas are missing: reinstall dtrack-worker")


@functools.cache
def load() -> Contracts:
    """Every contract, read and compiled once per process."""
    directory = schema_dir()
    return Contracts(
        **{
            name: Contract(orjson.loads(directory.joinpath(file).read_bytes()))
            for name, file in FILES.items()
        }
    )
