package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/runs"
)

// jobsOf counts the step jobs River holds for run runID's steps.
func jobsOf(t *testing.T, d *db.DB, runID int64) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(context.Background(), d, &n,
		`SELECT COUNT(*) FROM river_job WHERE kind = 'nofx_step' AND id IN (SELECT job_id FROM steps WHERE run_id = ?)`, runID))
	return n
}

func TestChainIsHandedOnWithoutJobs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, options{})
		run := e.create(`{"goal":"chain","steps":[
			{"name":"a","kind":"text","prompt":"a{{inputs.x}}"},
			{"name":"b","kind":"llm","provider":"simulated","model":"echo","prompt":"b{{steps.a.output}}","needs":["a"]},
			{"name":"c","kind":"text","prompt":"c{{steps.b.output}}","needs":["b"]}]}`, map[string]any{"x": 1})
		run, steps := e.waitStatus(run.ID, runs.RunSucceeded, runs.RunFailed)
		require.Equal(t, runs.RunSucceeded, run.Status, "%+v", stepStatuses(steps))
		require.Equal(t, "cba1", stepNamed(t, steps, "c").Output)
		for _, s := range steps {
			require.Equal(t, 1, s.Attempt, "step %s ran once", s.Name)
		}
		require.Equal(t, 1, jobsOf(t, d, run.ID), "the worker that finished a step took the next itself")
		require.Equal(t, []string{"run.created", "a:step.started", "run.running", "a:step.succeeded", "b:step.started",
			"b:step.succeeded", "c:step.started", "c:step.succeeded", "run.succeeded"}, e.eventKinds(run.ID))
	})
}

func TestFanOutTakesOneStepAndQueuesTheRest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, options{})
		run := e.create(`{"goal":"fan","steps":[
			{"name":"a","kind":"text","prompt":"a"},
			{"name":"b","kind":"text","prompt":"b{{steps.a.output}}","needs":["a"]},
			{"name":"c","kind":"text","prompt":"c{{steps.a.output}}","needs":["a"]},
			{"name":"d","kind":"text","prompt":"d{{steps.a.output}}","needs":["a"]}]}`, nil)
		run, steps := e.waitStatus(run.ID, runs.RunSucceeded, runs.RunFailed)
		require.Equal(t, runs.RunSucceeded, run.Status, "%+v", stepStatuses(steps))
		require.Equal(t, 3, jobsOf(t, d, run.ID), "a's job, and jobs for two of the three steps it readied")
		kinds := e.eventKinds(run.ID)
		for _, name := range []string{"a", "b", "c", "d"} {
			require.Equal(t, 1, count(kinds, name+":step.succeeded"))
		}
	})
}

// A worker that dies holding a step it took on its own (no job) loses it to
// the rescue of expired leases like any other step.
func TestTakenStepOfALostWorkerIsRescued(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		e := enqueueOnly(t, d)
		svc, broker := e.svc, e.broker
		run := e.create(`{"goal":"crash","steps":[
			{"name":"a","kind":"text","prompt":"a"},
			{"name":"b","kind":"text","prompt":"b{{steps.a.output}}","needs":["a"]}]}`, nil)
		_, steps, err := svc.Get(ctx, e.actor, run.ID)
		require.NoError(t, err)
		a := stepNamed(t, steps, "a")
		claim, err := svc.Claim(ctx, run.ID, a.ID, a.JobID.Int64, time.Minute)
		require.NoError(t, err)
		next, took, err := svc.CompleteAndTake(ctx, claim, "a", runs.Usage{}, 50*time.Millisecond)
		require.NoError(t, err)
		require.True(t, took)
		require.Equal(t, "b", next.Step.Name)
		require.Equal(t, "ba", next.Prompt)
		_, steps, err = svc.Get(ctx, e.actor, run.ID)
		require.NoError(t, err)
		b := stepNamed(t, steps, "b")
		require.Equal(t, runs.StepRunning, b.Status)
		require.False(t, b.JobID.Valid, "a taken step has no job")
		// The worker "dies" here: nobody renews b's lease.

		e.eng = startEngine(t, d, svc, broker, options{workers: 2})
		svc.Scheduler = e.eng
		run, steps = e.waitStatus(run.ID, runs.RunSucceeded, runs.RunFailed)
		require.Equal(t, runs.RunSucceeded, run.Status)
		require.Equal(t, "ba", stepNamed(t, steps, "b").Output)
		require.Equal(t, 2, stepNamed(t, steps, "b").Attempt, "the lost attempt counts")
		require.Equal(t, 1, count(e.eventKinds(run.ID), "b:step.succeeded"))

		// The dead worker's late result is refused: a step never succeeds twice.
		require.ErrorIs(t, svc.Complete(ctx, next, "late", runs.Usage{}), runs.ErrLeaseLost)
	})
}
