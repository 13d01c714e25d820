-- What the operators' console shows beyond each finding's latest state (docs/console.md).
--
-- The jobs that settled, one row each (the worker writes it as the job settles, whatever the
-- outcome): the overview's last jobs with their duration, and the jobs per minute. Bounded: the
-- write that adds a row removes those beyond the latest 10,000 and those older than
-- DTRACK_WORKER_HISTORY_DAYS.
CREATE TABLE job_history (
    id {{ID}},
    job_id TEXT NOT NULL,
    project TEXT NOT NULL,
    name TEXT,
    version TEXT,
    kind TEXT NOT NULL,               -- the job's trigger: BOM_PROCESSED, SYNC, BACKFILL, ...
    run_id TEXT,                      -- the sync run (sync:UUID) that queued it, if any
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL,            -- done, coalesced, stale, gone, parked, out_of_scope, ...
    reason TEXT,                      -- parked or out of scope: why
    error TEXT,                       -- parked: the error, redacted and cut short
    started_at {{REAL}} NOT NULL,     -- the settling attempt's start
    finished_at {{REAL}} NOT NULL,
    events INTEGER,                   -- findings published (snapshot)
    transitions INTEGER               -- transitions committed (delta)
);
CREATE INDEX job_history_finished ON job_history (finished_at);
CREATE INDEX job_history_run ON job_history (run_id);

-- Each finding's transitions, as committed with their events (the same transaction): the
-- project page's timeline, with a finding's earlier cycles and its `changed` old and new
-- values, newest recorded first. A project's rows recorded more than DTRACK_WORKER_HISTORY_DAYS
-- ago go when the project is written again.
CREATE TABLE finding_history (
    id {{ID}},
    project TEXT NOT NULL,
    finding_key TEXT NOT NULL,
    kind TEXT NOT NULL,               -- opened, changed, resolved, suppressed, reopened
    at {{REAL}} NOT NULL,             -- when, by DT's export time (as the findings table dates)
    recorded_at {{REAL}} NOT NULL,    -- when the worker committed it
    severity TEXT NOT NULL,
    changes TEXT,                     -- changed: {"field": [old, new], ...}, compact JSON
    reason TEXT                       -- resolved: not_in_export, retracted_by_dt, ...
);
CREATE INDEX finding_history_by_project ON finding_history (project, recorded_at, id);

-- A project's DT tags (from DT's project, as the events name them), for the Projects page's
-- filter: `tags` on the project row (a JSON list, as last seen), and one row per tag, indexed
-- by tag. NULL: never known (a store written before this migration, or DT not asked).
ALTER TABLE projects ADD COLUMN tags TEXT;
CREATE TABLE project_tags (
    tag TEXT NOT NULL,
    project TEXT NOT NULL,
    PRIMARY KEY (tag, project)
);
CREATE INDEX project_tags_by_project ON project_tags (project);
-- The Projects page lists them by name: a page (filtered by tag or not) walks this index
-- instead of sorting every project (100,000 projects: a tag's page took 176 ms, sorted).
CREATE INDEX projects_by_name ON projects (name, version, uuid);

-- The console's sync runs and their log, so that a restarted console still shows them; the
-- latest 50 runs are kept.
CREATE TABLE sync_runs (
    id TEXT PRIMARY KEY,
    started_at {{REAL}} NOT NULL,
    targets TEXT NOT NULL,            -- {job id: [uuid, name, version]}, JSON
    summary TEXT,                     -- set when the run ended
    settled TEXT                      -- {job id: last step}, JSON, when the run ended
);
CREATE INDEX sync_runs_started ON sync_runs (started_at);
CREATE TABLE sync_run_lines (
    run TEXT NOT NULL,
    n INTEGER NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (run, n)
);
