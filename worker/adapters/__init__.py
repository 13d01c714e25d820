"""Everything that talks to the outside: RabbitMQ, DT's REST API, files, metrics and logs."""
