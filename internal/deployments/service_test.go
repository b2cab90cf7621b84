package deployments_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/runs/runstest"
	"github.com/nofxhq/nofx/internal/secrets"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
)

// clock is a settable time for the services under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// fixture is a team with its starter templates and a user in each role,
// and a second team without templates.
type fixture struct {
	db        *db.DB
	svc       *deployments.Service
	templates *templates.Service
	clock     *clock
	team      teams.Team
	users     map[teams.Role]int64
	other     access.Actor
}

func (f fixture) actor(role teams.Role) access.Actor {
	return access.Actor{UserID: f.users[role], TeamID: f.team.ID, Role: role}
}

func (f fixture) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(context.Background(), f.db, &n, query, args...))
	return n
}

func (f fixture) runs(t *testing.T) int { return f.count(t, `SELECT COUNT(*) FROM runs`) }

func (f fixture) audited(t *testing.T, action string) int {
	return f.count(t, `SELECT COUNT(*) FROM audit_log WHERE action = ?`, action)
}

func addUser(t *testing.T, d *db.DB, email string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, db.Get(context.Background(), d, &id,
		`INSERT INTO users (email, password_hash, created_at, updated_at) VALUES (?, 'x', ?, ?) RETURNING id`,
		email, db.Now(), db.Now()))
	return id
}

func setup(t *testing.T, d *db.DB) fixture {
	t.Helper()
	ctx := context.Background()
	box, err := secrets.New([]byte("test-secret-key-0123456789abcdef"))
	require.NoError(t, err)
	runsSvc := &runs.Service{DB: d, Scheduler: &runstest.Jobs{}, Providers: ai.NewRegistry(ai.NewSimulated(1))}
	c := &clock{t: time.Date(2026, 11, 27, 12, 0, 30, 0, time.UTC)}
	team, err := teams.Create(ctx, d, "Acme", "acme", false)
	require.NoError(t, err)
	f := fixture{
		db:        d,
		svc:       &deployments.Service{DB: d, Runs: runsSvc, Box: box, Now: c.Now},
		templates: &templates.Service{DB: d, Runs: runsSvc},
		clock:     c,
		team:      team,
		users:     map[teams.Role]int64{},
	}
	for _, r := range teams.Roles {
		f.users[r] = addUser(t, d, string(r)+"@example.com")
		require.NoError(t, teams.AddMember(ctx, d, team.ID, f.users[r], r))
	}
	require.NoError(t, templates.SeedStarters(ctx, d, team.ID, f.actor(teams.RoleOwner)))
	other, err := teams.Create(ctx, d, "Other", "other", false)
	require.NoError(t, err)
	outsider := addUser(t, d, "outsider@example.com")
	require.NoError(t, teams.AddMember(ctx, d, other.ID, outsider, teams.RoleOwner))
	f.other = access.Actor{UserID: outsider, TeamID: other.ID, Role: teams.RoleOwner}
	return f
}

// saveVersion saves a new version of slug changed by edit.
func (f fixture) saveVersion(t *testing.T, slug string, edit func(*templates.Spec)) int {
	t.Helper()
	ctx := context.Background()
	_, v, err := templates.LoadVersion(ctx, f.db, f.team.ID, slug, 0)
	require.NoError(t, err)
	spec, err := v.Spec(slug)
	require.NoError(t, err)
	edit(&spec)
	nv, changed, err := f.templates.Save(ctx, f.actor(teams.RoleOwner), slug, spec, "test edit")
	require.NoError(t, err)
	require.True(t, changed)
	return nv.Number
}

func requireField(t *testing.T, err error, field string) {
	t.Helper()
	var verrs validation.Errors
	require.ErrorAs(t, err, &verrs)
	require.NotEmpty(t, verrs[field], "want an error on %s, got %v", field, verrs)
}

func TestDeployPinsVersions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		admin := f.actor(teams.RoleAdmin)

		first, err := f.svc.Deploy(ctx, admin, templates.StarterSummary, deployments.Production, 0)
		require.NoError(t, err)
		require.True(t, first.Created)
		require.True(t, strings.HasPrefix(first.Secret, "whsec_"), first.Secret)
		require.Equal(t, 1, first.Deployment.Version, "0 deploys the current version")
		require.NotEmpty(t, first.Deployment.WebhookToken)
		require.NotContains(t, first.Deployment.SealedSecret, first.Secret, "the secret is stored sealed")

		again, err := f.svc.Deploy(ctx, admin, templates.StarterSummary, deployments.Production, 1)
		require.NoError(t, err)
		require.False(t, again.Created)
		require.Empty(t, again.Secret, "the secret is shown only when created")
		require.Equal(t, first.Deployment.WebhookToken, again.Deployment.WebhookToken)

		v2 := f.saveVersion(t, templates.StarterSummary, func(s *templates.Spec) { s.Plan.Goal = "Summary, version two" })
		repinned, err := f.svc.Deploy(ctx, admin, templates.StarterSummary, deployments.Production, v2)
		require.NoError(t, err)
		require.Equal(t, v2, repinned.Deployment.Version)
		require.Equal(t, first.Deployment.ID, repinned.Deployment.ID)
		require.Equal(t, 2, f.audited(t, "deployment.deploy"), "the no-op re-deploy writes nothing")

		for _, tc := range []struct {
			name    string
			actor   access.Actor
			slug    string
			env     string
			version int
			field   string
			err     error
		}{
			{name: "member may not deploy", actor: f.actor(teams.RoleMember), slug: templates.StarterSummary, env: deployments.Staging, err: access.ErrForbidden},
			{name: "viewer may not deploy", actor: f.actor(teams.RoleViewer), slug: "missing", env: "nowhere", err: access.ErrForbidden},
			{name: "another team's template", actor: f.other, slug: templates.StarterSummary, env: deployments.Staging, err: db.ErrNotFound},
			{name: "unknown template", actor: admin, slug: "missing", env: deployments.Staging, err: db.ErrNotFound},
			{name: "unknown environment", actor: admin, slug: templates.StarterSummary, env: "dev", field: "environment"},
			{name: "unknown version", actor: admin, slug: templates.StarterSummary, env: deployments.Staging, version: 9, field: "version"},
			{name: "negative version", actor: admin, slug: templates.StarterSummary, env: deployments.Staging, version: -1, field: "version"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.svc.Deploy(ctx, tc.actor, tc.slug, tc.env, tc.version)
				if tc.err != nil {
					require.ErrorIs(t, err, tc.err)
				} else {
					requireField(t, err, tc.field)
				}
			})
		}
		require.Equal(t, 1, f.count(t, `SELECT COUNT(*) FROM deployments`), "refusals write nothing")

		list, err := f.svc.List(ctx, f.actor(teams.RoleViewer), templates.StarterSummary)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, deployments.Production, list[0].Environment)
		_, err = f.svc.List(ctx, f.other, templates.StarterSummary)
		require.ErrorIs(t, err, db.ErrNotFound)
	})
}

func TestTriggerRunsThePinnedVersion(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		slug, env := templates.StarterSummary, deployments.Production
		_, err := f.svc.Deploy(ctx, f.actor(teams.RoleOwner), slug, env, 1)
		require.NoError(t, err)
		f.saveVersion(t, slug, func(s *templates.Spec) { s.Plan.Goal = "Changed after deploying" })

		member := f.actor(teams.RoleMember)
		run, replayed, err := f.svc.Trigger(ctx, member, slug, env, map[string]any{"text": "Hello"}, "key-1")
		require.NoError(t, err)
		require.False(t, replayed)
		require.Equal(t, 1, run.TemplateVersion, "the pinned version, not the current one")
		require.NotEqual(t, "Changed after deploying", run.Goal)
		require.Equal(t, runs.TriggerAPI, run.TriggeredBy)
		require.True(t, run.DeploymentID.Valid)

		again, replayed, err := f.svc.Trigger(ctx, member, slug, env, map[string]any{"text": "Hello"}, "key-1")
		require.NoError(t, err)
		require.True(t, replayed, "the idempotency key returns the same run")
		require.Equal(t, run.ID, again.ID)

		_, _, err = f.svc.Trigger(ctx, member, slug, env, map[string]any{}, "")
		requireField(t, err, "inputs.text")
		_, _, err = f.svc.Trigger(ctx, f.actor(teams.RoleViewer), slug, env, map[string]any{"text": "x"}, "")
		require.ErrorIs(t, err, access.ErrForbidden)
		_, _, err = f.svc.Trigger(ctx, f.other, slug, env, map[string]any{"text": "x"}, "")
		require.ErrorIs(t, err, db.ErrNotFound)
		_, _, err = f.svc.Trigger(ctx, member, slug, deployments.Staging, map[string]any{"text": "x"}, "")
		require.ErrorIs(t, err, db.ErrNotFound, "not deployed to staging")

		require.ErrorIs(t, f.svc.Pause(ctx, member, slug, env), access.ErrForbidden)
		require.NoError(t, f.svc.Pause(ctx, f.actor(teams.RoleAdmin), slug, env))
		_, _, err = f.svc.Trigger(ctx, member, slug, env, map[string]any{"text": "x"}, "")
		require.ErrorIs(t, err, runs.ErrConflict)
		require.NoError(t, f.svc.Resume(ctx, f.actor(teams.RoleAdmin), slug, env))
		_, _, err = f.svc.Trigger(ctx, member, slug, env, map[string]any{"text": "x"}, "")
		require.NoError(t, err)

		require.Equal(t, 2, f.runs(t))
		require.Equal(t, 1, f.audited(t, "deployment.pause"))
		require.Equal(t, 1, f.audited(t, "deployment.resume"))

		list, err := f.svc.List(ctx, member, slug)
		require.NoError(t, err)
		require.Len(t, list[0].Recent, 2)
		require.Equal(t, 2, list[0].Stats.Runs)
		require.Nil(t, list[0].Stats.SuccessRate, "no run has finished")
	})
}

func TestStatsOverTheLast30Days(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		slug, env := templates.StarterSummary, deployments.Staging
		_, err := f.svc.Deploy(ctx, f.actor(teams.RoleOwner), slug, env, 0)
		require.NoError(t, err)
		var ids []int64
		for range 5 {
			run, _, err := f.svc.Trigger(ctx, f.actor(teams.RoleOwner), slug, env, map[string]any{"text": "x"}, "")
			require.NoError(t, err)
			ids = append(ids, run.ID)
		}
		now := f.clock.Now()
		set := func(id int64, status string, cost int64, created time.Time) {
			_, err := db.Exec(ctx, d, `UPDATE runs SET status = ?, cost_micros = ?, created_at = ? WHERE id = ?`, status, cost, created, id)
			require.NoError(t, err)
		}
		set(ids[0], runs.RunSucceeded, 1000, now.Add(-time.Hour))
		set(ids[1], runs.RunSucceeded, 3000, now.Add(-time.Hour))
		set(ids[2], runs.RunFailed, 2000, now.Add(-time.Hour))
		set(ids[3], runs.RunRunning, 0, now.Add(-time.Hour))          // counts for cost, not for the rate
		set(ids[4], runs.RunFailed, 90000, now.Add(-31*24*time.Hour)) // outside the window

		list, err := f.svc.List(ctx, f.actor(teams.RoleViewer), slug)
		require.NoError(t, err)
		st := list[0].Stats
		require.Equal(t, 4, st.Runs)
		require.Equal(t, 3, st.Finished)
		require.Equal(t, 2, st.Succeeded)
		require.NotNil(t, st.SuccessRate)
		require.InDelta(t, 2.0/3.0, *st.SuccessRate, 1e-9)
		require.Equal(t, int64(1500), st.AvgCostMicros)
		require.Len(t, list[0].Recent, 5, "recent runs are not limited to the window")
		require.Equal(t, ids[4], list[0].Recent[0].ID, "newest first")
	})
}

func TestReceiveOnBothDatabases(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		out, err := f.svc.Deploy(ctx, f.actor(teams.RoleOwner), templates.StarterSummary, deployments.Production, 0)
		require.NoError(t, err)
		token, secret := out.Deployment.WebhookToken, out.Secret
		now := f.clock.Now()
		deliver := func(secret string, at time.Time, body string) error {
			ts := fmt.Sprint(at.Unix())
			_, err := f.svc.Receive(ctx, token, ts, deployments.Sign(secret, at.Unix(), []byte(body)), strings.NewReader(body))
			return err
		}
		body := `{"text":"Hello"}`
		require.NoError(t, deliver(secret, now, body))
		require.Equal(t, 1, f.count(t, `SELECT COUNT(*) FROM webhook_deliveries WHERE run_id IS NOT NULL`))

		require.ErrorIs(t, deliver(secret, now, body), runs.ErrConflict, "a replay")
		upper := "sha256=" + strings.ToUpper(strings.TrimPrefix(deployments.Sign(secret, now.Unix(), []byte(body)), "sha256="))
		_, err = f.svc.Receive(ctx, token, " "+fmt.Sprint(now.Unix()), upper, strings.NewReader(body))
		require.ErrorIs(t, err, runs.ErrConflict, "a replay with the hex in upper case")
		require.ErrorIs(t, deliver("whsec_other", now, body), deployments.ErrBadSignature)
		require.ErrorIs(t, deliver(secret, now.Add(-6*time.Minute), body), deployments.ErrStale)
		require.ErrorIs(t, deliver(secret, now, `[1]`), deployments.ErrMalformedBody)
		require.ErrorIs(t, deliver(secret, now, `{"text":"`+strings.Repeat("x", deployments.MaxWebhookBody)+`"}`), deployments.ErrBodyTooLarge)
		_, err = f.svc.Receive(ctx, "unknown", "", "", strings.NewReader(body))
		require.ErrorIs(t, err, db.ErrNotFound)
		requireField(t, deliver(secret, now.Add(time.Second), `{}`), "inputs.text")
		require.Equal(t, 1, f.runs(t), "refused deliveries start nothing")
		require.Equal(t, 1, f.count(t, `SELECT COUNT(*) FROM webhook_deliveries`), "nor remember anything")

		// Ten minutes on, the delivery is forgotten, and its replay is stale.
		f.clock.Set(now.Add(9 * time.Minute))
		n, err := f.svc.PruneDeliveries(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
		f.clock.Set(now.Add(11 * time.Minute))
		n, err = f.svc.PruneDeliveries(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		require.ErrorIs(t, deliver(secret, now, body), deployments.ErrStale)
		require.Equal(t, 1, f.runs(t))
	})
}

func TestAllListsTheTeamsDeploymentsWithTheirLastRun(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		owner, viewer := f.actor(teams.RoleOwner), f.actor(teams.RoleViewer)
		all, err := f.svc.All(ctx, viewer)
		require.NoError(t, err)
		require.Empty(t, all)

		_, err = f.svc.Deploy(ctx, owner, templates.StarterSummary, deployments.Staging, 1)
		require.NoError(t, err)
		_, err = f.svc.Deploy(ctx, owner, templates.StarterSummary, deployments.Production, 1)
		require.NoError(t, err)
		_, err = f.svc.Deploy(ctx, owner, templates.StarterFanOut, deployments.Production, 1)
		require.NoError(t, err)
		require.NoError(t, f.svc.Pause(ctx, owner, templates.StarterFanOut, deployments.Production))
		_, _, err = f.svc.Trigger(ctx, owner, templates.StarterSummary, deployments.Production, map[string]any{"text": "one"}, "")
		require.NoError(t, err)
		last, _, err := f.svc.Trigger(ctx, owner, templates.StarterSummary, deployments.Production, map[string]any{"text": "two"}, "")
		require.NoError(t, err)

		all, err = f.svc.All(ctx, viewer)
		require.NoError(t, err)
		require.Len(t, all, 3)
		var got []string
		for _, s := range all {
			got = append(got, s.Template+"/"+s.Environment)
			require.NotEmpty(t, s.TemplateName)
		}
		require.Equal(t, []string{"fan-out/production", "summary/production", "summary/staging"}, got, "by template name, production first")
		require.True(t, all[0].Paused)
		require.Zero(t, all[0].LastRunID)
		require.Nil(t, all[0].LastRunAt)
		require.Equal(t, last.ID, all[1].LastRunID, "the last run, not the first")
		require.Equal(t, last.Status, all[1].LastRunStatus)
		require.NotNil(t, all[1].LastRunAt)
		require.Zero(t, all[2].LastRunID)

		others, err := f.svc.All(ctx, f.other)
		require.NoError(t, err)
		require.Empty(t, others, "another team sees none of them")
		_, err = f.svc.All(ctx, access.Actor{TeamID: f.team.ID, Role: "nobody"})
		require.ErrorIs(t, err, access.ErrForbidden)
	})
}
