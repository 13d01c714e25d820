-- The Lines list's figures kept on each line's row, so the list reads neither a line's state nor
-- its history: the oldest open finding's open time (as the line's state says after each move),
-- and the resolved findings' count and total time open (time to resolve = total / count, over
-- every resolution since this migration, merges left out).
ALTER TABLE lines ADD COLUMN oldest_open_at {{REAL}};
ALTER TABLE lines ADD COLUMN resolved_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE lines ADD COLUMN resolved_seconds {{REAL}} NOT NULL DEFAULT 0;
