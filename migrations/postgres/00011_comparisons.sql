-- +goose Up
-- A replay run holds the candidate steps of a comparison: its prompts are
-- used as written (they were rendered for the original run), and lists of
-- runs leave it out.
ALTER TABLE runs ADD COLUMN replay BOOLEAN NOT NULL DEFAULT FALSE;

-- A step of a finished run replayed on other models.
CREATE TABLE comparisons (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id            BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    run_id             BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_name          TEXT NOT NULL,
    replay_run_id      BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    template           TEXT NOT NULL DEFAULT '',
    template_version   INTEGER NOT NULL DEFAULT 0,
    -- The original step as it was when compared (a retried run changes it).
    original_provider      TEXT NOT NULL DEFAULT '',
    original_model         TEXT NOT NULL DEFAULT '',
    original_status        TEXT NOT NULL DEFAULT '',
    original_output        TEXT NOT NULL DEFAULT '',
    original_error         TEXT NOT NULL DEFAULT '',
    original_input_tokens  BIGINT NOT NULL DEFAULT 0,
    original_output_tokens BIGINT NOT NULL DEFAULT 0,
    original_cost_micros   BIGINT NOT NULL DEFAULT 0,
    original_duration_ms   BIGINT NOT NULL DEFAULT 0,
    preferred          TEXT NOT NULL DEFAULT '',
    preferred_by       BIGINT REFERENCES users (id) ON DELETE SET NULL,
    preferred_at       TIMESTAMPTZ,
    created_by_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_by_key_id  BIGINT REFERENCES api_keys (id) ON DELETE SET NULL,
    created_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX comparisons_run_idx ON comparisons (run_id);
CREATE INDEX comparisons_team_template_idx ON comparisons (team_id, template);

-- +goose Down
DROP TABLE comparisons;
ALTER TABLE runs DROP COLUMN replay;
