-- Each line finding's transitions, as committed with the line's move and its events (the same
-- transaction): a line's page shows them newest recorded first, with `changed` old and new
-- values, and the mean time to resolve from its `resolved` rows. A line's rows recorded more
-- than DTRACK_WORKER_HISTORY_DAYS ago go when the line moves again (docs/console.md).
CREATE TABLE line_history (
    id {{ID}},
    line TEXT NOT NULL,
    finding TEXT NOT NULL,            -- the line finding's id (the events' subject)
    kind TEXT NOT NULL,               -- opened, changed, resolved, suppressed, reopened
    at {{REAL}} NOT NULL,             -- when, by DT's export time (changed: when committed)
    recorded_at {{REAL}} NOT NULL,    -- when the worker committed it
    opened_at {{REAL}} NOT NULL,      -- the finding's cycle opened then (resolved: at - opened_at)
    vulnerability TEXT NOT NULL,
    package TEXT NOT NULL,            -- the package key
    severity TEXT NOT NULL,
    changes TEXT,                     -- changed: {"field": [old, new], ...}, compact JSON
    reason TEXT,                      -- resolved: not_in_export, merged, ...
    analysis_lost_in_dt INTEGER NOT NULL DEFAULT 0
);
-- The line's page (newest recorded first), its prune, and its mean time to resolve.
CREATE INDEX line_history_by_line ON line_history (line, recorded_at, id);
