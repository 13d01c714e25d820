-- A finding's last known state, compact (worker/adapters/state/packing.py): its snapshot as
-- compressed JSON in `packed`; `snapshot` and `tracked` empty in the rows written so (tracked
-- is kept only where the snapshot does not give it). Adding a nullable column rewrites nothing
-- (PostgreSQL and SQLite alike): the rows an older release wrote stay as they are and read as
-- before; `dtrack-worker state migrate` packs them, a project at a time in short transactions,
-- while workers run (docs/state.md). A row whose `snapshot` is not empty is read from it.
ALTER TABLE findings ADD COLUMN packed {{BYTES}};
