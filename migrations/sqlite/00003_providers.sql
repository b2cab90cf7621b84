-- +goose Up
CREATE TABLE provider_keys (
    team_id    INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    sealed     TEXT NOT NULL,
    hint       TEXT NOT NULL,
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (team_id, provider)
);

-- Prices in micro-dollars per million tokens.
CREATE TABLE model_prices (
    provider          TEXT NOT NULL,
    model             TEXT NOT NULL,
    input_per_mtok    BIGINT NOT NULL CHECK (input_per_mtok >= 0),
    output_per_mtok   BIGINT NOT NULL CHECK (output_per_mtok >= 0),
    updated_by        INTEGER REFERENCES users (id) ON DELETE SET NULL,
    updated_at        DATETIME NOT NULL,
    PRIMARY KEY (provider, model)
);
INSERT INTO model_prices (provider, model, input_per_mtok, output_per_mtok, updated_at) VALUES
    ('anthropic', 'claude-opus-4-1', 15000000, 75000000, CURRENT_TIMESTAMP),
    ('anthropic', 'claude-sonnet-4-5', 3000000, 15000000, CURRENT_TIMESTAMP),
    ('anthropic', 'claude-haiku-4-5', 1000000, 5000000, CURRENT_TIMESTAMP),
    ('openai', 'gpt-4.1', 2000000, 8000000, CURRENT_TIMESTAMP),
    ('openai', 'gpt-4.1-mini', 400000, 1600000, CURRENT_TIMESTAMP),
    ('openai', 'gpt-4o', 2500000, 10000000, CURRENT_TIMESTAMP),
    ('openai', 'gpt-4o-mini', 150000, 600000, CURRENT_TIMESTAMP),
    ('simulated', 'echo', 0, 0, CURRENT_TIMESTAMP),
    ('simulated', 'lorem', 0, 0, CURRENT_TIMESTAMP);

ALTER TABLE steps ADD COLUMN cost_micros BIGINT NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN fallback TEXT NOT NULL DEFAULT '[]';
ALTER TABLE steps ADD COLUMN served_by TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN cost_micros BIGINT NOT NULL DEFAULT 0;
CREATE INDEX runs_team_cost_idx ON runs (team_id, cost_micros DESC, id DESC);

CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY,
    team_id       INTEGER REFERENCES teams (id) ON DELETE SET NULL,
    actor_user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    actor_key_id  INTEGER REFERENCES api_keys (id) ON DELETE SET NULL,
    actor         TEXT NOT NULL DEFAULT '',
    action        TEXT NOT NULL,
    target        TEXT NOT NULL DEFAULT '',
    summary       TEXT NOT NULL DEFAULT '',
    ip            TEXT NOT NULL DEFAULT '',
    user_agent    TEXT NOT NULL DEFAULT '',
    request_id    TEXT NOT NULL DEFAULT '',
    created_at    DATETIME NOT NULL
);
CREATE INDEX audit_log_team_idx ON audit_log (team_id, id DESC);

-- +goose Down
DROP TABLE audit_log;
DROP INDEX runs_team_cost_idx;
ALTER TABLE runs DROP COLUMN cost_micros;
ALTER TABLE steps DROP COLUMN served_by;
ALTER TABLE steps DROP COLUMN fallback;
ALTER TABLE steps DROP COLUMN cost_micros;
DROP TABLE model_prices;
DROP TABLE provider_keys;
