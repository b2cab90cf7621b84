-- +goose Up
-- Plans: what a team may use, and what it costs. -1 is unlimited; prices
-- are in cents (-1: by contract), model spend in micros like step costs.
CREATE TABLE plans (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    position             INTEGER NOT NULL,
    monthly_cents        BIGINT NOT NULL,
    yearly_cents         BIGINT NOT NULL,
    stripe_price_monthly TEXT NOT NULL DEFAULT '',
    stripe_price_yearly  TEXT NOT NULL DEFAULT '',
    runs_per_month       BIGINT NOT NULL,
    spend_micros         BIGINT NOT NULL,
    concurrency          INTEGER NOT NULL,
    members              INTEGER NOT NULL,
    api_per_minute       INTEGER NOT NULL,
    instance_keys        BOOLEAN NOT NULL,
    updated_at           DATETIME NOT NULL
);
INSERT INTO plans (id, name, position, monthly_cents, yearly_cents, runs_per_month, spend_micros, concurrency, members, api_per_minute, instance_keys, updated_at) VALUES
    ('free', 'Free', 1, 0, 0, 200, 5000000, 4, 5, 120, TRUE, CURRENT_TIMESTAMP),
    ('starter', 'Starter', 2, 2900, 29000, 2000, 50000000, 10, 10, 600, TRUE, CURRENT_TIMESTAMP),
    ('pro', 'Pro', 3, 9900, 99000, 20000, 250000000, 50, 50, 3000, TRUE, CURRENT_TIMESTAMP),
    ('enterprise', 'Enterprise', 4, -1, -1, -1, -1, -1, -1, -1, TRUE, CURRENT_TIMESTAMP);

-- A team's subscription, when Stripe bills it; its period is the team's
-- billing period (else the calendar month in UTC).
CREATE TABLE subscriptions (
    team_id                INTEGER PRIMARY KEY REFERENCES teams (id) ON DELETE CASCADE,
    stripe_customer_id     TEXT NOT NULL DEFAULT '',
    stripe_subscription_id TEXT NOT NULL DEFAULT '',
    status                 TEXT NOT NULL DEFAULT '',
    billing_interval       TEXT NOT NULL DEFAULT '',
    period_start           DATETIME,
    period_end             DATETIME,
    cancel_at_period_end   BOOLEAN NOT NULL DEFAULT FALSE,
    past_due_since         DATETIME,
    last_event_at          DATETIME,
    last_invoice_event_at  DATETIME,
    updated_at             DATETIME NOT NULL
);
CREATE UNIQUE INDEX subscriptions_customer_key ON subscriptions (stripe_customer_id) WHERE stripe_customer_id <> '';

-- What each team used in each period, counted in the transactions that
-- create runs and record steps: model spend on the instance's keys apart
-- from spend on the team's own keys.
CREATE TABLE team_usage (
    team_id              BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    period_start         DATETIME NOT NULL,
    runs                 BIGINT NOT NULL DEFAULT 0,
    spend_micros         BIGINT NOT NULL DEFAULT 0,
    own_key_spend_micros BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (team_id, period_start)
);

-- Each warning a team was given: once per limit (as it stood), threshold
-- and period; its email goes out after the usage that crossed it commits.
CREATE TABLE usage_warnings (
    team_id      BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    period_start DATETIME NOT NULL,
    metric       TEXT NOT NULL,
    threshold    INTEGER NOT NULL,
    used         BIGINT NOT NULL,
    quota        BIGINT NOT NULL,
    created_at   DATETIME NOT NULL,
    emailed_at   DATETIME,
    PRIMARY KEY (team_id, period_start, metric, quota, threshold)
);
CREATE INDEX usage_warnings_unsent_idx ON usage_warnings (created_at) WHERE emailed_at IS NULL;

-- Whether a step's model spend was on the team's own key; and what else a
-- step may wait on than a circuit (the team's spend limit).
ALTER TABLE steps ADD COLUMN own_key BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE steps ADD COLUMN waiting_on TEXT NOT NULL DEFAULT '';
CREATE INDEX steps_waiting_on_idx ON steps (waiting_on) WHERE waiting_on <> '';

-- +goose Down
DROP INDEX steps_waiting_on_idx;
ALTER TABLE steps DROP COLUMN waiting_on;
ALTER TABLE steps DROP COLUMN own_key;
DROP INDEX usage_warnings_unsent_idx;
DROP TABLE usage_warnings;
DROP TABLE team_usage;
DROP TABLE subscriptions;
DROP TABLE plans;
