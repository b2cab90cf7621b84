package runs_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
)

// listReader reads a team's list through ListEncoded and counts the pages
// it had to encode: a page answered from the cache encodes nothing.
type listReader struct {
	t       *testing.T
	e       serviceEnv
	actor   access.Actor
	encoded int
}

func (l *listReader) read(f runs.ListFilter) []map[string]any {
	l.t.Helper()
	body, err := l.e.svc.ListEncoded(l.e.ctx, l.actor, f, func(p runs.Page) ([]byte, error) {
		l.encoded++
		rows := make([]map[string]any, len(p.Runs))
		for i, r := range p.Runs {
			rows[i] = map[string]any{"id": r.ID, "status": r.Status, "created_by": r.CreatedBy, "steps_done": r.StepsDone, "deployment": r.DeploymentEnv}
		}
		return json.Marshal(rows)
	})
	require.NoError(l.t, err)
	var rows []map[string]any
	require.NoError(l.t, json.Unmarshal(body, &rows))
	return rows
}

// cached reads the list and requires that it came from the cache.
func (l *listReader) cached(f runs.ListFilter) []map[string]any {
	l.t.Helper()
	before := l.encoded
	rows := l.read(f)
	require.Equal(l.t, before, l.encoded, "the page came from the cache")
	return rows
}

// fresh reads the list and requires that it was read again.
func (l *listReader) fresh(f runs.ListFilter) []map[string]any {
	l.t.Helper()
	before := l.encoded
	rows := l.read(f)
	require.Equal(l.t, before+1, l.encoded, "the page was read again")
	return rows
}

// TestListEncodedSeesEveryChange checks, on both databases, that a kept page
// is answered while nothing it shows changed, and read again after any
// change to the team's runs or to the names beside them, made through the
// database directly as another process would, without telling the cache.
func TestListEncodedSeesEveryChange(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setupService(t, d)
		e.svc.ListCache = runs.NewListCache(1 << 20)
		l := &listReader{t: t, e: e, actor: e.actor}
		all := runs.ListFilter{}
		p := mustPlan(t, `{"goal":"cached","steps":[{"name":"s","kind":"text","prompt":"x"}]}`)

		require.Empty(t, l.fresh(all))
		require.Empty(t, l.cached(all))
		require.Empty(t, l.cached(runs.ListFilter{Limit: 50}), "no limit and 50 are one page")

		run, _, err := e.svc.Create(e.ctx, e.actor, runs.CreateInput{Plan: p})
		require.NoError(t, err)
		rows := l.fresh(all)
		require.Len(t, rows, 1)
		require.Equal(t, "queued", rows[0]["status"])
		require.Equal(t, rows, l.cached(all))

		// Another team's runs and an API key's last use change nothing here.
		_, other, err := (&auth.Service{DB: d}).SignUp(e.ctx, auth.SignUp{Email: "other@example.com", Password: "a long enough password"})
		require.NoError(t, err)
		_, _, err = e.svc.Create(e.ctx, access.Actor{UserID: 0, TeamID: other.ID, Role: teams.RoleOwner}, runs.CreateInput{Plan: p})
		require.NoError(t, err)
		keyID := insertKey(t, e, "deploy bot")
		_, err = db.Exec(e.ctx, d, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, time.Now().UTC(), keyID)
		require.NoError(t, err)
		_, err = db.Exec(e.ctx, d, `UPDATE users SET name = 'Renamed' WHERE email = 'owner@example.com'`)
		require.NoError(t, err)
		l.cached(all)

		// A run's state, changed behind the service's back.
		_, err = db.Exec(e.ctx, d, `UPDATE runs SET status = 'succeeded', steps_done = 1 WHERE id = ?`, run.ID)
		require.NoError(t, err)
		rows = l.fresh(all)
		require.Equal(t, "succeeded", rows[0]["status"])
		require.EqualValues(t, 1, rows[0]["steps_done"])
		l.cached(all)

		// The creator's email, which every team's list may show.
		_, err = db.Exec(e.ctx, d, `UPDATE users SET email = 'renamed@example.com' WHERE email = 'owner@example.com'`)
		require.NoError(t, err)
		require.Equal(t, "renamed@example.com", l.fresh(all)[0]["created_by"])

		// A key's name, and its removal.
		byKey := access.Actor{TeamID: e.actor.TeamID, APIKeyID: keyID, Role: teams.RoleOwner}
		_, _, err = e.svc.Create(e.ctx, byKey, runs.CreateInput{Plan: p})
		require.NoError(t, err)
		require.Equal(t, "deploy bot", l.fresh(all)[0]["created_by"])
		_, err = db.Exec(e.ctx, d, `UPDATE api_keys SET name = 'release bot' WHERE id = ?`, keyID)
		require.NoError(t, err)
		require.Equal(t, "release bot", l.fresh(all)[0]["created_by"])
		_, err = db.Exec(e.ctx, d, `DELETE FROM api_keys WHERE id = ?`, keyID)
		require.NoError(t, err)
		require.Equal(t, "", l.fresh(all)[0]["created_by"])

		// A deployment's environment, and its removal.
		depID := insertDeployment(t, e)
		_, err = db.Exec(e.ctx, d, `UPDATE runs SET deployment_id = ? WHERE id = ?`, depID, run.ID)
		require.NoError(t, err)
		require.Equal(t, "production", l.fresh(all)[1]["deployment"])
		_, err = db.Exec(e.ctx, d, `UPDATE deployments SET environment = 'staging' WHERE id = ?`, depID)
		require.NoError(t, err)
		require.Equal(t, "staging", l.fresh(all)[1]["deployment"])
		_, err = db.Exec(e.ctx, d, `UPDATE deployments SET paused = ? WHERE id = ?`, true, depID)
		require.NoError(t, err)
		l.cached(all)
		_, err = db.Exec(e.ctx, d, `DELETE FROM deployments WHERE id = ?`, depID)
		require.NoError(t, err)
		require.Equal(t, "", l.fresh(all)[1]["deployment"])

		// Each filter is a page of its own; a deleted run leaves them all.
		require.Len(t, l.fresh(runs.ListFilter{Status: runs.RunSucceeded}), 1)
		require.Len(t, l.cached(runs.ListFilter{Status: runs.RunSucceeded}), 1)
		_, err = db.Exec(e.ctx, d, `DELETE FROM runs WHERE id = ?`, run.ID)
		require.NoError(t, err)
		require.Empty(t, l.fresh(runs.ListFilter{Status: runs.RunSucceeded}))
		require.Len(t, l.fresh(all), 1)

		// A user's removal clears the name on their runs.
		userRun, _, err := e.svc.Create(e.ctx, e.actor, runs.CreateInput{Plan: p})
		require.NoError(t, err)
		require.Equal(t, "renamed@example.com", l.fresh(all)[0]["created_by"])
		_, err = db.Exec(e.ctx, d, `DELETE FROM memberships WHERE user_id = ?`, e.actor.UserID)
		require.NoError(t, err)
		_, err = db.Exec(e.ctx, d, `DELETE FROM users WHERE id = ?`, e.actor.UserID)
		require.NoError(t, err)
		rows = l.fresh(all)
		require.EqualValues(t, userRun.ID, rows[0]["id"])
		require.Equal(t, "", rows[0]["created_by"])

		// A run moved to another team leaves this team's list and joins
		// that one's.
		theirs := &listReader{t: t, e: e, actor: access.Actor{TeamID: other.ID, Role: teams.RoleViewer}}
		before := len(theirs.fresh(all))
		theirs.cached(all)
		mine := len(l.read(all))
		_, err = db.Exec(e.ctx, d, `UPDATE runs SET team_id = ? WHERE id = ?`, other.ID, userRun.ID)
		require.NoError(t, err)
		require.Len(t, theirs.fresh(all), before+1)
		require.Len(t, l.fresh(all), mine-1)

		// Without a cache every read is fresh.
		e.svc.ListCache = nil
		l.fresh(all)
		l.fresh(all)
	})
}

// insertKey adds an API key of the env's team and returns its id.
func insertKey(t *testing.T, e serviceEnv, name string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, db.Get(e.ctx, e.db, &id, `INSERT INTO api_keys (team_id, name, prefix, key_hash, role, created_at)
		VALUES (?, ?, 'nofx_test', ?, 'owner', ?) RETURNING id`, e.actor.TeamID, name, fmt.Sprintf("hash-%s", name), time.Now().UTC()))
	return id
}

// insertDeployment adds a template of the env's team deployed to
// production, and returns the deployment's id.
func insertDeployment(t *testing.T, e serviceEnv) int64 {
	t.Helper()
	now := time.Now().UTC()
	var templateID, id int64
	require.NoError(t, db.Get(e.ctx, e.db, &templateID, `INSERT INTO templates (team_id, slug, name, created_at, updated_at)
		VALUES (?, 'cached', 'Cached', ?, ?) RETURNING id`, e.actor.TeamID, now, now))
	require.NoError(t, db.Get(e.ctx, e.db, &id, `INSERT INTO deployments (team_id, template_id, environment, version, webhook_token, webhook_secret, created_at, updated_at)
		VALUES (?, ?, 'production', 1, 'token', 'secret', ?, ?) RETURNING id`, e.actor.TeamID, templateID, now, now))
	return id
}

// TestListEncodedChecksAccess checks that a role without runs:read gets no
// page, cached or not.
func TestListEncodedChecksAccess(t *testing.T) {
	e := setupService(t, dbtest.SQLite(t))
	e.svc.ListCache = runs.NewListCache(1 << 20)
	_, err := e.svc.ListEncoded(e.ctx, e.actor, runs.ListFilter{}, func(runs.Page) ([]byte, error) { return []byte("[]"), nil })
	require.NoError(t, err)
	_, err = e.svc.ListEncoded(e.ctx, access.Actor{TeamID: e.actor.TeamID}, runs.ListFilter{}, func(runs.Page) ([]byte, error) { return []byte("[]"), nil })
	require.ErrorIs(t, err, access.ErrForbidden)
}

// TestFoldListVersionsKeepsTheVersion checks on PostgreSQL that folding the
// counters of connections that have ended removes their rows, keeps the
// rows of live ones, and leaves every team's version (and so the cache) as
// it was.
func TestFoldListVersionsKeepsTheVersion(t *testing.T) {
	d := dbtest.Postgres(t)
	e := setupService(t, d)
	e.svc.ListCache = runs.NewListCache(1 << 20)
	l := &listReader{t: t, e: e, actor: e.actor}
	_, _, err := e.svc.Create(e.ctx, e.actor, runs.CreateInput{Plan: mustPlan(t, `{"steps":[{"name":"s","kind":"text","prompt":"x"}]}`)})
	require.NoError(t, err)
	// Counters of two connections long gone (no backend has such a pid).
	_, err = db.Exec(e.ctx, d, `INSERT INTO run_list_versions (team_id, slot, version) VALUES (?, 2147483001, 5), (0, 2147483002, 3)`, e.actor.TeamID)
	require.NoError(t, err)
	rows := l.fresh(runs.ListFilter{})

	folded, err := e.svc.FoldListVersions(e.ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, folded)
	require.Equal(t, rows, l.cached(runs.ListFilter{}), "the version is the same after the fold")
	var dead, live int
	require.NoError(t, db.Get(e.ctx, d, &dead, `SELECT COUNT(*) FROM run_list_versions WHERE slot > 2147483000`))
	require.NoError(t, db.Get(e.ctx, d, &live, `SELECT COUNT(*) FROM run_list_versions
		WHERE slot <> 0 AND slot IN (SELECT pid FROM pg_stat_activity)`))
	require.Zero(t, dead)
	require.NotZero(t, live, "the counter of a live connection stays")

	folded, err = e.svc.FoldListVersions(e.ctx)
	require.NoError(t, err)
	require.Zero(t, folded)
	_, err = db.Exec(e.ctx, d, `UPDATE runs SET status = 'failed'`)
	require.NoError(t, err)
	require.Equal(t, "failed", l.fresh(runs.ListFilter{})[0]["status"])
}

// TestListCacheBounds checks that the cache keeps at most its size, each
// page counted with its overhead, gives way from the page used longest
// ago, never replaces a page with one read at an older version, and keeps
// no page bigger than a quarter of it.
func TestListCacheBounds(t *testing.T) {
	unit := 20 + runs.EntryOverhead // a page of 20 bytes, as counted
	c := runs.NewListCache(5 * unit)
	k := runs.ListKeyOf
	c.Put(k(1), 1, make([]byte, 20))
	c.Put(k(2), 1, make([]byte, 20))
	c.Put(k(3), 1, make([]byte, 20))
	_, ok := c.Get(k(1), 1) // 1 is now the most recently used
	require.True(t, ok)
	c.Put(k(4), 1, make([]byte, 20))
	c.Put(k(5), 1, make([]byte, 20))
	pages, size := c.Len()
	require.Equal(t, 5, pages)
	require.Equal(t, 5*unit, size)
	c.Put(k(6), 1, make([]byte, 20))
	_, ok = c.Get(k(2), 1)
	require.False(t, ok, "the page used longest ago went")
	_, ok = c.Get(k(1), 1)
	require.True(t, ok)
	pages, size = c.Len()
	require.Equal(t, 5, pages)
	require.Equal(t, 5*unit, size)

	_, ok = c.Get(k(1), 2)
	require.False(t, ok, "a page of another version is not answered")
	c.Put(k(1), 3, []byte("v3"))
	c.Put(k(1), 2, []byte("v2"))
	body, ok := c.Get(k(1), 3)
	require.True(t, ok, "a page read at an older version does not replace a newer one")
	require.Equal(t, "v3", string(body))

	c.Put(k(7), 1, make([]byte, 5*unit/4-runs.EntryOverhead+1))
	_, ok = c.Get(k(7), 1)
	require.False(t, ok, "a page over a quarter of the cache is not kept")
	hits, misses, _ := c.Stats()
	require.EqualValues(t, 3, hits)
	require.EqualValues(t, 3, misses)
	require.Nil(t, runs.NewListCache(0), "size 0 is no cache")

	// Empty pages of many filters stay within the size too.
	small := runs.NewListCache(100 * runs.EntryOverhead)
	for i := range 1000 {
		small.Put(k(int64(i)), 1, []byte(`{"runs":[]}`))
	}
	pages, size = small.Len()
	require.Less(t, pages, 100)
	require.LessOrEqual(t, size, 100*runs.EntryOverhead)
}
