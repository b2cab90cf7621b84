package ai_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
)

// scriptedProvider answers call i (from 0) with its answer func and counts calls.
type scriptedProvider struct {
	name   string
	answer func(ctx context.Context, call int, onDelta func(string)) (ai.Response, error)

	mu    sync.Mutex
	calls int
}

func (p *scriptedProvider) Name() string { return p.name }

func (p *scriptedProvider) ValidateStep(string, map[string]any) map[string]string { return nil }

func (p *scriptedProvider) Stream(ctx context.Context, _ ai.Request, onDelta func(string)) (ai.Response, error) {
	p.mu.Lock()
	call := p.calls
	p.calls++
	p.mu.Unlock()
	return p.answer(ctx, call, onDelta)
}

// Calls returns how many times Stream was called.
func (p *scriptedProvider) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// okResponse is what a scripted provider answers when it succeeds.
var okResponse = ai.Response{Text: "ok", Usage: ai.Usage{InputTokens: 3, OutputTokens: 1}}

// answers returns an answer func that fails call i with errs[i] (the last
// one repeating), and succeeds where that error is nil.
func answers(errs ...error) func(context.Context, int, func(string)) (ai.Response, error) {
	return func(_ context.Context, call int, _ func(string)) (ai.Response, error) {
		err := errs[min(call, len(errs)-1)]
		if err != nil {
			return ai.Response{}, err
		}
		return okResponse, nil
	}
}

// blockUntilDone returns an answer func that signals entered (when not nil)
// and then waits for its context to end, returning err, or the context's
// error when err is nil.
func blockUntilDone(entered chan<- struct{}, err error) func(context.Context, int, func(string)) (ai.Response, error) {
	return func(ctx context.Context, _ int, _ func(string)) (ai.Response, error) {
		if entered != nil {
			entered <- struct{}{}
		}
		<-ctx.Done()
		if err != nil {
			return ai.Response{}, err
		}
		return ai.Response{}, ctx.Err()
	}
}

// statusErr returns a *ai.StatusError from the scripted provider.
func statusErr(code int) *ai.StatusError {
	return &ai.StatusError{Provider: "scripted", Status: code, Message: "boom"}
}

// callLog records what an Observer is told.
type callLog struct {
	mu       sync.Mutex
	outcomes []string
	tokens   []string
}

// observer returns an Observer that records into l.
func (l *callLog) observer() ai.Observer {
	return ai.Observer{
		OnCall: func(provider, outcome string, d time.Duration) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.outcomes = append(l.outcomes, provider+" "+outcome)
		},
		OnTokens: func(provider string, in, out int) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.tokens = append(l.tokens, fmt.Sprintf("%s %d/%d", provider, in, out))
		},
	}
}

// Outcomes returns the outcomes recorded so far.
func (l *callLog) Outcomes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.outcomes...)
}

// Tokens returns the token reports recorded so far.
func (l *callLog) Tokens() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.tokens...)
}

// fastPolicy retries with backoffs of a millisecond at most.
var fastPolicy = ai.RetryPolicy{Attempts: 3, Base: time.Millisecond, Max: time.Millisecond, MaxRetryAfter: time.Second}

// reliableFixture is a scripted provider behind Reliable, with its circuits
// and a log of what the observer was told.
type reliableFixture struct {
	fake     *scriptedProvider
	circuits *ai.Circuits
	log      *callLog
	provider ai.Provider
}

// setupReliable wraps a scripted provider that answers with answer.
func setupReliable(t *testing.T, cfg ai.CircuitConfig, policy ai.RetryPolicy, answer func(context.Context, int, func(string)) (ai.Response, error)) reliableFixture {
	t.Helper()
	f := reliableFixture{
		fake:     &scriptedProvider{name: "scripted", answer: answer},
		circuits: ai.NewCircuits(cfg),
		log:      &callLog{},
	}
	f.circuits.Observer = f.log.observer()
	f.provider = ai.NewReliable(f.fake, f.circuits, policy)
	return f
}

func TestReliableRetriesRetryableErrors(t *testing.T) {
	t.Parallel()
	f := setupReliable(t, ai.CircuitConfig{}, fastPolicy, answers(statusErr(503), statusErr(529), nil))

	resp, err := f.provider.Stream(t.Context(), ai.Request{Model: "m"}, nil)
	require.NoError(t, err)
	require.Equal(t, okResponse, resp)
	require.Equal(t, 3, f.fake.Calls())
	require.Equal(t, []string{"scripted retryable_error", "scripted retryable_error", "scripted success"}, f.log.Outcomes())
	require.Equal(t, []string{"scripted 3/1"}, f.log.Tokens())

	st := f.circuits.State(ai.InstanceCircuit("scripted", ""))
	require.Equal(t, ai.CircuitClosed, st.State)
	require.Equal(t, uint64(2), st.TotalFailures)
	require.Equal(t, uint64(1), st.TotalSuccesses)
	require.Zero(t, st.ConsecutiveFailures)
}

func TestReliableDoesNotRetry(t *testing.T) {
	t.Parallel()
	odd := errors.New("something odd")
	tests := []struct {
		name    string
		err     error
		outcome string
	}{
		{"400 bad request", statusErr(400), ai.OutcomeError},
		{"401 unauthorized", statusErr(401), ai.OutcomeError},
		{"422 unprocessable", statusErr(422), ai.OutcomeError},
		{"no API key", ai.ErrNoAPIKey, ai.OutcomeError},
		{"wrapped no API key", fmt.Errorf("anthropic: %w", ai.ErrNoAPIKey), ai.OutcomeError},
		{"unclassified error", odd, ai.OutcomeError},
		{"canceled by the provider", context.Canceled, ai.OutcomeCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setupReliable(t, ai.CircuitConfig{}, fastPolicy, answers(tt.err, nil))

			_, err := f.provider.Stream(t.Context(), ai.Request{}, nil)
			require.ErrorIs(t, err, tt.err)
			require.Equal(t, 1, f.fake.Calls())
			require.Equal(t, []string{"scripted " + tt.outcome}, f.log.Outcomes())
		})
	}
}

func TestReliableDoesNotRetryOpenCircuit(t *testing.T) {
	t.Parallel()
	// The first failure opens the circuit, so the retry is refused at once.
	f := setupReliable(t, ai.CircuitConfig{FailuresToOpen: 1, OpenFor: time.Hour}, fastPolicy, answers(statusErr(500)))

	_, err := f.provider.Stream(t.Context(), ai.Request{}, nil)
	require.ErrorIs(t, err, ai.ErrCircuitOpen)
	until, ok := ai.IsCircuitOpen(err)
	require.True(t, ok)
	require.Equal(t, f.circuits.State(ai.InstanceCircuit("scripted", "")).OpensUntil, until)
	require.Equal(t, 1, f.fake.Calls())
	require.Equal(t, []string{"scripted retryable_error", "scripted circuit_open"}, f.log.Outcomes())
}

func TestReliableHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		retryAfter time.Duration
		maxAfter   time.Duration
		atLeast    time.Duration
	}{
		{"waits as asked", 30 * time.Millisecond, time.Minute, 30 * time.Millisecond},
		{"waits no longer than MaxRetryAfter", time.Hour, 20 * time.Millisecond, 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			limited := statusErr(429)
			limited.RetryAfter = tt.retryAfter
			policy := fastPolicy
			policy.MaxRetryAfter = tt.maxAfter
			f := setupReliable(t, ai.CircuitConfig{}, policy, answers(limited, nil))

			start := time.Now()
			_, err := f.provider.Stream(t.Context(), ai.Request{}, nil)
			elapsed := time.Since(start)
			require.NoError(t, err)
			require.Equal(t, 2, f.fake.Calls())
			require.GreaterOrEqual(t, elapsed, tt.atLeast)
			require.Less(t, elapsed, time.Minute)
		})
	}
}

func TestReliableGivesUpAfterAttempts(t *testing.T) {
	t.Parallel()
	f := setupReliable(t, ai.CircuitConfig{}, fastPolicy, answers(statusErr(500), statusErr(502), statusErr(503), nil))

	_, err := f.provider.Stream(t.Context(), ai.Request{}, nil)
	var se *ai.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 503, se.Status, "the last error is returned")
	require.True(t, ai.Retryable(err))
	require.Equal(t, 3, f.fake.Calls())
}

func TestReliableStopsOnCancel(t *testing.T) {
	t.Parallel()

	t.Run("before the first call", func(t *testing.T) {
		t.Parallel()
		f := setupReliable(t, ai.CircuitConfig{}, fastPolicy, answers(nil))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()

		_, err := f.provider.Stream(ctx, ai.Request{}, nil)
		require.ErrorIs(t, err, context.Canceled)
		require.Zero(t, f.fake.Calls())
	})

	t.Run("during a call", func(t *testing.T) {
		t.Parallel()
		entered := make(chan struct{}, 1)
		f := setupReliable(t, ai.CircuitConfig{FailuresToOpen: 1}, fastPolicy, blockUntilDone(entered, nil))
		ctx, cancel := context.WithCancel(t.Context())
		result := make(chan error, 1)
		go func() {
			_, err := f.provider.Stream(ctx, ai.Request{}, nil)
			result <- err
		}()
		<-entered
		cancel()

		require.ErrorIs(t, receive(t, result), context.Canceled)
		require.Equal(t, 1, f.fake.Calls())
		require.Equal(t, []string{"scripted canceled"}, f.log.Outcomes())
		st := f.circuits.State(ai.InstanceCircuit("scripted", ""))
		require.Equal(t, ai.CircuitClosed, st.State, "a cancelled call says nothing about the provider")
		require.Zero(t, st.TotalFailures)
	})

	t.Run("while the provider answers", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		f := setupReliable(t, ai.CircuitConfig{}, fastPolicy, func(context.Context, int, func(string)) (ai.Response, error) {
			cancel()
			return ai.Response{}, statusErr(503)
		})

		_, err := f.provider.Stream(ctx, ai.Request{}, nil)
		require.ErrorIs(t, err, context.Canceled)
		var se *ai.StatusError
		require.ErrorAs(t, err, &se, "the provider's answer is kept")
		require.Equal(t, 503, se.Status)
		require.False(t, ai.Retryable(err))
		require.Equal(t, 1, f.fake.Calls())
		require.Equal(t, uint64(1), f.circuits.State(ai.InstanceCircuit("scripted", "")).TotalFailures, "the provider did fail")
	})

	t.Run("during the backoff", func(t *testing.T) {
		t.Parallel()
		limited := statusErr(429)
		limited.RetryAfter = time.Hour
		policy := fastPolicy
		policy.MaxRetryAfter = time.Hour
		called := make(chan struct{}, 1)
		f := setupReliable(t, ai.CircuitConfig{}, policy, func(context.Context, int, func(string)) (ai.Response, error) {
			called <- struct{}{}
			return ai.Response{}, limited
		})
		ctx, cancel := context.WithCancel(t.Context())
		result := make(chan error, 1)
		go func() {
			_, err := f.provider.Stream(ctx, ai.Request{}, nil)
			result <- err
		}()
		<-called
		cancel()

		require.ErrorIs(t, receive(t, result), context.Canceled)
		require.Equal(t, 1, f.fake.Calls())
	})

	t.Run("when the caller's deadline passes", func(t *testing.T) {
		t.Parallel()
		f := setupReliable(t, ai.CircuitConfig{FailuresToOpen: 1}, fastPolicy, blockUntilDone(nil, nil))
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()

		_, err := f.provider.Stream(ctx, ai.Request{}, nil)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, 1, f.fake.Calls())
		require.Equal(t, []string{"scripted canceled"}, f.log.Outcomes())
		require.Zero(t, f.circuits.State(ai.InstanceCircuit("scripted", "")).TotalFailures, "the caller's deadline says nothing about the provider")
	})
}

func TestReliableDoesNotRetryAfterStreaming(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		deltas    []string
		collect   bool // pass an onDelta
		wantErr   bool
		wantCalls int
	}{
		{"text streamed: the error is returned", []string{"hel", "lo"}, true, true, 1},
		{"only empty deltas: retried", []string{""}, true, false, 2},
		{"nothing streamed: retried", nil, true, false, 2},
		{"no onDelta, so nothing reached the caller: retried", []string{"hel", "lo"}, false, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setupReliable(t, ai.CircuitConfig{}, fastPolicy, func(_ context.Context, call int, onDelta func(string)) (ai.Response, error) {
				if call > 0 {
					return okResponse, nil
				}
				if onDelta != nil {
					for _, d := range tt.deltas {
						onDelta(d)
					}
				}
				return ai.Response{}, statusErr(503)
			})
			var got []string
			var onDelta func(string)
			if tt.collect {
				onDelta = func(s string) { got = append(got, s) }
			}

			_, err := f.provider.Stream(t.Context(), ai.Request{}, onDelta)
			require.Equal(t, tt.wantCalls, f.fake.Calls())
			if tt.wantErr {
				var se *ai.StatusError
				require.ErrorAs(t, err, &se)
				require.Equal(t, 503, se.Status)
				require.Equal(t, tt.deltas, got)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestReliableCallTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error // what the provider returns when its context ends; nil for the context's error
	}{
		{"provider returns the context's error", nil},
		{"provider returns an error of its own", errors.New("stream closed")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			policy := fastPolicy
			policy.Attempts = 2
			f := setupReliable(t, ai.CircuitConfig{CallTimeout: 20 * time.Millisecond}, policy, blockUntilDone(nil, tt.err))

			_, err := f.provider.Stream(t.Context(), ai.Request{}, nil)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
			}
			require.True(t, ai.Retryable(err))
			require.Equal(t, 2, f.fake.Calls())
			require.Equal(t, []string{"scripted retryable_error", "scripted retryable_error"}, f.log.Outcomes())
			require.Equal(t, uint64(2), f.circuits.State(ai.InstanceCircuit("scripted", "")).ConsecutiveFailures)
		})
	}
}

func TestReliableWrapsSimulated(t *testing.T) {
	t.Parallel()
	sim := ai.NewSimulated(1)
	circuits := ai.NewCircuits(ai.CircuitConfig{})
	p := ai.NewReliable(sim, circuits, fastPolicy)

	require.Equal(t, "simulated", p.Name())
	require.Equal(t, sim.ValidateStep("nope", map[string]any{"x": 1}), p.ValidateStep("nope", map[string]any{"x": 1}))
	require.Nil(t, p.ValidateStep("echo", nil))
	r, ok := p.(*ai.Reliable)
	require.True(t, ok)
	require.Same(t, sim, r.Unwrap())
	require.Empty(t, circuits.States(), "simulated circuits are per team, made on first use")

	var b strings.Builder
	resp, err := p.Stream(t.Context(), ai.Request{Model: "echo", Prompt: "hello there world"}, func(s string) { b.WriteString(s) })
	require.NoError(t, err)
	require.Equal(t, "hello there world", resp.Text)
	require.Equal(t, resp.Text, b.String())

	_, err = p.Stream(t.Context(), ai.Request{Model: "echo", Prompt: "x", Options: map[string]any{"fail_rate": 1, "fail_status": 503}}, nil)
	var se *ai.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 503, se.Status)
	require.Equal(t, uint64(3), circuits.State(ai.InstanceCircuit("simulated", "")).ConsecutiveFailures)

	require.Panics(t, func() { ai.NewReliable(nil, circuits, fastPolicy) })
	require.Panics(t, func() { ai.NewReliable(sim, nil, fastPolicy) })
}

func TestReliableConcurrentUse(t *testing.T) {
	t.Parallel()
	circuits := ai.NewCircuits(ai.CircuitConfig{FailuresToOpen: 3, OpenFor: time.Millisecond})
	var changes sync.Map
	circuits.OnChange = func(_ ai.CircuitKey, from, to string) { changes.Store(from+">"+to, true) }
	p := ai.NewReliable(ai.NewSimulated(7), circuits, ai.RetryPolicy{Attempts: 2, Base: time.Microsecond, Max: time.Microsecond})
	req := ai.Request{Model: "echo", Prompt: "a b c", Options: map[string]any{"fail_rate": 0.5}}

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				_, err := p.Stream(t.Context(), req, func(string) {})
				if _, open := ai.IsCircuitOpen(err); err != nil && !open && !ai.Retryable(err) {
					t.Errorf("unexpected error: %v", err) // not require: this is not the test's goroutine
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			_ = circuits.States()
			circuits.ResetProvider("simulated")
		}
	})
	wg.Wait()
	st := circuits.State(ai.InstanceCircuit("simulated", ""))
	require.Contains(t, []string{ai.CircuitClosed, ai.CircuitOpen, ai.CircuitHalfOpen}, st.State)
}

func TestRetryPolicyDelay(t *testing.T) {
	t.Parallel()
	p := ai.RetryPolicy{Attempts: 5, Base: 100 * time.Millisecond, Max: time.Second, MaxRetryAfter: 5 * time.Second}
	after := func(d time.Duration) error {
		se := statusErr(429)
		se.RetryAfter = d
		return se
	}
	tests := []struct {
		name    string
		n       uint
		err     error
		ceiling time.Duration // the delay is random in [0, ceiling]; exact when exact is set
		exact   bool
	}{
		{"first retry", 1, statusErr(500), 100 * time.Millisecond, false},
		{"second retry doubles", 2, statusErr(500), 200 * time.Millisecond, false},
		{"third retry doubles again", 3, statusErr(500), 400 * time.Millisecond, false},
		{"capped at Max", 10, statusErr(500), time.Second, false},
		{"far beyond does not overflow", 200, statusErr(500), time.Second, false},
		{"retry-after is obeyed", 1, after(2 * time.Second), 2 * time.Second, true},
		{"retry-after is capped", 1, after(time.Hour), 5 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for range 200 {
				d := p.Delay(tt.n, tt.err)
				if tt.exact {
					require.Equal(t, tt.ceiling, d)
					continue
				}
				require.GreaterOrEqual(t, d, time.Duration(0))
				require.LessOrEqual(t, d, tt.ceiling)
			}
		})
	}

	t.Run("zero policy takes the defaults", func(t *testing.T) {
		t.Parallel()
		def := ai.DefaultRetryPolicy()
		require.Equal(t, ai.RetryPolicy{Attempts: 3, Base: 500 * time.Millisecond, Max: 20 * time.Second, MaxRetryAfter: time.Minute}, def)
		require.LessOrEqual(t, ai.RetryPolicy{}.Delay(1, statusErr(500)), def.Base)
		require.Equal(t, def.MaxRetryAfter, ai.RetryPolicy{}.Delay(1, after(time.Hour)))
	})
}

// receive returns the value sent on ch, failing the test if none comes soon.
func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		require.FailNow(t, "nothing received")
		var zero T
		return zero
	}
}

// names returns the providers of states.
func names(states []ai.CircuitState) []string {
	out := make([]string, 0, len(states))
	for _, st := range states {
		out = append(out, st.Provider)
	}
	return out
}
