-- +goose Up
-- A team's runs list is kept encoded between requests while nothing it
-- shows has changed. Every change to a team's runs, and to the names the
-- list shows beside them (a creator's email, a key's name, a deployment's
-- environment), adds one to a counter of the team in the same
-- transaction, by trigger, whichever process or statement made it. A
-- reader sums the team's counters (and team 0's, which any user's change
-- counts in) before it reads the list: a page read after a sum that is
-- still current is still what the list shows.
--
-- Each connection counts in a row of its own (slot: its backend's pid),
-- so that transactions never wait on one another for a counter; rows of
-- backends that have ended are folded into slot 0 (runs.FoldListVersions).
CREATE TABLE run_list_versions (
    team_id BIGINT NOT NULL,
    slot    INTEGER NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (team_id, slot)
);

-- +goose StatementBegin
CREATE FUNCTION run_list_runs_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_list_versions (team_id, slot, version)
    SELECT DISTINCT team_id, pg_backend_pid(), 1 FROM changed_runs
    ON CONFLICT (team_id, slot) DO UPDATE SET version = run_list_versions.version + 1;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- An update counts for the team the run was in and the one it is in.
-- +goose StatementBegin
CREATE FUNCTION run_list_runs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_list_versions (team_id, slot, version)
    SELECT team_id, pg_backend_pid(), 1 FROM (SELECT team_id FROM changed_runs UNION SELECT team_id FROM old_runs) AS teams
    ON CONFLICT (team_id, slot) DO UPDATE SET version = run_list_versions.version + 1;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- A user's change counts for every team (team 0); a key's or a
-- deployment's for its own.
-- +goose StatementBegin
CREATE FUNCTION run_list_names_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    team BIGINT := 0;
BEGIN
    IF TG_TABLE_NAME <> 'users' THEN
        team := OLD.team_id;
    END IF;
    INSERT INTO run_list_versions (team_id, slot, version) VALUES (team, pg_backend_pid(), 1)
    ON CONFLICT (team_id, slot) DO UPDATE SET version = run_list_versions.version + 1;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER runs_list_insert AFTER INSERT ON runs
    REFERENCING NEW TABLE AS changed_runs FOR EACH STATEMENT EXECUTE FUNCTION run_list_runs_changed();
CREATE TRIGGER runs_list_update AFTER UPDATE ON runs
    REFERENCING OLD TABLE AS old_runs NEW TABLE AS changed_runs FOR EACH STATEMENT EXECUTE FUNCTION run_list_runs_updated();
CREATE TRIGGER runs_list_delete AFTER DELETE ON runs
    REFERENCING OLD TABLE AS changed_runs FOR EACH STATEMENT EXECUTE FUNCTION run_list_runs_changed();
CREATE TRIGGER users_list_email AFTER UPDATE OF email ON users
    FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email) EXECUTE FUNCTION run_list_names_changed();
CREATE TRIGGER users_list_delete AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION run_list_names_changed();
CREATE TRIGGER api_keys_list_name AFTER UPDATE OF name ON api_keys
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION run_list_names_changed();
CREATE TRIGGER api_keys_list_delete AFTER DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION run_list_names_changed();
CREATE TRIGGER deployments_list_environment AFTER UPDATE OF environment ON deployments
    FOR EACH ROW WHEN (OLD.environment IS DISTINCT FROM NEW.environment) EXECUTE FUNCTION run_list_names_changed();
CREATE TRIGGER deployments_list_delete AFTER DELETE ON deployments
    FOR EACH ROW EXECUTE FUNCTION run_list_names_changed();

-- +goose Down
DROP TRIGGER deployments_list_delete ON deployments;
DROP TRIGGER deployments_list_environment ON deployments;
DROP TRIGGER api_keys_list_delete ON api_keys;
DROP TRIGGER api_keys_list_name ON api_keys;
DROP TRIGGER users_list_delete ON users;
DROP TRIGGER users_list_email ON users;
DROP TRIGGER runs_list_delete ON runs;
DROP TRIGGER runs_list_update ON runs;
DROP TRIGGER runs_list_insert ON runs;
DROP FUNCTION run_list_names_changed();
DROP FUNCTION run_list_runs_updated();
DROP FUNCTION run_list_runs_changed();
DROP TABLE run_list_versions;
