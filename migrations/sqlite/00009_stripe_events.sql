-- +goose Up
-- Every Stripe event applied, by id, recorded in the transaction of its
-- effect: a replay finds it and changes nothing.
CREATE TABLE stripe_events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    created_at  DATETIME NOT NULL,
    received_at DATETIME NOT NULL
);

-- +goose Down
DROP TABLE stripe_events;
