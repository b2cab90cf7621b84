package runs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/runs/runstest"
)

// takeOf is the take a worker would ask for: the run's first step, for
// its job.
func (e serviceEnv) takeOf(t *testing.T, runID int64) runs.Take {
	t.Helper()
	_, steps, err := e.svc.Get(e.ctx, e.actor, runID)
	require.NoError(t, err)
	return runs.Take{RunID: runID, StepID: steps[0].ID, JobID: steps[0].JobID.Int64}
}

func (e serviceEnv) createPlan(t *testing.T, js string) runs.Run {
	t.Helper()
	run, _, err := e.svc.Create(e.ctx, e.actor, runs.CreateInput{Plan: mustPlan(t, js)})
	require.NoError(t, err)
	return run
}

func (e serviceEnv) run(t *testing.T, id int64) (runs.Run, []runs.Step) {
	t.Helper()
	run, steps, err := e.svc.Get(e.ctx, e.actor, id)
	require.NoError(t, err)
	return run, steps
}

const oneStep = `{"goal":"g","steps":[{"name":"a","kind":"text","prompt":"hello"}]}`

func TestClaimsAndSuccessesOfManyRunsInOneTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setupService(t, d)
		_, err := db.Exec(e.ctx, d, `UPDATE plans SET concurrency = -1`) // the free plan's limit is not what this is about
		require.NoError(t, err)
		var takes []runs.Take
		for range 5 {
			takes = append(takes, e.takeOf(t, e.createPlan(t, oneStep).ID))
		}
		// The same step twice, and a run that does not exist.
		takes = append(takes, takes[0], runs.Take{RunID: 1 << 40, StepID: 1, JobID: 1})
		taken := e.svc.ClaimAll(e.ctx, takes, time.Minute, 0)
		require.Len(t, taken, len(takes))
		for i := range 5 {
			require.NoError(t, taken[i].Err, "take %d", i)
			require.Equal(t, takes[i].StepID, taken[i].Claim.Step.ID)
			run, steps := e.run(t, takes[i].RunID)
			require.Equal(t, runs.RunRunning, run.Status)
			require.Equal(t, runs.StepRunning, steps[0].Status)
			require.Equal(t, taken[i].Claim.Lease, steps[0].LeaseToken)
		}
		require.ErrorIs(t, taken[5].Err, runs.ErrNotClaimable, "a step taken earlier in the same batch")
		require.ErrorIs(t, taken[6].Err, runs.ErrNotClaimable, "a run that does not exist")

		// One claim lost its lease meanwhile: it records nothing, and the
		// others are recorded all the same.
		stale := taken[1].Claim
		stale.Lease = "someone else's"
		var all []runs.Success
		for i := range 5 {
			c := taken[i].Claim
			if i == 1 {
				c = stale
			}
			// Each its own values: the batch writes them all in one
			// statement on PostgreSQL, and none may land on another's row.
			all = append(all, runs.Success{Claim: c, Output: fmt.Sprintf("out %d", i),
				Usage: runs.Usage{InputTokens: int64(i + 1), OutputTokens: int64(10 * (i + 1)), CostMicros: int64(100 * (i + 1))}})
		}
		recorded := e.svc.CompleteAll(e.ctx, all)
		for i, r := range recorded {
			run, steps := e.run(t, takes[i].RunID)
			if i == 1 {
				require.ErrorIs(t, r.Err, runs.ErrLeaseLost)
				require.Equal(t, runs.StepRunning, steps[0].Status)
				continue
			}
			require.NoError(t, r.Err)
			require.Equal(t, runs.RunSucceeded, run.Status)
			require.Equal(t, fmt.Sprintf("out %d", i), steps[0].Output)
			require.EqualValues(t, i+1, steps[0].InputTokens)
			require.EqualValues(t, 10*(i+1), steps[0].OutputTokens)
			require.EqualValues(t, 100*(i+1), steps[0].CostMicros)
			require.EqualValues(t, []int64{int64(i + 1), int64(10 * (i + 1)), int64(100 * (i + 1))}, []int64{run.InputTokens, run.OutputTokens, run.CostMicros})
			require.Empty(t, steps[0].LeaseToken, "the lease ends with the step")
			require.Nil(t, steps[0].LeaseExpiresAt)
			require.NotNil(t, steps[0].FinishedAt)
			require.Equal(t, 1, steps[0].Attempt)

			events, err := e.svc.Events(e.ctx, e.actor, takes[i].RunID, 0)
			require.NoError(t, err)
			var kinds []string
			for _, ev := range events {
				require.Equal(t, takes[i].RunID, ev.RunID)
				kinds = append(kinds, ev.Kind)
			}
			require.Equal(t, []string{"run.created", "step.started", "run.running", "step.succeeded", "run.succeeded"}, kinds, "run %d's timeline, in order", i)
		}
	})
}

func TestSuccessesOfOneRunInOneBatchSettleItOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setupService(t, d)
		run := e.createPlan(t, `{"goal":"g","steps":[
			{"name":"a","kind":"text","prompt":"A"},
			{"name":"b","kind":"text","prompt":"B"},
			{"name":"c","kind":"text","prompt":"{{steps.a.output}}+{{steps.b.output}}","needs":["a","b"]}]}`)
		_, steps := e.run(t, run.ID)
		taken := e.svc.ClaimAll(e.ctx, []runs.Take{
			{RunID: run.ID, StepID: steps[0].ID, JobID: steps[0].JobID.Int64},
			{RunID: run.ID, StepID: steps[1].ID, JobID: steps[1].JobID.Int64},
		}, time.Minute, 0)
		require.NoError(t, taken[0].Err)
		require.NoError(t, taken[1].Err)
		recorded := e.svc.CompleteAll(e.ctx, []runs.Success{
			{Claim: taken[0].Claim, Output: "x", Lease: time.Minute},
			{Claim: taken[1].Claim, Output: "y", Lease: time.Minute},
		})
		require.NoError(t, recorded[0].Err)
		require.NoError(t, recorded[1].Err)
		// c, readied by both together, is taken by the first; the second
		// finds nothing left to take.
		require.True(t, recorded[0].Took)
		require.False(t, recorded[1].Took)
		require.Equal(t, "c", recorded[0].Next.Step.Name)
		require.Equal(t, "x+y", recorded[0].Next.Prompt)
		_, steps = e.run(t, run.ID)
		require.Equal(t, runs.StepRunning, steps[2].Status)
		require.False(t, steps[2].JobID.Valid, "a step taken at once gets no job")
	})
}

func TestATeamAtItsLimitIsCountedOncePerBatch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setupService(t, d)
		var takes []runs.Take
		for range 5 {
			takes = append(takes, e.takeOf(t, e.createPlan(t, oneStep).ID))
		}
		taken := e.svc.ClaimAll(e.ctx, takes[:4], time.Minute, 2)
		var claimed, busy int
		for _, tk := range taken {
			switch {
			case tk.Err == nil:
				claimed++
			case errors.Is(tk.Err, runs.ErrTeamBusy):
				busy++
			default:
				t.Fatalf("unexpected %v", tk.Err)
			}
		}
		require.Equal(t, 2, claimed)
		require.Equal(t, 2, busy)
		// The team's steps that stayed queued are as they were.
		for i, tk := range taken {
			if tk.Err != nil {
				run, steps := e.run(t, takes[i].RunID)
				require.Equal(t, runs.RunQueued, run.Status)
				require.Equal(t, runs.StepQueued, steps[0].Status)
			}
		}
		// The next batch counts the two running ones.
		require.ErrorIs(t, e.svc.ClaimAll(e.ctx, takes[4:], time.Minute, 2)[0].Err, runs.ErrTeamBusy)
		require.NoError(t, e.svc.ClaimAll(e.ctx, takes[4:], time.Minute, 3)[0].Err)
	})
}

// failingFor schedules jobs like runstest.Jobs, except those of run: the
// transaction that would enqueue one fails.
type failingFor struct {
	runstest.Jobs
	run int64
}

func (f *failingFor) Schedule(ctx context.Context, tx *sqlx.Tx, jobs []runs.StepJob) ([]int64, error) {
	for _, j := range jobs {
		if j.RunID == f.run {
			return nil, errors.New("no jobs for this run")
		}
	}
	return f.Jobs.Schedule(ctx, tx, jobs)
}

func TestASuccessThatCannotBeRecordedHoldsBackNoOther(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setupService(t, d)
		chain := `{"goal":"g","steps":[{"name":"a","kind":"text","prompt":"A"},{"name":"b","kind":"text","prompt":"B","needs":["a"]}]}`
		var takes []runs.Take
		for range 3 {
			takes = append(takes, e.takeOf(t, e.createPlan(t, chain).ID))
		}
		taken := e.svc.ClaimAll(e.ctx, takes, time.Minute, 0)
		var all []runs.Success
		for _, tk := range taken {
			require.NoError(t, tk.Err)
			all = append(all, runs.Success{Claim: tk.Claim, Output: "done"})
		}
		// Readying run 2's next step fails: the batch's transaction fails,
		// and each success is tried again alone.
		jobs := &failingFor{run: takes[1].RunID}
		e.svc.Scheduler = jobs
		recorded := e.svc.CompleteAll(e.ctx, all)
		require.NoError(t, recorded[0].Err)
		require.ErrorContains(t, recorded[1].Err, "no jobs for this run")
		require.NoError(t, recorded[2].Err)
		for i, want := range []string{runs.StepSucceeded, runs.StepRunning, runs.StepSucceeded} {
			_, steps := e.run(t, takes[i].RunID)
			require.Equal(t, want, steps[0].Status, "run %d", i)
		}
	})
}

// A run that another transaction holds locked does not hold up the rest of
// its batch for longer than the batch's lock wait (PostgreSQL; SQLite
// writes one transaction at a time).
func TestARunHeldLockedDoesNotHoldUpItsBatch(t *testing.T) {
	d := dbtest.Postgres(t)
	e := setupService(t, d)
	var takes []runs.Take
	for range 2 {
		takes = append(takes, e.takeOf(t, e.createPlan(t, oneStep).ID))
	}
	taken := e.svc.ClaimAll(e.ctx, takes, time.Minute, 0)
	require.NoError(t, taken[0].Err)
	require.NoError(t, taken[1].Err)

	holder, err := d.BeginTxx(e.ctx, nil)
	require.NoError(t, err)
	defer holder.Rollback() //nolint:errcheck // released below
	_, err = holder.ExecContext(e.ctx, `SELECT id FROM runs WHERE id = $1 FOR UPDATE`, takes[0].RunID)
	require.NoError(t, err)

	// The free run's success is recorded while the other is still held.
	freed := make(chan bool, 1)
	go func() {
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			var status string
			if err := db.Get(e.ctx, d, &status, `SELECT status FROM steps WHERE id = ?`, takes[1].StepID); err == nil && status == runs.StepSucceeded {
				freed <- true
				_ = holder.Rollback()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		freed <- false
		_ = holder.Rollback()
	}()
	recorded := e.svc.CompleteAll(e.ctx, []runs.Success{
		{Claim: taken[0].Claim, Output: "held"},
		{Claim: taken[1].Claim, Output: "free"},
	})
	require.True(t, <-freed, "the free run was recorded while the other was held")
	require.NoError(t, recorded[1].Err)
	require.NoError(t, recorded[0].Err, "the held one is recorded once its lock is let go")
}
