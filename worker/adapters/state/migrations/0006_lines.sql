-- Lines (docs/lines.md): all versions of a DT project that share a change stream. A line's
-- findings (worker/core/line_state.py) are one compressed blob, written with the per-project
-- apply of the export that moved the line, in the same transaction.
CREATE TABLE lines (
    id TEXT PRIMARY KEY,                  -- Line.id, a UUIDv5 of its key
    source TEXT NOT NULL,                 -- the DT instance (the events' source)
    grp TEXT NOT NULL,                    -- the projects' group ("" on DT 4.x)
    name TEXT NOT NULL,
    track TEXT,                           -- DTRACK_WORKER_LINE_BY's track, or NULL
    current_project TEXT,                 -- the version the stored state was taken from
    current_version TEXT,
    project_revision BIGINT,              -- that project's revision when the line moved
    revision BIGINT NOT NULL DEFAULT 0,   -- bumped by every write: an optimistic check
    sequence BIGINT NOT NULL DEFAULT 0,   -- the last finding-change.v2 sequence number used
    state {{BYTES}},                      -- the line's findings and alias map, compressed
    open_critical INTEGER NOT NULL DEFAULT 0,
    open_high INTEGER NOT NULL DEFAULT 0,
    open_medium INTEGER NOT NULL DEFAULT 0,
    open_low INTEGER NOT NULL DEFAULT 0,
    open_info INTEGER NOT NULL DEFAULT 0,
    open_unassigned INTEGER NOT NULL DEFAULT 0,
    last_change_at {{REAL}},              -- when a job last published a change of the line
    updated_at {{REAL}}
);
CREATE INDEX lines_by_name ON lines (source, name);

-- Every version of a line a job has seen, for `status`: DT's facts as last listed.
CREATE TABLE line_versions (
    line TEXT NOT NULL,
    project TEXT NOT NULL,                -- the version's DT project uuid
    version TEXT,
    is_latest INTEGER,                    -- DT 4.12+ isLatest: 1, 0, or NULL when not said
    active INTEGER,                       -- 1, 0, or NULL when not said
    last_bom_import BIGINT,               -- epoch milliseconds, as DT says it
    last_applied_at {{REAL}},             -- when an export of this version was last applied
    PRIMARY KEY (line, project)
);
CREATE INDEX line_versions_by_project ON line_versions (project);
