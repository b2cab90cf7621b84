package engine_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/engine"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
)

// down is a provider that is always overloaded.
type down struct{}

func (down) Name() string { return "down" }
func (down) Stream(context.Context, ai.Request, func(string)) (ai.Response, error) {
	return ai.Response{}, &ai.StatusError{Provider: "down", Status: 503, Message: "overloaded"}
}
func (down) ValidateStep(string, map[string]any) map[string]string { return nil }

// reliableEnv is an engine whose providers go through circuits and retries.
func reliableEnv(t *testing.T, d *db.DB, circuits *ai.Circuits, providers ...ai.Provider) *env {
	t.Helper()
	policy := ai.RetryPolicy{Attempts: 1, Base: time.Millisecond, Max: time.Millisecond, MaxRetryAfter: time.Millisecond}
	var wrapped []ai.Provider
	for _, p := range providers {
		wrapped = append(wrapped, ai.NewReliable(p, circuits, policy))
	}
	broker := live.NewLocal()
	svc := newService(d, broker)
	svc.Providers = ai.NewRegistry(wrapped...)
	eng, err := engine.New(engine.Config{DB: d, Runs: svc, Providers: svc.Providers, Broker: broker,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Workers: 2, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, eng.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, eng.Stop(context.Background())) })
	svc.Scheduler = eng
	return &env{t: t, db: d, svc: svc, eng: eng, broker: broker, actor: newActor(t, d, teams.RoleOwner)}
}

func TestOpenCircuitMakesStepsWaitThenResume(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		circuits := ai.NewCircuits(ai.CircuitConfig{FailuresToOpen: 2, OpenFor: 500 * time.Millisecond, HalfOpenProbes: 1})
		e := reliableEnv(t, d, circuits, ai.NewSimulated(1))

		failing := e.create(`{"goal":"trip","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"x","max_attempts":2,
			"options":{"fail_rate":1,"fail_status":503}}]}`, nil)
		e.waitStatus(failing.ID, runs.RunFailed)
		require.Equal(t, ai.CircuitOpen, circuits.State(ai.TeamCircuit("simulated", e.actor.TeamID, "")).State, "two failures opened the circuit")

		waiting := e.create(`{"goal":"wait","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"patience"}]}`, nil)
		run, steps := e.waitStatus(waiting.ID, runs.RunSucceeded, runs.RunFailed)
		require.Equal(t, runs.RunSucceeded, run.Status, "the step waited for the circuit instead of failing")
		require.Equal(t, 1, steps[0].Attempt, "waiting used up no attempt")
		require.Contains(t, e.eventKinds(run.ID), "s:step.snoozed")
		events, err := e.svc.Events(context.Background(), e.actor, run.ID, 0)
		require.NoError(t, err)
		var snoozed string
		for _, ev := range events {
			if ev.Kind == "step.snoozed" {
				snoozed = ev.Message
			}
		}
		require.Contains(t, snoozed, "simulated circuit is open", "the run page says why")
		require.Equal(t, ai.CircuitClosed, circuits.State(ai.TeamCircuit("simulated", e.actor.TeamID, "")).State, "a good probe closed it")
	})
}

func TestFallbackAnswersWhenPrimaryIsDown(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	circuits := ai.NewCircuits(ai.CircuitConfig{FailuresToOpen: 100})
	e := reliableEnv(t, d, circuits, down{}, ai.NewSimulated(1))
	run := e.create(`{"goal":"fallback","steps":[{"name":"s","kind":"llm","provider":"down","model":"big","prompt":"hello",
		"max_attempts":1,"fallback":[{"provider":"simulated","model":"echo"}]}]}`, nil)
	run, steps := e.waitStatus(run.ID, runs.RunSucceeded, runs.RunFailed)
	require.Equal(t, runs.RunSucceeded, run.Status)
	require.Equal(t, "hello", steps[0].Output)
	require.Equal(t, "simulated/echo", steps[0].ServedBy)

	// Without a fallback the same step fails.
	run = e.create(`{"goal":"no fallback","steps":[{"name":"s","kind":"llm","provider":"down","model":"big","prompt":"hello","max_attempts":1}]}`, nil)
	run, steps = e.waitStatus(run.ID, runs.RunSucceeded, runs.RunFailed)
	require.Equal(t, runs.RunFailed, run.Status)
	require.Contains(t, steps[0].Error, "503")
}

func TestMissingKeyFailsAtOnce(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	e := reliableEnv(t, d, ai.NewCircuits(ai.CircuitConfig{}), ai.NewAnthropic(ai.AnthropicConfig{}), ai.NewSimulated(1))
	run := e.create(`{"goal":"keyless","steps":[{"name":"s","kind":"llm","provider":"anthropic","model":"claude-sonnet-4-5","prompt":"x","max_attempts":3}]}`, nil)
	run, steps := e.waitStatus(run.ID, runs.RunFailed, runs.RunSucceeded)
	require.Equal(t, runs.RunFailed, run.Status)
	require.Equal(t, 1, steps[0].Attempt, "no retries without a key")
	require.Contains(t, steps[0].Error, "no API key for anthropic")
	require.Contains(t, steps[0].Error, "ANTHROPIC_API_KEY")
}
