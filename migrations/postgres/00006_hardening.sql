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

-- +goose Down
ALTER TABLE runs DROP COLUMN idempotency_hash;
DROP TABLE login_throttles;
