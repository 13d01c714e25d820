-- The lines a project is the current version of, for the gone job of a project DT deleted
-- (line_queries.holding): without it, each such job read every line.
CREATE INDEX lines_by_current ON lines (current_project);
