-- dtrack-worker's finding state: one SQL for SQLite and PostgreSQL.
-- {{ID}}, {{BYTES}} and {{REAL}} are the only words that differ; the store fills them in.

CREATE TABLE projects (
    uuid TEXT PRIMARY KEY,
    name TEXT,
    version TEXT,
    last_exported_at TEXT,            -- meta.timestamp of the last export applied
    last_seen_at {{REAL}},            -- when an export was last applied, changed or not
    last_outcome TEXT,                -- done, stale, gone, ... of the last job
    last_outcome_at {{REAL}},
    revision BIGINT NOT NULL DEFAULT 0,   -- bumped by every write: an optimistic check
    sequence BIGINT NOT NULL DEFAULT 0,   -- the last CloudEvents sequence number used
    open_critical INTEGER NOT NULL DEFAULT 0,
    open_high INTEGER NOT NULL DEFAULT 0,
    open_medium INTEGER NOT NULL DEFAULT 0,
    open_low INTEGER NOT NULL DEFAULT 0,
    open_info INTEGER NOT NULL DEFAULT 0,
    open_unassigned INTEGER NOT NULL DEFAULT 0,
    deleted_at {{REAL}}
);

CREATE TABLE findings (
    project TEXT NOT NULL,
    finding_key TEXT NOT NULL,
    status TEXT NOT NULL,             -- open, resolved, suppressed
    severity TEXT NOT NULL,
    fingerprint TEXT NOT NULL,        -- of the tracked fields
    tracked TEXT NOT NULL,            -- the tracked fields, JSON
    epss {{REAL}},
    snapshot TEXT NOT NULL,           -- the last known finding, JSON (long texts left out)
    first_seen {{REAL}} NOT NULL,
    opened_at {{REAL}} NOT NULL,
    resolved_at {{REAL}},
    PRIMARY KEY (project, finding_key)
);
CREATE INDEX findings_open ON findings (status, severity, opened_at);

CREATE TABLE outbox (
    id {{ID}},
    project TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    body {{BYTES}} NOT NULL,
    created_at {{REAL}} NOT NULL
);
CREATE INDEX outbox_project ON outbox (project, sequence);

CREATE TABLE relay_leases (
    project TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at {{REAL}} NOT NULL
);
