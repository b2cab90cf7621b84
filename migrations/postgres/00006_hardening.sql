-- +goose Up
-- Failed log-ins per account, so that every process sharing the database
-- counts the same guesses.
CREATE TABLE login_throttles (
    email             TEXT PRIMARY KEY,
    failures          INTEGER NOT NULL,
    window_started_at TIMESTAMPTZ NOT NULL
);

-- A hash of the request that first used an Idempotency-Key, so that the key
-- reused with another body is refused.
ALTER TABLE runs ADD COLUMN idempotency_hash TEXT;

-- API keys act with at most their creator's role, and stop when the
-- creator leaves. Keys that an API key made were stored without a creator:
-- they answer to the team's owner from now on, rather than stop working.
UPDATE api_keys SET created_by = (
    SELECT m.user_id FROM memberships m WHERE m.team_id = api_keys.team_id AND m.role = 'owner' LIMIT 1)
WHERE created_by IS NULL AND revoked_at IS NULL;

-- +goose Down
ALTER TABLE runs DROP COLUMN idempotency_hash;
DROP TABLE login_throttles;
