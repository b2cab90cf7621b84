-- +goose Up
CREATE TABLE runs (
    id                 INTEGER PRIMARY KEY,
    team_id            INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    status             TEXT NOT NULL CHECK (status IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled')),
    goal               TEXT NOT NULL DEFAULT '',
    template           TEXT NOT NULL DEFAULT '',
    plan               TEXT NOT NULL,
    inputs             TEXT NOT NULL DEFAULT '{}',
    created_by_user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_by_key_id  INTEGER REFERENCES api_keys (id) ON DELETE SET NULL,
    rerun_of           INTEGER REFERENCES runs (id) ON DELETE SET NULL,
    idempotency_key    TEXT,
    steps_total        INTEGER NOT NULL,
    steps_done         INTEGER NOT NULL DEFAULT 0,
    input_tokens       BIGINT NOT NULL DEFAULT 0,
    output_tokens      BIGINT NOT NULL DEFAULT 0,
    error              TEXT NOT NULL DEFAULT '',
    created_at         DATETIME NOT NULL,
    started_at         DATETIME,
    finished_at        DATETIME,
    updated_at         DATETIME NOT NULL
);
CREATE INDEX runs_team_id_idx ON runs (team_id, id DESC);
CREATE INDEX runs_team_status_idx ON runs (team_id, status, id DESC);
CREATE INDEX runs_team_template_idx ON runs (team_id, template, id DESC);
CREATE INDEX runs_team_created_idx ON runs (team_id, created_at);
CREATE UNIQUE INDEX runs_idempotency_key ON runs (team_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE steps (
    id               INTEGER PRIMARY KEY,
    run_id           INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('llm', 'text', 'approval')),
    status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled', 'timed_out', 'skipped')),
    needs            TEXT NOT NULL DEFAULT '[]',
    provider         TEXT NOT NULL DEFAULT '',
    model            TEXT NOT NULL DEFAULT '',
    prompt           TEXT NOT NULL DEFAULT '',
    rendered_prompt  TEXT NOT NULL DEFAULT '',
    options          TEXT NOT NULL DEFAULT '{}',
    output           TEXT NOT NULL DEFAULT '',
    error            TEXT NOT NULL DEFAULT '',
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    timeout_ms       BIGINT NOT NULL,
    input_tokens     BIGINT NOT NULL DEFAULT 0,
    output_tokens    BIGINT NOT NULL DEFAULT 0,
    enqueued         BOOLEAN NOT NULL DEFAULT FALSE,
    job_id           BIGINT,
    lease_token      TEXT NOT NULL DEFAULT '',
    lease_expires_at DATETIME,
    decided_by       INTEGER REFERENCES users (id) ON DELETE SET NULL,
    decision_comment TEXT NOT NULL DEFAULT '',
    started_at       DATETIME,
    finished_at      DATETIME,
    updated_at       DATETIME NOT NULL,
    UNIQUE (run_id, name)
);
CREATE INDEX steps_lease_idx ON steps (lease_expires_at) WHERE status = 'running';
CREATE INDEX steps_queued_job_idx ON steps (job_id) WHERE status = 'queued';

CREATE TABLE run_events (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step          TEXT NOT NULL DEFAULT '',
    kind          TEXT NOT NULL,
    message       TEXT NOT NULL DEFAULT '',
    actor_user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    actor_key_id  INTEGER REFERENCES api_keys (id) ON DELETE SET NULL,
    created_at    DATETIME NOT NULL
);
CREATE INDEX run_events_run_idx ON run_events (run_id, id);

-- +goose Down
DROP TABLE run_events;
DROP TABLE steps;
DROP TABLE runs;
