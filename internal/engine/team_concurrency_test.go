package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
)

// watchRunning samples, until the test ends, how many of a team's steps the
// database shows running, and returns the most it saw.
func watchRunning(t *testing.T, d *db.DB, teamID int64) func() int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu   sync.Mutex
		most int
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			var n int
			err := db.Get(ctx, d.Reader(), &n, `SELECT COUNT(*) FROM steps s JOIN runs r ON r.id = s.run_id
				WHERE s.status = 'running' AND r.team_id = ?`, teamID)
			if err == nil {
				mu.Lock()
				most = max(most, n)
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return most
	}
}

// Team A floods two engines (two processes on one database) with slow
// steps: the database never shows more than the team's limit of them
// running, none of them uses an attempt while it waits, and team B's run
// finishes while team A's backlog is still waiting.
func TestTeamConcurrencyHoldsUnderFlood(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		const limit, flood = 3, 15
		broker := live.NewLocal()
		svc1, svc2 := newService(d, broker), newService(d, broker)
		eng1 := startEngine(t, d, svc1, broker, options{workers: 8, teamLimit: limit})
		eng2 := startEngine(t, d, svc2, broker, options{workers: 8, teamLimit: limit})
		svc1.Scheduler, svc2.Scheduler = eng1, eng2
		a := &env{t: t, db: d, svc: svc1, eng: eng1, broker: broker, actor: newActor(t, d, teams.RoleOwner)}
		b := a.as(t)
		b.svc = svc2
		most := watchRunning(t, d, a.actor.TeamID)

		ids := make([]int64, flood)
		for i := range flood {
			ids[i] = a.create(`{"goal":"flood","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo",
				"prompt":"slow","options":{"latency_ms":500}}]}`, nil).ID
		}
		a.wait(ids[0], "team A's steps to start", func(runs.Run, []runs.Step) bool { return most() > 0 })

		started := time.Now()
		run := b.create(`{"goal":"quick","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"hi"}]}`, nil)
		run, steps := b.waitStatus(run.ID, runs.RunSucceeded, runs.RunFailed)
		require.Equal(t, runs.RunSucceeded, run.Status)
		require.Equal(t, "hi", steps[0].Output)
		require.Less(t, time.Since(started), 3*time.Second, "team B did not wait behind team A's backlog")
		var waiting int
		require.NoError(t, db.Get(context.Background(), d.Reader(), &waiting,
			`SELECT COUNT(*) FROM runs WHERE team_id = ? AND status IN ('queued', 'running')`, a.actor.TeamID))
		require.Positive(t, waiting, "team B finished while team A still had runs waiting")

		for _, id := range ids {
			run, steps := a.waitStatus(id, runs.RunSucceeded, runs.RunFailed)
			require.Equal(t, runs.RunSucceeded, run.Status)
			require.Equal(t, 1, steps[0].Attempt, "waiting for the team's turn used no attempt")
		}
		require.LessOrEqual(t, most(), limit, "never more than the team's limit of steps running")
		require.Equal(t, limit, most(), "the team used its whole limit")
	})
}
