package ai_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
)

// A 429 on one team's own key opens that credential's circuit only: the
// instance's key and other teams' keys to the same API keep working.
func TestRateLimitOpensOnlyThatCredentialsCircuit(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") == "team-7-key" || r.Header.Get("Authorization") == "Bearer team-7-key" {
			writeJSON(w, 429, map[string]string{"retry-after": "0"}, anthropicErrorBody("rate_limit_error", "Rate limited"))
			return
		}
		anthropicStart(w, 1)
		anthropicDelta(w, "hi")
		anthropicFinish(w, 1)
	})
	circuits := ai.NewCircuits(ai.CircuitConfig{FailuresToOpen: 2, OpenFor: time.Hour})
	p := ai.NewReliable(ai.NewAnthropic(ai.AnthropicConfig{APIKey: "instance-key", BaseURL: srv.URL}), circuits, ai.RetryPolicy{Attempts: 2, Base: time.Millisecond, Max: time.Millisecond})
	r := p.(*ai.Reliable)

	limited := ai.Request{Model: "m", Prompt: "x", APIKey: "team-7-key", TeamID: 7}
	_, err := p.Stream(t.Context(), limited, nil)
	require.Error(t, err)
	team7 := ai.TeamCircuit(ai.AnthropicName, 7, srv.URL)
	require.Equal(t, team7, r.CircuitKey(limited))
	require.Equal(t, ai.CircuitOpen, circuits.State(team7).State)

	_, err = p.Stream(t.Context(), limited, nil)
	until, open := ai.IsCircuitOpen(err)
	require.True(t, open, "the team's key waits")
	require.False(t, until.IsZero())
	var refused *ai.CircuitOpenError
	require.ErrorAs(t, err, &refused)
	require.Equal(t, team7, refused.Key)
	require.Contains(t, refused.LastError, "429", "the refusal carries the last error")

	res, err := p.Stream(t.Context(), ai.Request{Model: "m", Prompt: "x", TeamID: 7}, nil)
	require.NoError(t, err, "the same team on the instance key is not held back")
	require.Equal(t, "hi", res.Text)
	_, err = p.Stream(t.Context(), ai.Request{Model: "m", Prompt: "x", APIKey: "team-8-key", TeamID: 8}, nil)
	require.NoError(t, err, "another team's key is not held back")

	require.Equal(t, ai.CircuitClosed, circuits.State(ai.InstanceCircuit(ai.AnthropicName, srv.URL)).State)
	require.Equal(t, ai.CircuitClosed, circuits.State(ai.TeamCircuit(ai.AnthropicName, 8, srv.URL)).State)
	var scopes []string
	for _, st := range circuits.States() {
		scopes = append(scopes, st.Key.Scope)
	}
	require.Equal(t, []string{"instance", "team:7", "team:8"}, scopes, "the instance first, then teams by id")
}

// The simulated provider's circuits are per team, key or no key.
func TestSimulatedCircuitIsPerTeam(t *testing.T) {
	t.Parallel()
	circuits := ai.NewCircuits(ai.CircuitConfig{FailuresToOpen: 1, OpenFor: time.Hour})
	p := ai.NewReliable(ai.NewSimulated(1), circuits, ai.RetryPolicy{Attempts: 1})
	failing := ai.Request{Model: "echo", Prompt: "x", TeamID: 1, Options: map[string]any{"fail_rate": 1, "fail_status": 500}}
	_, err := p.Stream(t.Context(), failing, nil)
	require.Error(t, err)
	_, err = p.Stream(t.Context(), failing, nil)
	require.ErrorIs(t, err, ai.ErrCircuitOpen)

	res, err := p.Stream(t.Context(), ai.Request{Model: "echo", Prompt: "fine", TeamID: 2}, nil)
	require.NoError(t, err, "team 2 is not held back by team 1's failures")
	require.Equal(t, "fine", res.Text)
	require.Equal(t, ai.CircuitOpen, circuits.State(ai.TeamCircuit(ai.SimulatedName, 1, "")).State)

	require.Equal(t, 2, circuits.ResetProvider(ai.SimulatedName))
	require.Equal(t, ai.CircuitClosed, circuits.State(ai.TeamCircuit(ai.SimulatedName, 1, "")).State)
}

func TestCircuitKeyEncoding(t *testing.T) {
	t.Parallel()
	key := ai.TeamCircuit(ai.OpenAIName, 42, "http://localhost:11434/v1")
	got, ok := ai.ParseCircuitKey(key.Encode())
	require.True(t, ok)
	require.Equal(t, key, got)
	id, ok := got.TeamID()
	require.True(t, ok)
	require.Equal(t, int64(42), id)
	require.Equal(t, "openai (team:42, http://localhost:11434/v1)", key.String())

	got, ok = ai.ParseCircuitKey("anthropic")
	require.False(t, ok, "a provider name alone, from an older process")
	require.Equal(t, ai.CircuitKey{Provider: "anthropic"}, got)
	_, ok = ai.InstanceCircuit("x", "").TeamID()
	require.False(t, ok)
}

func TestNeedsKeyWhenTheInstanceHasNone(t *testing.T) {
	circuits := ai.NewCircuits(ai.CircuitConfig{})
	for _, c := range []struct {
		name string
		p    ai.Provider
		want bool
	}{
		{"anthropic without an instance key", ai.NewAnthropic(ai.AnthropicConfig{}), true},
		{"anthropic with one", ai.NewAnthropic(ai.AnthropicConfig{APIKey: "k"}), false},
		{"openai without, wrapped", ai.NewReliable(ai.NewOpenAI(ai.OpenAIConfig{}), circuits, ai.RetryPolicy{Attempts: 1}), true},
		{"openai with, wrapped", ai.NewReliable(ai.NewOpenAI(ai.OpenAIConfig{APIKey: "k"}), circuits, ai.RetryPolicy{Attempts: 1}), false},
		{"simulated, no key at all", ai.NewReliable(ai.NewSimulated(1), circuits, ai.RetryPolicy{Attempts: 1}), false},
	} {
		require.Equal(t, c.want, ai.NeedsKey(c.p), c.name)
	}
}
