"""A ceiling for bench/receiver.py: the real receiver with its RabbitMQ step taken out.

    .venv/bin/python -m bench.unbrokered PORT

The receiver's own application (the same middleware, webhook handler, routing, jobs and JSON
answers, the same settings from the environment, event loop and collector tuning), whose job
queue accepts every job at once instead of publishing it and waiting for its confirm. Nothing
reaches RabbitMQ: this says how fast the receiver could answer if publishing cost nothing, the
most that any work on the publish path can give. Not a test, and never a way to run the service.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from worker.adapters import logs, schemas
from worker.adapters.listen import listening_socket
from worker.adapters.metrics import ReceiverMetrics
from worker.core.config import Settings
from worker.core.jobs import Job
from worker.service import collector, receiver
from worker.service.serve import _loop, _serve


class AcceptEverything:
    """A job queue that is always ready and takes every job without sending it anywhere."""

    ready = True

    async def enqueue(self, jobs: Sequence[Job], *, delay_seconds: float = 0) -> None:
        return None


def main() -> None:
    settings = Settings.from_env(dict(os.environ))
    logs.configure(settings.log_level, json=settings.log_format == "json")
    app = receiver.create_app(
        settings.receiver,
        schemas.load(),
        AcceptEverything(),
        ReceiverMetrics.create(CollectorRegistry()),
    )
    sock = listening_socket("127.0.0.1", int(sys.argv[1]))
    loop = _loop()
    collector.tune_for_service()
    try:
        loop.run_until_complete(
            _serve(app, sock, settings.worker.shutdown_grace, settings.receiver)
        )
    finally:
        loop.close()
        sock.close()


if __name__ == "__main__":
    main()
