package engine_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/engine"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/pricing"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
)

// env is an engine with its runs service on one database.
type env struct {
	t      *testing.T
	db     *db.DB
	svc    *runs.Service
	eng    *engine.Engine
	broker *live.Local
	actor  access.Actor
}

type options struct {
	workers   int
	lease     time.Duration
	teamLimit int // steps of one team at once; 0 is no limit
	log       *slog.Logger
	keys      engine.KeyResolver
}

func newService(d *db.DB, broker *live.Local) *runs.Service {
	return &runs.Service{
		DB:        d,
		Broker:    broker,
		Providers: ai.NewRegistry(ai.NewSimulated(1)),
		RetryBase: 5 * time.Millisecond,
		RetryMax:  50 * time.Millisecond,
	}
}

func startEngine(t *testing.T, d *db.DB, svc *runs.Service, broker *live.Local, o options) *engine.Engine {
	t.Helper()
	if o.lease == 0 {
		o.lease = 5 * time.Second
	}
	eng, err := engine.New(engine.Config{
		DB:            d,
		Runs:          svc,
		Providers:     svc.Providers,
		Broker:        broker,
		Log:           cmp.Or(o.log, slog.New(slog.NewTextHandler(io.Discard, nil))),
		Workers:       o.workers,
		Lease:         o.lease,
		RescueEvery:   100 * time.Millisecond,
		ShutdownGrace: 2 * time.Second,
		PollInterval:  20 * time.Millisecond,

		TeamConcurrency: o.teamLimit,
		Keys:            o.keys,
	})
	require.NoError(t, err)
	require.NoError(t, eng.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, eng.Stop(context.Background())) })
	return eng
}

func setup(t *testing.T, d *db.DB, o options) *env {
	t.Helper()
	if o.workers == 0 {
		o.workers = 4
	}
	broker := live.NewLocal()
	svc := newService(d, broker)
	eng := startEngine(t, d, svc, broker, o)
	svc.Scheduler = eng
	return &env{t: t, db: d, svc: svc, eng: eng, broker: broker, actor: newActor(t, d, teams.RoleOwner)}
}

// enqueueOnly is an env whose engine has no workers: steps stay queued
// until a test claims them or starts workers (e.eng, e.svc.Scheduler).
func enqueueOnly(t *testing.T, d *db.DB) *env {
	t.Helper()
	broker := live.NewLocal()
	svc := newService(d, broker)
	svc.Scheduler = startEngine(t, d, svc, broker, options{workers: 0})
	return &env{t: t, db: d, svc: svc, broker: broker, actor: newActor(t, d, teams.RoleOwner)}
}

var actorCount int

func newActor(t *testing.T, d *db.DB, role teams.Role) access.Actor {
	t.Helper()
	actorCount++
	user, team, err := (&auth.Service{DB: d}).SignUp(context.Background(), auth.SignUp{
		Email: fmt.Sprintf("user%d-%d@example.com", actorCount, time.Now().UnixNano()), Password: "long enough pw",
	})
	require.NoError(t, err)
	return access.Actor{UserID: user.ID, TeamID: team.ID, Role: role}
}

func mustPlan(t *testing.T, js string) plan.Plan {
	t.Helper()
	p, err := plan.Parse([]byte(js))
	require.NoError(t, err)
	return p
}

func (e *env) create(js string, inputs map[string]any) runs.Run {
	e.t.Helper()
	run, _, err := e.svc.Create(context.Background(), e.actor, runs.CreateInput{Plan: mustPlan(e.t, js), Inputs: inputs})
	require.NoError(e.t, err)
	return run
}

// wait returns the run once cond holds, re-checking whenever the run
// announces a change (and every 250ms for changes made elsewhere).
func (e *env) wait(runID int64, what string, cond func(runs.Run, []runs.Step) bool) (runs.Run, []runs.Step) {
	e.t.Helper()
	changes, unsubscribe := e.broker.Subscribe(runID)
	defer unsubscribe()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		run, steps, err := e.svc.Get(context.Background(), e.actor, runID)
		require.NoError(e.t, err)
		if cond(run, steps) {
			return run, steps
		}
		select {
		case <-changes:
		case <-tick.C:
		case <-deadline:
			e.t.Fatalf("run %d: timed out waiting for %s; status %s, steps %+v", runID, what, run.Status, stepStatuses(steps))
		}
	}
}

func (e *env) waitStatus(runID int64, statuses ...string) (runs.Run, []runs.Step) {
	e.t.Helper()
	return e.wait(runID, fmt.Sprint(statuses), func(r runs.Run, _ []runs.Step) bool { return slices.Contains(statuses, r.Status) })
}

func stepStatuses(steps []runs.Step) map[string]string {
	m := map[string]string{}
	for _, s := range steps {
		m[s.Name] = s.Status
	}
	return m
}

func stepNamed(t *testing.T, steps []runs.Step, name string) runs.Step {
	t.Helper()
	for _, s := range steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no step %s", name)
	return runs.Step{}
}

func (e *env) eventKinds(runID int64) []string {
	e.t.Helper()
	events, err := e.svc.Events(context.Background(), e.actor, runID, 0)
	require.NoError(e.t, err)
	var kinds []string
	for _, ev := range events {
		kind := ev.Kind
		if ev.Step != "" {
			kind = ev.Step + ":" + kind
		}
		kinds = append(kinds, kind)
	}
	return kinds
}

func TestOneStepRun(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, options{})
		run := e.create(`{"goal":"greet","steps":[{"name":"draft","kind":"llm","provider":"simulated","model":"echo","prompt":"Hello {{inputs.who}}"}]}`,
			map[string]any{"who": "world"})
		require.Equal(t, runs.RunQueued, run.Status)

		run, steps := e.waitStatus(run.ID, runs.RunSucceeded, runs.RunFailed)
		require.Equal(t, runs.RunSucceeded, run.Status)
		require.Equal(t, 1, run.StepsDone)
		require.NotNil(t, run.StartedAt)
		require.NotNil(t, run.FinishedAt)
		step := steps[0]
		require.Equal(t, "Hello world", step.RenderedPrompt)
		require.Equal(t, "Hello world", step.Output)
		require.Equal(t, 1, step.Attempt)
		require.Equal(t, int64(2), step.InputTokens)
		require.Equal(t, int64(2), step.OutputTokens)
		require.Equal(t, int64(2), run.InputTokens)
		require.Equal(t, []string{"run.created", "draft:step.started", "run.running", "draft:step.succeeded", "run.succeeded"}, e.eventKinds(run.ID))
	})
}

func TestDiamondRunsInDependencyOrder(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, options{})
		run := e.create(`{"goal":"diamond","steps":[
			{"name":"a","kind":"text","prompt":"A({{inputs.x}})"},
			{"name":"b","kind":"llm","provider":"simulated","model":"echo","prompt":"B<{{steps.a.output}}>","needs":["a"],"options":{"latency_ms":30}},
			{"name":"c","kind":"text","prompt":"C<{{steps.a.output}}>","needs":["a"]},
			{"name":"d","kind":"text","prompt":"{{steps.b.output}}+{{steps.c.output}}","needs":["b","c"]}]}`,
			map[string]any{"x": 1})
		run, steps := e.waitStatus(run.ID, runs.RunSucceeded, runs.RunFailed)
		require.Equal(t, runs.RunSucceeded, run.Status, "%+v", stepStatuses(steps))
		require.Equal(t, "B<A(1)>+C<A(1)>", stepNamed(t, steps, "d").Output)
		require.Equal(t, 4, run.StepsDone)
		dStart := stepNamed(t, steps, "d").StartedAt
		for _, need := range []string{"b", "c"} {
			require.False(t, stepNamed(t, steps, need).FinishedAt.After(*dStart), "d starts after %s finished", need)
		}
	})
}

func TestRetriesWithBackoffThenFails(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, options{})
		run := e.create(`{"goal":"flaky","steps":[
			{"name":"call","kind":"llm","provider":"simulated","model":"echo","prompt":"x","max_attempts":3,"options":{"fail_rate":1,"fail_status":503}},
			{"name":"after","kind":"text","prompt":"{{steps.call.output}}","needs":["call"]},
			{"name":"alone","kind":"text","prompt":"independent"}]}`, nil)
		run, steps := e.waitStatus(run.ID, runs.RunSucceeded, runs.RunFailed)
		require.Equal(t, runs.RunFailed, run.Status)
		call := stepNamed(t, steps, "call")
		require.Equal(t, runs.StepFailed, call.Status)
		require.Equal(t, 3, call.Attempt)
		require.Contains(t, call.Error, "503")
		require.Equal(t, runs.StepSkipped, stepNamed(t, steps, "after").Status)
		require.Equal(t, runs.StepSucceeded, stepNamed(t, steps, "alone").Status, "independent steps still run")
		require.Contains(t, run.Error, "call")
		require.Equal(t, 3, run.StepsDone)

		kinds := e.eventKinds(run.ID)
		require.Equal(t, 3, count(kinds, "call:step.started"), "each attempt is an event")
		require.Equal(t, 2, count(kinds, "call:step.retrying"))
		require.Equal(t, 1, count(kinds, "call:step.failed"))
		require.Equal(t, 1, count(kinds, "after:step.skipped"))
		require.Equal(t, "run.failed", kinds[len(kinds)-1])
	})
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func TestNonRetryableErrorFailsAtOnce(t *testing.T) {
	t.Parallel()
	e := setup(t, dbtest.SQLite(t), options{})
	run := e.create(`{"goal":"bad request","steps":[{"name":"call","kind":"llm","provider":"simulated","model":"echo","prompt":"x","max_attempts":5,"options":{"fail_rate":1,"fail_status":400}}]}`, nil)
	run, steps := e.waitStatus(run.ID, runs.RunFailed)
	require.Equal(t, 1, steps[0].Attempt)
	require.Contains(t, e.eventKinds(run.ID), "call:step.failed")
	require.NotContains(t, e.eventKinds(run.ID), "call:step.retrying")
}

func TestStepTimeout(t *testing.T) {
	t.Parallel()
	e := setup(t, dbtest.SQLite(t), options{})
	run := e.create(`{"goal":"slow","steps":[{"name":"slow","kind":"llm","provider":"simulated","model":"lorem","prompt":"x","timeout":"1s","max_attempts":1,"options":{"latency_ms":60000}}]}`, nil)
	run, steps := e.waitStatus(run.ID, runs.RunFailed, runs.RunSucceeded)
	require.Equal(t, runs.RunFailed, run.Status)
	require.Equal(t, runs.StepTimedOut, steps[0].Status)
	require.Contains(t, steps[0].Error, "timed out after 1s")
	require.Contains(t, e.eventKinds(run.ID), "slow:step.timed_out")
}

func TestCancelStopsRunningAndQueuedSteps(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, options{})
		run := e.create(`{"goal":"long","steps":[
			{"name":"slow","kind":"llm","provider":"simulated","model":"lorem","prompt":"x","timeout":"5m","options":{"latency_ms":120000}},
			{"name":"next","kind":"text","prompt":"after","needs":["slow"]}]}`, nil)
		e.wait(run.ID, "slow running", func(_ runs.Run, steps []runs.Step) bool { return steps[0].Status == runs.StepRunning })

		start := time.Now()
		require.NoError(t, e.svc.Cancel(context.Background(), e.actor, run.ID))
		run, steps := e.waitStatus(run.ID, runs.RunCancelled)
		require.Equal(t, runs.StepCancelled, stepNamed(t, steps, "slow").Status)
		require.Equal(t, runs.StepCancelled, stepNamed(t, steps, "next").Status, "queued steps never start")
		require.Less(t, time.Since(start), 30*time.Second)

		err := e.svc.Cancel(context.Background(), e.actor, run.ID)
		require.ErrorIs(t, err, runs.ErrConflict, "a finished run cannot be cancelled")

		// The cancelled worker records nothing more.
		events := e.eventKinds(run.ID)
		require.NotContains(t, events, "slow:step.succeeded")
		require.NotContains(t, events, "slow:step.failed")
	})
}

func TestApprovalRejectRetryApprove(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		e := setup(t, d, options{})
		run := e.create(`{"goal":"review","steps":[
			{"name":"draft","kind":"llm","provider":"simulated","model":"echo","prompt":"Draft about {{inputs.topic}}"},
			{"name":"review","kind":"approval","prompt":"Publish this? {{steps.draft.output}}","needs":["draft"]},
			{"name":"publish","kind":"text","prompt":"Published: {{steps.draft.output}}","needs":["review"]}]}`,
			map[string]any{"topic": "otters"})
		run, steps := e.waitStatus(run.ID, runs.RunWaiting)
		review := stepNamed(t, steps, "review")
		require.Equal(t, runs.StepWaiting, review.Status)
		require.Equal(t, "Publish this? Draft about otters", review.RenderedPrompt)

		require.ErrorIs(t, e.svc.Decide(ctx, e.actor, run.ID, "draft", true, ""), runs.ErrConflict, "only waiting approval steps can be decided")
		require.ErrorIs(t, e.svc.Decide(ctx, e.actor, run.ID, "nope", true, ""), db.ErrNotFound)
		viewer := e.actor
		viewer.Role = teams.RoleMember
		require.ErrorIs(t, e.svc.Decide(ctx, viewer, run.ID, "review", true, ""), access.ErrForbidden, "members cannot approve")

		require.NoError(t, e.svc.Decide(ctx, e.actor, run.ID, "review", false, "needs more otters"))
		run, steps = e.waitStatus(run.ID, runs.RunFailed)
		require.Equal(t, runs.StepFailed, stepNamed(t, steps, "review").Status)
		require.Equal(t, runs.StepSkipped, stepNamed(t, steps, "publish").Status)
		require.Contains(t, run.Error, "needs more otters")

		require.NoError(t, e.svc.Retry(ctx, e.actor, run.ID))
		run, steps = e.waitStatus(run.ID, runs.RunWaiting)
		require.Equal(t, 1, stepNamed(t, steps, "draft").Attempt, "succeeded steps keep their output and are not run again")
		require.NoError(t, e.svc.Decide(ctx, e.actor, run.ID, "review", true, "ship it"))
		run, steps = e.waitStatus(run.ID, runs.RunSucceeded)
		require.Equal(t, "Published: Draft about otters", stepNamed(t, steps, "publish").Output)

		events, err := e.svc.Events(ctx, e.actor, run.ID, 0)
		require.NoError(t, err)
		var approved runs.Event
		for _, ev := range events {
			if ev.Kind == "step.approved" {
				approved = ev
			}
		}
		require.Equal(t, e.actor.UserID, approved.ActorUserID.Int64, "the approval records who")
		require.Contains(t, approved.Message, "ship it")
		require.ErrorIs(t, e.svc.Retry(ctx, e.actor, run.ID), runs.ErrConflict, "a succeeded run cannot be retried")

		var actions []string
		require.NoError(t, db.Select(ctx, d, &actions, `SELECT action FROM audit_log WHERE team_id = ? AND action LIKE 'run.%' ORDER BY id`, e.actor.TeamID))
		require.Equal(t, []string{"run.create", "run.reject", "run.retry", "run.approve"}, actions,
			"each change is audited in its transaction; refused ones leave no row")
	})
}

func TestRerunLinksToOriginal(t *testing.T) {
	t.Parallel()
	e := setup(t, dbtest.SQLite(t), options{})
	orig := e.create(`{"goal":"again","steps":[{"name":"s","kind":"text","prompt":"v={{inputs.v}}"}]}`, map[string]any{"v": "7"})
	e.waitStatus(orig.ID, runs.RunSucceeded)
	again, err := e.svc.Rerun(context.Background(), e.actor, orig.ID)
	require.NoError(t, err)
	require.NotEqual(t, orig.ID, again.ID)
	require.Equal(t, orig.ID, again.RerunOf.Int64)
	_, steps := e.waitStatus(again.ID, runs.RunSucceeded)
	require.Equal(t, "v=7", steps[0].Output)
}

func TestIdempotencyKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		e := setup(t, d, options{})
		in := runs.CreateInput{Plan: mustPlan(t, `{"goal":"once","steps":[{"name":"s","kind":"text","prompt":"x"}]}`), IdempotencyKey: "abc"}
		first, replayed, err := e.svc.Create(ctx, e.actor, in)
		require.NoError(t, err)
		require.False(t, replayed)
		second, replayed, err := e.svc.Create(ctx, e.actor, in)
		require.NoError(t, err)
		require.True(t, replayed)
		require.Equal(t, first.ID, second.ID)

		other := newActor(t, d, teams.RoleOwner)
		third, replayed, err := e.svc.Create(ctx, other, in)
		require.NoError(t, err)
		require.False(t, replayed, "keys are per team")
		require.NotEqual(t, first.ID, third.ID)

		// A key older than 24 hours starts a new run.
		_, err = db.Exec(ctx, d, `UPDATE runs SET created_at = ? WHERE id = ?`, db.Now().Add(-25*time.Hour), first.ID)
		require.NoError(t, err)
		fourth, replayed, err := e.svc.Create(ctx, e.actor, in)
		require.NoError(t, err)
		require.False(t, replayed)
		require.NotEqual(t, first.ID, fourth.ID)
	})
}

func TestInvalidPlanWritesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		e := setup(t, d, options{})
		_, _, err := e.svc.Create(ctx, e.actor, runs.CreateInput{Plan: mustPlan(t, `{"goal":"bad","steps":[
			{"name":"a","kind":"llm","provider":"nowhere","model":"x","prompt":"{{inputs.missing}}"},
			{"name":"b","kind":"llm","provider":"simulated","model":"gpt-9","prompt":"x","options":{"fail_rate":2}}]}`)})
		var verrs interface{ Error() string }
		require.ErrorAs(t, err, &verrs)
		msg := err.Error()
		for _, field := range []string{"steps[0].provider", "steps[1].model", "steps[1].options", "inputs.missing"} {
			require.Contains(t, msg, field)
		}
		var n int
		require.NoError(t, db.Get(ctx, d, &n, `SELECT COUNT(*) FROM runs`))
		require.Zero(t, n)
	})
}

func TestPermissionsAndTeams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.SQLite(t)
	e := setup(t, d, options{})
	run := e.create(`{"goal":"mine","steps":[{"name":"s","kind":"text","prompt":"x"}]}`, nil)

	viewer := e.actor
	viewer.Role = teams.RoleViewer
	_, _, err := e.svc.Create(ctx, viewer, runs.CreateInput{Plan: mustPlan(t, `{"goal":"no","steps":[{"name":"s","kind":"text","prompt":"x"}]}`)})
	require.ErrorIs(t, err, access.ErrForbidden)
	_, _, err = e.svc.Get(ctx, viewer, run.ID)
	require.NoError(t, err, "viewers read runs")

	stranger := newActor(t, d, teams.RoleOwner)
	_, _, err = e.svc.Get(ctx, stranger, run.ID)
	require.ErrorIs(t, err, db.ErrNotFound, "another team's run is not found")
	require.ErrorIs(t, e.svc.Cancel(ctx, stranger, run.ID), db.ErrNotFound)
}

func TestLostWorkerIsRescued(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		// A node without workers enqueues; a "crashed" worker claims the
		// step and vanishes without finishing.
		e := enqueueOnly(t, d)
		svc, broker := e.svc, e.broker
		run := e.create(`{"goal":"crash","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"survive"}]}`, nil)
		_, steps, err := svc.Get(ctx, e.actor, run.ID)
		require.NoError(t, err)
		_, err = svc.Claim(ctx, run.ID, steps[0].ID, steps[0].JobID.Int64, 50*time.Millisecond)
		require.NoError(t, err)

		e.eng = startEngine(t, d, svc, broker, options{workers: 2, lease: 2 * time.Second})
		run, steps = e.waitStatus(run.ID, runs.RunSucceeded, runs.RunFailed)
		require.Equal(t, runs.RunSucceeded, run.Status)
		require.Equal(t, "survive", steps[0].Output)
		require.Equal(t, 2, steps[0].Attempt, "the lost attempt counts")
		require.Equal(t, 1, count(e.eventKinds(run.ID), "s:step.succeeded"))
	})
}

func TestShutdownReleasesRunningSteps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.SQLite(t)
	broker := live.NewLocal()
	svc := newService(d, broker)
	first, err := engine.New(engine.Config{DB: d, Runs: svc, Providers: svc.Providers, Broker: broker,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Workers: 2, ShutdownGrace: 100 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, first.Start(ctx))
	svc.Scheduler = first
	e := &env{t: t, db: d, svc: svc, broker: broker, actor: newActor(t, d, teams.RoleOwner)}
	run := e.create(`{"goal":"slow","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"done","timeout":"10m","options":{"latency_ms":3000}}]}`, nil)
	e.wait(run.ID, "running", func(_ runs.Run, steps []runs.Step) bool { return steps[0].Status == runs.StepRunning })

	require.NoError(t, first.Stop(ctx)) // the grace period is shorter than the step
	_, steps, err := svc.Get(ctx, e.actor, run.ID)
	require.NoError(t, err)
	require.Equal(t, runs.StepQueued, steps[0].Status, "released for the next start")
	require.Equal(t, 0, steps[0].Attempt, "an interrupted attempt does not count")
	require.Contains(t, e.eventKinds(run.ID), "s:step.interrupted")

	e.eng = startEngine(t, d, svc, broker, options{workers: 2})
	svc.Scheduler = e.eng
	run, steps = e.waitStatus(run.ID, runs.RunSucceeded)
	require.Equal(t, "done", steps[0].Output)
	require.Equal(t, 1, steps[0].Attempt)
}

func TestTwoEnginesShareWorkOnPostgres(t *testing.T) {
	d := dbtest.Postgres(t)
	broker := live.NewLocal()
	svcA, svcB := newService(d, broker), newService(d, broker)
	engA := startEngine(t, d, svcA, broker, options{workers: 4})
	engB := startEngine(t, d, svcB, broker, options{workers: 4})
	svcA.Scheduler, svcB.Scheduler = engA, engB
	e := &env{t: t, db: d, svc: svcA, broker: broker, actor: newActor(t, d, teams.RoleOwner)}

	const n = 40
	ids := make([]int64, n)
	for i := range n {
		ids[i] = e.create(`{"goal":"shared","steps":[
			{"name":"a","kind":"llm","provider":"simulated","model":"echo","prompt":"a{{inputs.i}}","options":{"latency_ms":5}},
			{"name":"b","kind":"llm","provider":"simulated","model":"echo","prompt":"b{{steps.a.output}}","needs":["a"]},
			{"name":"c","kind":"text","prompt":"c{{steps.a.output}}","needs":["a"]}]}`, map[string]any{"i": i}).ID
	}
	for i, id := range ids {
		run, steps := e.waitStatus(id, runs.RunSucceeded, runs.RunFailed)
		require.Equal(t, runs.RunSucceeded, run.Status)
		require.Equal(t, fmt.Sprintf("ba%d", i), stepNamed(t, steps, "b").Output)
		for _, s := range steps {
			require.Equal(t, 1, s.Attempt, "step %s ran once", s.Name)
		}
		kinds := e.eventKinds(id)
		for _, name := range []string{"a", "b", "c"} {
			require.Equal(t, 1, count(kinds, name+":step.succeeded"), "a step never succeeds twice")
		}
	}
	var byClient []struct {
		Client string `db:"client"`
		N      int    `db:"n"`
	}
	require.NoError(t, db.Select(context.Background(), d, &byClient,
		`SELECT attempted_by[1] AS client, COUNT(*) AS n FROM river_job WHERE kind = 'nofx_step' GROUP BY 1`))
	require.Len(t, byClient, 2, "both engines worked steps: %+v", byClient)
}

func TestRunJSONRoundTrip(t *testing.T) {
	t.Parallel()
	e := setup(t, dbtest.SQLite(t), options{})
	run := e.create(`{"goal":"json","steps":[{"name":"s","kind":"text","prompt":"x"}]}`, map[string]any{"n": 1.5})
	p, err := run.Plan()
	require.NoError(t, err)
	require.Equal(t, "json", p.Goal)
	require.Equal(t, 3, p.Steps[0].MaxAttempts, "defaults are stored with the plan")
	inputs, err := run.Inputs()
	require.NoError(t, err)
	b, _ := json.Marshal(inputs)
	require.JSONEq(t, `{"n":1.5}`, string(b))
}

func TestStrandedJobIsRequeued(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		broker := live.NewLocal()
		svc := newService(d, broker)
		svc.Scheduler = startEngine(t, d, svc, broker, options{workers: 0})
		e := &env{t: t, db: d, svc: svc, broker: broker, actor: newActor(t, d, teams.RoleOwner)}
		run := e.create(`{"goal":"stranded","steps":[{"name":"s","kind":"text","prompt":"made it"}]}`, nil)
		_, steps, err := svc.Get(ctx, e.actor, run.ID)
		require.NoError(t, err)
		// A worker took the job an hour ago and died before claiming the step.
		_, err = db.Exec(ctx, d, `UPDATE river_job SET state = 'running', attempt = 1, attempted_at = ? WHERE id = ?`,
			time.Now().UTC().Add(-time.Hour), steps[0].JobID.Int64)
		require.NoError(t, err)

		e.eng = startEngine(t, d, svc, broker, options{workers: 2, lease: time.Second})
		run, steps = e.waitStatus(run.ID, runs.RunSucceeded)
		require.Equal(t, "made it", steps[0].Output)
		require.Contains(t, e.eventKinds(run.ID), "s:step.requeued")
	})
}

func TestStepCostFromPriceTable(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		require.NoError(t, pricing.Set(ctx, d, "simulated", "echo", 2_000_000, 10_000_000, 0)) // $2 / $10 per Mtok
		e := setup(t, d, options{})
		run := e.create(`{"goal":"priced","steps":[
			{"name":"a","kind":"llm","provider":"simulated","model":"echo","prompt":"one two three four"},
			{"name":"b","kind":"llm","provider":"simulated","model":"echo","prompt":"five six","needs":["a"]},
			{"name":"c","kind":"text","prompt":"free","needs":["b"]}]}`, nil)
		run, steps := e.waitStatus(run.ID, runs.RunSucceeded)
		a, b := stepNamed(t, steps, "a"), stepNamed(t, steps, "b")
		require.Equal(t, int64(4), a.InputTokens)
		require.Equal(t, int64((4*2_000_000+4*10_000_000+500_000)/1_000_000), a.CostMicros)
		require.Equal(t, int64((2*2_000_000+2*10_000_000+500_000)/1_000_000), b.CostMicros)
		require.Zero(t, stepNamed(t, steps, "c").CostMicros)
		require.Equal(t, a.CostMicros+b.CostMicros, run.CostMicros, "the run's cost is the sum of its steps")

		cheap := e.create(`{"goal":"cheap","steps":[{"name":"a","kind":"llm","provider":"simulated","model":"lorem","prompt":"x"}]}`, nil)
		e.waitStatus(cheap.ID, runs.RunSucceeded)
		page, err := e.svc.List(ctx, e.actor, runs.ListFilter{SortByCost: true, Limit: 1})
		require.NoError(t, err)
		require.Equal(t, run.ID, page.Runs[0].ID, "most expensive first")
		page, err = e.svc.List(ctx, e.actor, runs.ListFilter{SortByCost: true, Limit: 1, Before: page.NextBefore, BeforeCost: page.NextBeforeCost})
		require.NoError(t, err)
		require.Equal(t, cheap.ID, page.Runs[0].ID)
	})
}
