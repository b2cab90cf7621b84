-- +goose Up
-- A team's runs list is kept encoded between requests while nothing it
-- shows has changed. Every change to a team's runs, and to the names the
-- list shows beside them (a creator's email, a key's name, a deployment's
-- environment), adds one to a counter of the team in the same
-- transaction, by trigger, whichever statement made it. A reader sums the
-- team's counters (and team 0's, which any user's change counts in) before
-- it reads the list: a page read after a sum that is still current is
-- still what the list shows. SQLite has one writer, so one slot (0); on
-- PostgreSQL each connection counts in a slot of its own. A migration that
-- rebuilds one of these tables must create its triggers again.
CREATE TABLE run_list_versions (
    team_id INTEGER NOT NULL,
    slot    INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (team_id, slot)
);

-- +goose StatementBegin
CREATE TRIGGER runs_list_insert AFTER INSERT ON runs BEGIN
    INSERT INTO run_list_versions (team_id, slot, version) VALUES (NEW.team_id, 0, 1)
    ON CONFLICT (team_id, slot) DO UPDATE SET version = version + 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER runs_list_update AFTER UPDATE ON runs BEGIN
    INSERT INTO run_list_versions (team_id, slot, version) VALUES (NEW.team_id, 0, 1)
    ON CONFLICT (team_id, slot) DO UPDATE SET version = version + 1;
    INSERT INTO run_list_versions (team_id, slot, version) SELECT OLD.team_id, 0, 1 WHERE OLD.team_id <> NEW.team_id
    ON CONFLICT (team_id, slot) DO UPDATE SET version = version + 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER runs_list_delete AFTER DELETE ON runs BEGIN
    INSERT INTO run_list_versions (team_id, slot, version) VALUES (OLD.team_id, 0, 1)
    ON CONFLICT (team_id, slot) DO UPDATE SET version = version + 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER users_list_email AFTER UPDATE OF email ON users WHEN OLD.email IS NOT NEW.email BEGIN
    INSERT INTO run_list_versions (team_id, slot, version) VALUES (0, 0, 1)
    ON CONFLICT (team_id, slot) DO UPDATE SET version = version + 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER users_list_delete AFTER DELETE ON users BEGIN
    INSERT INTO run_list_versions (team_id, slot, version) VALUES (0, 0, 1)
    ON CONFLICT (team_id, slot) DO UPDATE SET version = version + 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER api_keys_list_name AFTER UPDATE OF name ON api_keys WHEN OLD.name IS NOT NEW.name BEGIN
    INSERT INTO run_list_versions (team_id, slot, version) VALUES (OLD.team_id, 0, 1)
    ON CONFLICT (team_id, slot) DO UPDATE SET version = version + 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER api_keys_list_delete AFTER DELETE ON api_keys BEGIN
    INSERT INTO run_list_versions (team_id, slot, version) VALUES (OLD.team_id, 0, 1)
    ON CONFLICT (team_id, slot) DO UPDATE SET version = version + 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER deployments_list_environment AFTER UPDATE OF environment ON deployments WHEN OLD.environment IS NOT NEW.environment BEGIN
    INSERT INTO run_list_versions (team_id, slot, version) VALUES (OLD.team_id, 0, 1)
    ON CONFLICT (team_id, slot) DO UPDATE SET version = version + 1;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER deployments_list_delete AFTER DELETE ON deployments BEGIN
    INSERT INTO run_list_versions (team_id, slot, version) VALUES (OLD.team_id, 0, 1)
    ON CONFLICT (team_id, slot) DO UPDATE SET version = version + 1;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER deployments_list_delete;
DROP TRIGGER deployments_list_environment;
DROP TRIGGER api_keys_list_delete;
DROP TRIGGER api_keys_list_name;
DROP TRIGGER users_list_delete;
DROP TRIGGER users_list_email;
DROP TRIGGER runs_list_delete;
DROP TRIGGER runs_list_update;
DROP TRIGGER runs_list_insert;
DROP TABLE run_list_versions;
