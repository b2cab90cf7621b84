package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/logtest"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
)

// gated is a provider whose calls all wait until release is closed, then
// answer; it counts the calls made and finished.
type gated struct {
	started, finished atomic.Int64
	release           chan struct{}
	numbered          bool // answers say which call they are
}

func (g *gated) Name() string { return "gated" }
func (g *gated) Stream(ctx context.Context, req ai.Request, _ func(string)) (ai.Response, error) {
	g.started.Add(1)
	select {
	case <-g.release:
	case <-ctx.Done():
		return ai.Response{}, ctx.Err()
	}
	call := g.finished.Add(1)
	text := "done: " + req.Prompt
	if g.numbered {
		text = fmt.Sprintf("%s (call %d)", text, call)
	}
	return ai.Response{Text: text, Usage: ai.Usage{InputTokens: 3, OutputTokens: 2}}, nil
}
func (g *gated) ValidateStep(string, map[string]any) map[string]string { return nil }

// proxiedPostgres is a migrated PostgreSQL schema reached through a proxy
// the test can cut (d), and directly (direct), whose plans let many steps
// of a team run at once.
func proxiedPostgres(t *testing.T) (proxy *dbtest.Proxy, d, direct *db.DB) {
	t.Helper()
	ctx := context.Background()
	proxy, d, url := dbtest.PostgresBehindProxy(t)
	_, err := d.ExecContext(ctx, `UPDATE plans SET concurrency = -1`)
	require.NoError(t, err)
	direct, err = db.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { direct.Close() })
	return proxy, d, direct
}

// Fifty steps whose provider calls finish while PostgreSQL cannot be
// reached keep their results and record them once it is back: every run
// succeeds, every step has one attempt, every call was made once, and the
// outage is one WARN and one INFO in the log.
func TestFinishedStepsAreRecordedOnceThroughADatabaseOutage(t *testing.T) {
	proxy, d, _ := proxiedPostgres(t)

	g := &gated{release: make(chan struct{})}
	var logs logtest.Buffer
	broker := live.NewLocal()
	svc := newService(d, broker)
	svc.Providers = ai.NewRegistry(g)
	eng := startEngine(t, d, svc, broker, options{workers: 60, lease: 15 * time.Second, // a heartbeat every 5 s
		log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	svc.Scheduler = eng
	e := &env{t: t, db: d, svc: svc, eng: eng, broker: broker, actor: newActor(t, d, teams.RoleOwner)}

	const n = 50
	ids := make([]int64, n)
	for i := range n {
		ids[i] = e.create(fmt.Sprintf(`{"goal":"outage %d","steps":[
			{"name":"call","kind":"llm","provider":"gated","model":"m","prompt":"run %d"},
			{"name":"after","kind":"text","prompt":"after {{steps.call.output}}","needs":["call"]}]}`, i, i), nil).ID
	}
	require.Eventually(t, func() bool { return g.started.Load() == n }, 30*time.Second, 10*time.Millisecond, "every step is in its call")

	proxy.Cut()
	cut := time.Now()
	close(g.release)
	require.Eventually(t, func() bool { return g.finished.Load() == n }, 10*time.Second, 10*time.Millisecond)
	// The database stays away for 5 s (a restart; longer than a heartbeat's
	// interval, shorter than the lease) while the workers try again and
	// again, the rescue loop and River poll.
	require.Eventually(t, func() bool {
		out := logs.String()
		return time.Since(cut) >= 5*time.Second && proxy.Refused() >= 150 &&
			strings.Contains(out, `what="step workers"`) && strings.Contains(out, `what="rescue of lost steps"`)
	}, 20*time.Second, 10*time.Millisecond, "the workers tried to record during the outage")
	proxy.Restore()

	for _, id := range ids {
		run, steps := e.waitStatus(id, runs.RunSucceeded, runs.RunFailed)
		require.Equal(t, runs.RunSucceeded, run.Status, "run %d", id)
		call := stepNamed(t, steps, "call")
		require.Equal(t, 1, call.Attempt, "run %d: the finished call was not executed again", id)
		require.Equal(t, fmt.Sprintf("done: run %d", id-ids[0]), call.Output)
		require.Equal(t, 1, count(e.eventKinds(id), "call:step.succeeded"))
	}
	require.Equal(t, int64(n), g.started.Load(), "every provider call happened once")

	out := logs.String()
	require.Equal(t, 1, strings.Count(out, `msg="database unavailable; retrying" what="step workers"`), out)
	require.Equal(t, 1, strings.Count(out, `msg="database reachable again" what="step workers"`), out)
	require.NotContains(t, out, "retried steps whose worker stopped responding")
	require.Equal(t, 1, strings.Count(out, `msg="database unavailable; retrying" what="rescue of lost steps"`), out)
	require.Equal(t, 1, strings.Count(out, `msg="database reachable again" what="rescue of lost steps"`), out)
	require.NotContains(t, out, `msg="step heartbeat"`)
	require.Equal(t, 1, strings.Count(out, `msg="database unavailable; retrying" what="job queue"`), out)
	require.Equal(t, 1, strings.Count(out, `msg="database reachable again" what="job queue"`), out)
	require.NotContains(t, out, `component=river`, "River's lost connections are the job queue's one line each way")
}

// A step that another process takes over while the database is away from
// its worker (its lease ran out there) discards the worker's late result:
// the step succeeds once, with the result of the worker that took it.
func TestLateResultOfATakenOverStepIsDiscarded(t *testing.T) {
	ctx := context.Background()
	proxy, d, direct := proxiedPostgres(t)
	g := &gated{release: make(chan struct{}), numbered: true}
	broker := live.NewLocal()
	svc := newService(d, broker)
	svc.Providers = ai.NewRegistry(g)
	eng := startEngine(t, d, svc, broker, options{workers: 4, lease: 20 * time.Second})
	svc.Scheduler = eng
	e := &env{t: t, db: d, svc: svc, eng: eng, broker: broker, actor: newActor(t, d, teams.RoleOwner)}
	run := e.create(`{"goal":"taken over","steps":[{"name":"call","kind":"llm","provider":"gated","model":"m","prompt":"once"}]}`, nil)
	require.Eventually(t, func() bool { return g.started.Load() == 1 }, 30*time.Second, 10*time.Millisecond)

	proxy.Cut()
	close(g.release)
	require.Eventually(t, func() bool { return g.finished.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	// Another process, which still reaches the database, finds the lease
	// run out and takes the step back to the queue.
	_, err := direct.ExecContext(ctx, `UPDATE steps SET lease_expires_at = now() - interval '1 minute' WHERE run_id = $1`, run.ID)
	require.NoError(t, err)
	other := newService(direct, live.NewLocal())
	other.Scheduler = eng
	rescued, err := other.RescueExpired(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, rescued)
	proxy.Restore()

	run, steps := e.waitStatus(run.ID, runs.RunSucceeded, runs.RunFailed)
	require.Equal(t, runs.RunSucceeded, run.Status)
	require.Equal(t, 2, steps[0].Attempt, "the taken-over attempt counts")
	require.Equal(t, "done: once (call 2)", steps[0].Output, "the late result of call 1 was discarded")
	require.Equal(t, 1, count(e.eventKinds(run.ID), "call:step.succeeded"))
	require.Equal(t, int64(2), g.started.Load())
}

// slowKeys looks a team's key up in the database once the test lets it:
// the database can be cut between a step's claim and its provider call.
type slowKeys struct {
	d       *db.DB
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (k *slowKeys) Resolve(ctx context.Context, teamID int64, provider string) (string, error) {
	k.once.Do(func() { close(k.entered) })
	<-k.release
	var key string
	err := k.d.GetContext(ctx, &key, `SELECT '' AS key`)
	return key, err
}

// A step that finds the database away just before its provider call (the
// team's key, plan and spend are read first) waits for it and tries the
// same attempt again: no attempt is used up, and the call is made once.
func TestDatabaseAwayBeforeTheCallUsesNoAttempt(t *testing.T) {
	proxy, d, _ := proxiedPostgres(t)
	g := &gated{release: make(chan struct{})}
	close(g.release)
	keys := &slowKeys{d: d, entered: make(chan struct{}), release: make(chan struct{})}
	broker := live.NewLocal()
	svc := newService(d, broker)
	svc.Providers = ai.NewRegistry(g)
	eng := startEngine(t, d, svc, broker, options{workers: 2, lease: 20 * time.Second, keys: keys})
	svc.Scheduler = eng
	e := &env{t: t, db: d, svc: svc, eng: eng, broker: broker, actor: newActor(t, d, teams.RoleOwner)}
	run := e.create(`{"goal":"before the call","steps":[{"name":"call","kind":"llm","provider":"gated","model":"m","prompt":"p"}]}`, nil)

	select {
	case <-keys.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the step never looked its key up")
	}
	proxy.Cut()
	close(keys.release)
	require.Eventually(t, func() bool { return proxy.Refused() >= 5 }, 10*time.Second, 5*time.Millisecond, "the worker waits for the database")
	proxy.Restore()

	run, steps := e.waitStatus(run.ID, runs.RunSucceeded, runs.RunFailed)
	require.Equal(t, runs.RunSucceeded, run.Status)
	require.Equal(t, 1, steps[0].Attempt, "no attempt was used up")
	require.Equal(t, int64(1), g.started.Load(), "one call")
	require.NotContains(t, e.eventKinds(run.ID), "call:step.retrying")
}
