-- +goose Up
-- A run's finished steps by outcome, for its progress (steps_done counts
-- them all): those that failed or timed out, and those that did not run,
-- skipped or cancelled.
ALTER TABLE runs ADD COLUMN steps_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN steps_skipped INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET
    steps_failed = (SELECT COUNT(*) FROM steps WHERE steps.run_id = runs.id AND steps.status IN ('failed', 'timed_out')),
    steps_skipped = (SELECT COUNT(*) FROM steps WHERE steps.run_id = runs.id AND steps.status IN ('skipped', 'cancelled'))
WHERE steps_done > 0;

-- +goose Down
ALTER TABLE runs DROP COLUMN steps_skipped;
ALTER TABLE runs DROP COLUMN steps_failed;
