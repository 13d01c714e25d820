"""The finding state store: SQLite on one host, PostgreSQL across hosts (see docs/state.md)."""
