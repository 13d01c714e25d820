-- Outbox rows that hold a round of events (worker/core/outbox_rounds.py): how many, or NULL
-- for a row of one event in the form before (its body the CloudEvent itself), still relayed.
ALTER TABLE outbox ADD COLUMN events INTEGER;
-- The depth gauges count events and read no body: SQLite would walk a round's overflow pages
-- to reach a column after it.
CREATE INDEX outbox_waiting ON outbox (created_at, events);
-- PostgreSQL: rounds compressed with lz4 where the server has it (pglz took most of a first
-- sync's commit); nothing on SQLite.
{{OUTBOX_LZ4}}
