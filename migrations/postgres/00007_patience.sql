-- +goose Up
-- How long a step may wait on an open circuit before it fails, and the wait
-- it is in: the circuit it waits on, since when (kept across restarts), and
-- when it tries again.
ALTER TABLE steps ADD COLUMN patience_ms BIGINT NOT NULL DEFAULT 600000;
ALTER TABLE steps ADD COLUMN waiting_circuit TEXT NOT NULL DEFAULT '';
ALTER TABLE steps ADD COLUMN waiting_since TIMESTAMPTZ;
ALTER TABLE steps ADD COLUMN waiting_until TIMESTAMPTZ;

-- +goose Down
ALTER TABLE steps DROP COLUMN waiting_until;
ALTER TABLE steps DROP COLUMN waiting_since;
ALTER TABLE steps DROP COLUMN waiting_circuit;
ALTER TABLE steps DROP COLUMN patience_ms;
