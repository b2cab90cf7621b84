-- +goose Up
-- Every nofx serve process sharing the database, as its heartbeats tell.
CREATE TABLE nodes (
    id                TEXT PRIMARY KEY,
    host              TEXT NOT NULL,
    pid               INTEGER NOT NULL,
    version           TEXT NOT NULL,
    workers           INTEGER NOT NULL,
    running           INTEGER NOT NULL DEFAULT 0,
    beat_every_ms     INTEGER NOT NULL DEFAULT 10000,
    started_at        DATETIME NOT NULL,
    last_heartbeat_at DATETIME NOT NULL
);

-- Backups made with nofx backup, newest last.
CREATE TABLE backups (
    id         INTEGER PRIMARY KEY,
    path       TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_at DATETIME NOT NULL
);

-- The health page's flow of finished steps over the last hour.
CREATE INDEX steps_finished_at_idx ON steps (finished_at);
-- The steps not finished, by state, for the health page and /metrics.
CREATE INDEX steps_open_status_idx ON steps (status) WHERE status IN ('queued', 'running', 'waiting');
-- The instance's activity by day, across teams.
CREATE INDEX runs_created_at_idx ON runs (created_at);

-- +goose Down
DROP INDEX runs_created_at_idx;
DROP INDEX steps_open_status_idx;
DROP INDEX steps_finished_at_idx;
DROP TABLE backups;
DROP TABLE nodes;
