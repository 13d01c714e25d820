"""dtrack-worker: Dependency-Track findings as versioned CloudEvents on RabbitMQ."""

__version__ = "0.1.0"
