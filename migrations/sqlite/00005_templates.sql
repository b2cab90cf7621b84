-- +goose Up
-- A team's reusable plans. current_version names the version that runs
-- started from the template (not from a deployment) use.
CREATE TABLE templates (
    id              INTEGER PRIMARY KEY,
    team_id         INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    slug            TEXT NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    current_version INTEGER NOT NULL DEFAULT 0,
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL,
    UNIQUE (team_id, slug)
);

-- Every save of a template: immutable.
CREATE TABLE template_versions (
    id             INTEGER PRIMARY KEY,
    template_id    INTEGER NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    version        INTEGER NOT NULL,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    inputs         TEXT NOT NULL DEFAULT '[]',
    plan           TEXT NOT NULL,
    note           TEXT NOT NULL DEFAULT '',
    author_user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    author_key_id  INTEGER REFERENCES api_keys (id) ON DELETE SET NULL,
    author         TEXT NOT NULL DEFAULT '',
    created_at     DATETIME NOT NULL,
    UNIQUE (template_id, version)
);

-- A version pinned to an environment, with its triggers.
CREATE TABLE deployments (
    id                  INTEGER PRIMARY KEY,
    team_id             INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    template_id         INTEGER NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    environment         TEXT NOT NULL CHECK (environment IN ('production', 'staging')),
    version             INTEGER NOT NULL,
    paused              BOOLEAN NOT NULL DEFAULT FALSE,
    webhook_token       TEXT NOT NULL UNIQUE,
    webhook_secret      TEXT NOT NULL,
    input_map           TEXT NOT NULL DEFAULT '{}',
    schedule            TEXT NOT NULL DEFAULT '',
    next_run_at         DATETIME,
    deployed_by_user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at          DATETIME NOT NULL,
    updated_at          DATETIME NOT NULL,
    UNIQUE (template_id, environment)
);
CREATE INDEX deployments_due_idx ON deployments (next_run_at) WHERE next_run_at IS NOT NULL;

-- Signed webhook requests already seen, so that a replay starts nothing.
CREATE TABLE webhook_deliveries (
    id            INTEGER PRIMARY KEY,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    signature     TEXT NOT NULL,
    run_id        INTEGER REFERENCES runs (id) ON DELETE SET NULL,
    received_at   DATETIME NOT NULL,
    UNIQUE (deployment_id, signature)
);
CREATE INDEX webhook_deliveries_received_idx ON webhook_deliveries (received_at);

ALTER TABLE runs ADD COLUMN template_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN deployment_id INTEGER REFERENCES deployments (id) ON DELETE SET NULL;
ALTER TABLE runs ADD COLUMN triggered_by TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN scheduled_for DATETIME;
CREATE INDEX runs_deployment_idx ON runs (deployment_id, id DESC) WHERE deployment_id IS NOT NULL;
-- A deployment's stats sum up its runs of the last 30 days.
CREATE INDEX runs_deployment_created_idx ON runs (deployment_id, created_at) WHERE deployment_id IS NOT NULL;
-- One run per deployment per schedule tick, whatever the number of processes.
CREATE UNIQUE INDEX runs_deployment_tick ON runs (deployment_id, scheduled_for) WHERE scheduled_for IS NOT NULL;

ALTER TABLE teams ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';

-- +goose Down
ALTER TABLE teams DROP COLUMN time_zone;
DROP INDEX runs_deployment_tick;
DROP INDEX runs_deployment_created_idx;
DROP INDEX runs_deployment_idx;
ALTER TABLE runs DROP COLUMN scheduled_for;
ALTER TABLE runs DROP COLUMN triggered_by;
ALTER TABLE runs DROP COLUMN deployment_id;
ALTER TABLE runs DROP COLUMN template_version;
DROP TABLE webhook_deliveries;
DROP TABLE deployments;
DROP TABLE template_versions;
DROP TABLE templates;
