package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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

// teamKeys gives each listed team its own key; other teams use the instance's.
type teamKeys map[int64]string

func (k teamKeys) Resolve(_ context.Context, teamID int64, _ string) (string, error) {
	return k[teamID], nil
}

// circuitEnv is an engine whose providers go through circuits, with team keys.
func circuitEnv(t *testing.T, d *db.DB, circuits *ai.Circuits, keys engine.KeyResolver, providers ...ai.Provider) *env {
	t.Helper()
	policy := ai.RetryPolicy{Attempts: 1, Base: time.Millisecond, Max: time.Millisecond, MaxRetryAfter: time.Millisecond}
	var wrapped []ai.Provider
	for _, p := range providers {
		wrapped = append(wrapped, ai.NewReliable(p, circuits, policy))
	}
	broker := live.NewLocal()
	svc := newService(d, broker)
	svc.Providers = ai.NewRegistry(wrapped...)
	eng, err := engine.New(engine.Config{DB: d, Runs: svc, Providers: svc.Providers, Broker: broker, Keys: keys,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Workers: 4, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, eng.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, eng.Stop(context.Background())) })
	svc.Scheduler = eng
	return &env{t: t, db: d, svc: svc, eng: eng, broker: broker, actor: newActor(t, d, teams.RoleOwner)}
}

// as returns the env acting for another team.
func (e *env) as(t *testing.T) *env {
	other := *e
	other.t = t
	other.actor = newActor(t, e.db, teams.RoleOwner)
	return &other
}

// waitCircuit waits until key's circuit is in state want.
func waitCircuit(t *testing.T, circuits *ai.Circuits, key ai.CircuitKey, want string) {
	t.Helper()
	require.Eventually(t, func() bool { return circuits.State(key).State == want }, 30*time.Second, 5*time.Millisecond,
		"circuit %s never became %s", key, want)
}

// Team A's always-failing simulated step opens only team A's circuit: team
// B's run goes ahead at once, and team A's step gives up after its patience
// instead of waiting for ever.
func TestFailingTeamDoesNotDelayAnotherTeam(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		circuits := ai.NewCircuits(ai.CircuitConfig{FailuresToOpen: 2, OpenFor: time.Hour})
		a := circuitEnv(t, d, circuits, nil, ai.NewSimulated(1))
		b := a.as(t)

		failing := a.create(`{"goal":"always 500","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"x",
			"max_attempts":3,"patience":"2s","options":{"fail_rate":1,"fail_status":500}}]}`, nil)
		keyA := ai.TeamCircuit(ai.SimulatedName, a.actor.TeamID, "")
		waitCircuit(t, circuits, keyA, ai.CircuitOpen)

		started := time.Now()
		run := b.create(`{"goal":"fine","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"hello"}]}`, nil)
		run, steps := b.waitStatus(run.ID, runs.RunSucceeded, runs.RunFailed)
		require.Equal(t, runs.RunSucceeded, run.Status)
		require.Equal(t, "hello", steps[0].Output)
		require.Less(t, time.Since(started), 5*time.Second, "team B did not wait behind team A's circuit")
		require.Equal(t, ai.CircuitClosed, circuits.State(ai.TeamCircuit(ai.SimulatedName, b.actor.TeamID, "")).State)
		require.Equal(t, ai.CircuitOpen, circuits.State(keyA).State)

		run, steps = a.waitStatus(failing.ID, runs.RunFailed, runs.RunSucceeded)
		require.Equal(t, runs.RunFailed, run.Status, "the run ends instead of staying running")
		require.Contains(t, steps[0].Error, "simulated unavailable for 2s: ")
		require.Contains(t, steps[0].Error, "status 500")
	})
}

// A step behind an open circuit waits at most its patience, then fails with
// the provider's last error; the wait is kept on the step, so the run page
// can say why it waits and until when.
func TestPatienceEndsWaitOnOpenCircuit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		circuits := ai.NewCircuits(ai.CircuitConfig{FailuresToOpen: 1, OpenFor: time.Hour})
		e := circuitEnv(t, d, circuits, nil, ai.NewSimulated(1))
		trip := e.create(`{"goal":"trip","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"x",
			"max_attempts":1,"options":{"fail_rate":1,"fail_status":500}}]}`, nil)
		e.waitStatus(trip.ID, runs.RunFailed)
		key := ai.TeamCircuit(ai.SimulatedName, e.actor.TeamID, "")
		require.Equal(t, ai.CircuitOpen, circuits.State(key).State)

		started := time.Now()
		run := e.create(`{"goal":"patient","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"x","patience":"2s"}]}`, nil)
		_, steps := e.wait(run.ID, "the step to wait on the circuit", func(_ runs.Run, steps []runs.Step) bool {
			_, _, _, ok := steps[0].CircuitWait()
			return ok
		})
		since, retryAt, giveUpAt, _ := steps[0].CircuitWait()
		require.Equal(t, 2*time.Second, giveUpAt.Sub(since))
		require.False(t, retryAt.After(giveUpAt), "it tries again by the time its patience ends")
		require.Contains(t, steps[0].Error, "simulated circuit is open until")
		require.Equal(t, 2*time.Second, steps[0].Patience())

		run, steps = e.waitStatus(run.ID, runs.RunFailed, runs.RunSucceeded)
		require.Equal(t, runs.RunFailed, run.Status)
		require.GreaterOrEqual(t, time.Since(started), 2*time.Second, "it waited its patience")
		require.True(t, strings.HasPrefix(steps[0].Error, "simulated unavailable for 2s: simulated: status 500"), steps[0].Error)
		require.Zero(t, steps[0].Attempt, "waiting used no attempt")
		require.Contains(t, e.eventKinds(run.ID), "s:step.snoozed")
		require.Contains(t, run.Error, "simulated unavailable for 2s")
	})
}

// A 429 on a team's own key opens that credential's circuit only: the
// instance's key, used by another team, keeps answering.
func TestRateLimitOnTeamKeyOpensOnlyItsCircuit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		var limited atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Api-Key") == "team-key" || r.Header.Get("Authorization") == "Bearer team-key" {
				limited.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("retry-after", "0")
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprint(w, `{"type":"error","error":{"type":"rate_limit_error","message":"Rate limited"}}`)
				return
			}
			anthropicAnswer(w, "hi from the instance key")
		}))
		t.Cleanup(srv.Close)

		circuits := ai.NewCircuits(ai.CircuitConfig{FailuresToOpen: 2, OpenFor: time.Hour})
		keys := teamKeys{}
		a := circuitEnv(t, d, circuits, keys, ai.NewAnthropic(ai.AnthropicConfig{APIKey: "instance-key", BaseURL: srv.URL}))
		b := a.as(t)
		keys[a.actor.TeamID] = "team-key"

		step := `{"goal":"g","steps":[{"name":"s","kind":"llm","provider":"anthropic","model":"claude-sonnet-4-5","prompt":"x","max_attempts":3,"patience":"1s"}]}`
		runA := a.create(step, nil)
		keyA := ai.TeamCircuit(ai.AnthropicName, a.actor.TeamID, srv.URL)
		waitCircuit(t, circuits, keyA, ai.CircuitOpen)

		runB := b.create(step, nil)
		runB, steps := b.waitStatus(runB.ID, runs.RunSucceeded, runs.RunFailed)
		require.Equal(t, runs.RunSucceeded, runB.Status, "team B's calls on the instance key are not held back")
		require.Equal(t, "hi from the instance key", steps[0].Output)
		require.Equal(t, ai.CircuitClosed, circuits.State(ai.InstanceCircuit(ai.AnthropicName, srv.URL)).State)
		require.Equal(t, ai.CircuitOpen, circuits.State(keyA).State)

		runA, steps = a.waitStatus(runA.ID, runs.RunFailed, runs.RunSucceeded)
		require.Equal(t, runs.RunFailed, runA.Status)
		require.Contains(t, steps[0].Error, "anthropic unavailable for 1s: ")
		require.Contains(t, steps[0].Error, "429")
		require.EqualValues(t, 2, limited.Load(), "the open circuit stopped the calls with the limited key")
	})
}

// anthropicAnswer streams a whole Messages API answer with text.
func anthropicAnswer(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	event := func(name, data string) { fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data) }
	event("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}}`)
	event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	event("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%q}}`, text))
	event("content_block_stop", `{"type":"content_block_stop","index":0}`)
	event("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":3}}`)
	event("message_stop", `{"type":"message_stop"}`)
}
