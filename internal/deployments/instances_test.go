package deployments_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/ai"
	nofx "github.com/nofxhq/nofx/internal/app"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
)

// startInstance builds and starts a NOFX process on the database at url,
// with its scheduler on c's clock and looking for due ticks every 5ms.
func startInstance(t *testing.T, url string, c *clock) *nofx.App {
	t.Helper()
	cfg := &config.Config{
		DatabaseURL:   url,
		DataDir:       t.TempDir(),
		Workers:       2,
		SessionSecret: []byte("test-session-secret-0123456789abcdef"),
		SecretKey:     []byte("test-secret-key-0123456789abcdef"),
		LogFormat:     "text",
		LogLevel:      "error",
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := nofx.New(context.Background(), cfg, log, true, nofx.Tuning{
		Lease: 5 * time.Second, RescueEvery: time.Second, ShutdownGrace: time.Second, PollInterval: 20 * time.Millisecond,
		ProviderRetry: ai.RetryPolicy{Attempts: 1, Base: time.Millisecond, Max: time.Millisecond},
		ScheduleEvery: 5 * time.Millisecond,
	})
	require.NoError(t, err)
	a.Deployments.Now = c.Now
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, a.Close(context.Background())) })
	return a
}

// TestTwoInstancesRunEachTickOnce runs two NOFX processes on one PostgreSQL
// database: both schedulers loop, and each tick both are also asked to run
// due deployments concurrently, many times. Every tick gets exactly one run.
func TestTwoInstancesRunEachTickOnce(t *testing.T) {
	url := dbtest.PostgresURL(t)
	c := &clock{t: utc(12, 0, 30)}
	a1 := startInstance(t, url, c)
	a2 := startInstance(t, url, c)
	ctx := context.Background()

	team, err := teams.Create(ctx, a1.DB, "Acme", "acme", false)
	require.NoError(t, err)
	userID := addUser(t, a1.DB, "owner@example.com")
	require.NoError(t, teams.AddMember(ctx, a1.DB, team.ID, userID, teams.RoleOwner))
	owner := access.Actor{UserID: userID, TeamID: team.ID, Role: teams.RoleOwner}
	require.NoError(t, templates.SeedStarters(ctx, a1.DB, team.ID, owner))
	_, v, err := templates.LoadVersion(ctx, a1.DB, team.ID, templates.StarterSummary, 0)
	require.NoError(t, err)
	spec, err := v.Spec(templates.StarterSummary)
	require.NoError(t, err)
	spec.Inputs[0].Default = "Every minute"
	v2, _, err := a1.Templates.Save(ctx, owner, templates.StarterSummary, spec, "a default for the schedule")
	require.NoError(t, err)
	_, err = a1.Deployments.Deploy(ctx, owner, templates.StarterSummary, deployments.Production, v2.Number)
	require.NoError(t, err)
	_, err = a1.Deployments.SetSchedule(ctx, owner, templates.StarterSummary, deployments.Production, "* * * * *")
	require.NoError(t, err)

	scheduled := func(tick time.Time) int {
		var n int
		require.NoError(t, db.Get(ctx, a1.DB, &n, `SELECT COUNT(*) FROM runs WHERE scheduled_for = ?`, tick))
		return n
	}
	const ticks = 8
	for i := 1; i <= ticks; i++ {
		tick := utc(12, i, 0)
		c.Set(tick.Add(time.Duration(i) * time.Second)) // at or a little after the tick
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for j := range 20 {
			a := []*nofx.App{a1, a2}[j%2]
			wg.Go(func() {
				if _, err := a.Deployments.RunDue(ctx); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, 1, scheduled(tick), "tick %s", tick.Format(time.TimeOnly))
		// Whichever call or loop ran the tick has committed by now: the
		// others either waited for it on the row or read after it.
		d, err := a2.Deployments.Get(ctx, owner, templates.StarterSummary, deployments.Production)
		require.NoError(t, err)
		require.NotNil(t, d.NextRunAt)
		require.True(t, d.NextRunAt.Equal(tick.Add(time.Minute)), "next run %v after tick %v", d.NextRunAt, tick)
	}
	var total, distinct int
	require.NoError(t, db.Get(ctx, a1.DB, &total, `SELECT COUNT(*) FROM runs WHERE triggered_by = 'schedule'`))
	require.NoError(t, db.Get(ctx, a1.DB, &distinct, `SELECT COUNT(DISTINCT scheduled_for) FROM runs WHERE triggered_by = 'schedule'`))
	require.Equal(t, ticks, total)
	require.Equal(t, ticks, distinct)
}

func TestStatsHaveAnIndex(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		var n int
		if d.Dialect == db.Postgres {
			require.NoError(t, db.Get(ctx, d, &n, `SELECT COUNT(*) FROM pg_indexes
				WHERE schemaname = current_schema() AND indexname = 'runs_deployment_created_idx'`))
			require.Equal(t, 1, n)
			return
		}
		require.NoError(t, db.Get(ctx, d, &n, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'runs_deployment_created_idx'`))
		require.Equal(t, 1, n)
		var plan []struct {
			ID     int    `db:"id"`
			Parent int    `db:"parent"`
			NotU   int    `db:"notused"`
			Detail string `db:"detail"`
		}
		require.NoError(t, db.Select(ctx, d, &plan, `EXPLAIN QUERY PLAN SELECT COUNT(*) FROM runs WHERE deployment_id = ? AND created_at >= ?`,
			1, time.Now().UTC()))
		require.NotEmpty(t, plan)
		require.Contains(t, plan[0].Detail, "runs_deployment_created_idx", "the stats query reads the index on (deployment_id, created_at)")
	})
}
