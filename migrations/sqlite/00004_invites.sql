-- +goose Up
CREATE TABLE invites (
    id          INTEGER PRIMARY KEY,
    team_id     INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    invited_by  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at  DATETIME NOT NULL,
    expires_at  DATETIME NOT NULL,
    accepted_at DATETIME,
    accepted_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    revoked_at  DATETIME
);
CREATE INDEX invites_team_idx ON invites (team_id);

-- Mail written here instead of sent, when no SMTP server is configured.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    to_address TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at DATETIME NOT NULL,
    sent_at    DATETIME
);

-- +goose Down
DROP TABLE outbox;
DROP TABLE invites;
