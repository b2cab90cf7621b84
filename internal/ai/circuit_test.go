package ai_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
)

// oneAttempt calls the provider once per Stream, so that each call is one
// call through the circuit.
var oneAttempt = ai.RetryPolicy{Attempts: 1}

// circuitFixture is a scripted provider behind Reliable, without retries,
// whose circuit reports each change on changes as "from>to".
type circuitFixture struct {
	reliableFixture
	changes chan string
}

// setupCircuit wraps a scripted provider that answers with answer.
func setupCircuit(t *testing.T, cfg ai.CircuitConfig, answer func(context.Context, int, func(string)) (ai.Response, error)) circuitFixture {
	t.Helper()
	f := circuitFixture{reliableFixture: setupReliable(t, cfg, oneAttempt, answer), changes: make(chan string, 64)}
	f.circuits.OnChange = func(key ai.CircuitKey, from, to string) {
		f.changes <- key.Provider + " " + from + ">" + to
	}
	return f
}

// call makes one call through the circuit and returns its error.
func (f circuitFixture) call(t *testing.T) error {
	t.Helper()
	_, err := f.provider.Stream(t.Context(), ai.Request{}, nil)
	return err
}

// nextChange returns the next state change, failing the test if none comes soon.
func (f circuitFixture) nextChange(t *testing.T) string {
	t.Helper()
	return receive(t, f.changes)
}

// noChange fails the test if a state change is waiting.
func (f circuitFixture) noChange(t *testing.T) {
	t.Helper()
	select {
	case c := <-f.changes:
		require.FailNow(t, "unexpected state change", c)
	default:
	}
}

// waitForState waits until the circuit's state is want, polling with a deadline.
func (f circuitFixture) waitForState(t *testing.T, want string) {
	t.Helper()
	require.Eventually(t, func() bool {
		return f.circuits.State(ai.InstanceCircuit("scripted", "")).State == want
	}, 5*time.Second, time.Millisecond, "circuit never became %s", want)
}

func TestCircuitClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		err   error
		trips bool
	}{
		{"500 internal error", statusErr(500), true},
		{"502 bad gateway", statusErr(502), true},
		{"503 unavailable", statusErr(503), true},
		{"529 overloaded", statusErr(529), true},
		{"429 rate limited", statusErr(429), true},
		{"408 request timeout", statusErr(408), true},
		{"wrapped 500", fmt.Errorf("anthropic: %w", statusErr(500)), true},
		{"timeout", context.DeadlineExceeded, true},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"400 bad request", statusErr(400), false},
		{"401 unauthorized", statusErr(401), false},
		{"403 forbidden", statusErr(403), false},
		{"404 not found", statusErr(404), false},
		{"413 too large", statusErr(413), false},
		{"422 unprocessable", statusErr(422), false},
		{"context canceled", context.Canceled, false},
		{"no API key", ai.ErrNoAPIKey, false},
		{"unclassified error", errors.New("something odd"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setupCircuit(t, ai.CircuitConfig{FailuresToOpen: 1, OpenFor: time.Hour}, answers(tt.err))

			require.ErrorIs(t, f.call(t), tt.err)
			st := f.circuits.State(ai.InstanceCircuit("scripted", ""))
			if tt.trips {
				require.Equal(t, ai.CircuitOpen, st.State)
				require.Equal(t, uint64(1), st.TotalFailures)
				require.Equal(t, tt.err.Error(), st.LastError)
				require.Equal(t, "scripted closed>open", f.nextChange(t))
				return
			}
			require.Equal(t, ai.CircuitClosed, st.State)
			require.Zero(t, st.TotalFailures)
			require.Empty(t, st.LastError)
			f.noChange(t)
		})
	}
}

func TestCircuitOpensAfterConsecutiveFailures(t *testing.T) {
	t.Parallel()
	fail := statusErr(500)
	// Four failures, a success, then failures: only five in a row open it.
	f := setupCircuit(t, ai.CircuitConfig{OpenFor: time.Hour}, answers(fail, fail, fail, fail, nil, fail))

	for range 4 {
		require.ErrorIs(t, f.call(t), fail)
	}
	st := f.circuits.State(ai.InstanceCircuit("scripted", ""))
	require.Equal(t, ai.CircuitClosed, st.State)
	require.Equal(t, uint64(4), st.ConsecutiveFailures)

	require.NoError(t, f.call(t))
	require.Zero(t, f.circuits.State(ai.InstanceCircuit("scripted", "")).ConsecutiveFailures)

	for i := range 5 {
		require.Equal(t, ai.CircuitClosed, f.circuits.State(ai.InstanceCircuit("scripted", "")).State, "open after %d failures", i)
		require.ErrorIs(t, f.call(t), fail)
	}
	st = f.circuits.State(ai.InstanceCircuit("scripted", ""))
	require.Equal(t, ai.CircuitOpen, st.State)
	require.Equal(t, uint64(5), st.ConsecutiveFailures)
	require.Equal(t, uint64(9), st.TotalFailures)
	require.Equal(t, uint64(1), st.TotalSuccesses)
	require.Equal(t, "scripted closed>open", f.nextChange(t))
	require.Equal(t, 10, f.fake.Calls())

	// Refused without calling the provider.
	for range 3 {
		err := f.call(t)
		require.ErrorIs(t, err, ai.ErrCircuitOpen)
		var open *ai.CircuitOpenError
		require.ErrorAs(t, err, &open)
		require.Equal(t, "scripted", open.Provider)
		require.Equal(t, st.OpensUntil, open.Until)
	}
	require.Equal(t, 10, f.fake.Calls())
	f.noChange(t)
}

func TestCircuitHalfOpen(t *testing.T) {
	t.Parallel()
	fail := statusErr(503)
	cfg := ai.CircuitConfig{FailuresToOpen: 1, OpenFor: 50 * time.Millisecond, HalfOpenProbes: 2}

	t.Run("closes after the probes succeed", func(t *testing.T) {
		t.Parallel()
		f := setupCircuit(t, cfg, answers(fail, nil))
		require.ErrorIs(t, f.call(t), fail)
		require.Equal(t, "scripted closed>open", f.nextChange(t))

		f.waitForState(t, ai.CircuitHalfOpen)
		require.Equal(t, "scripted open>half-open", f.nextChange(t))
		require.Zero(t, f.circuits.State(ai.InstanceCircuit("scripted", "")).OpensUntil)

		require.NoError(t, f.call(t))
		require.Equal(t, ai.CircuitHalfOpen, f.circuits.State(ai.InstanceCircuit("scripted", "")).State, "one success is not enough")
		require.NoError(t, f.call(t))
		require.Equal(t, "scripted half-open>closed", f.nextChange(t))
		require.Equal(t, ai.CircuitClosed, f.circuits.State(ai.InstanceCircuit("scripted", "")).State)
		require.Equal(t, 3, f.fake.Calls())
	})

	t.Run("a failed probe re-opens it", func(t *testing.T) {
		t.Parallel()
		f := setupCircuit(t, cfg, answers(fail))
		require.ErrorIs(t, f.call(t), fail)
		first := f.circuits.State(ai.InstanceCircuit("scripted", ""))
		f.waitForState(t, ai.CircuitHalfOpen)

		require.ErrorIs(t, f.call(t), fail)
		st := f.circuits.State(ai.InstanceCircuit("scripted", ""))
		require.Equal(t, ai.CircuitOpen, st.State)
		require.True(t, st.OpensUntil.After(first.OpensUntil))
		require.Equal(t, st.LastChange.Add(cfg.OpenFor), st.OpensUntil)
		require.Equal(t, []string{"scripted closed>open", "scripted open>half-open", "scripted half-open>open"},
			[]string{f.nextChange(t), f.nextChange(t), f.nextChange(t)})
	})

	t.Run("lets only HalfOpenProbes calls through at once", func(t *testing.T) {
		t.Parallel()
		entered := make(chan struct{}, 2)
		release := make(chan struct{})
		f := setupCircuit(t, cfg, func(_ context.Context, call int, _ func(string)) (ai.Response, error) {
			if call == 0 {
				return ai.Response{}, fail
			}
			entered <- struct{}{}
			<-release
			return okResponse, nil
		})
		require.ErrorIs(t, f.call(t), fail)
		f.waitForState(t, ai.CircuitHalfOpen)

		results := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := f.provider.Stream(t.Context(), ai.Request{}, nil)
				results <- err
			}()
		}
		receive(t, entered)
		receive(t, entered)

		before := time.Now()
		err := f.call(t)
		until, ok := ai.IsCircuitOpen(err)
		require.True(t, ok, "a third probe is refused: %v", err)
		require.True(t, until.After(before), "refused until a moment from now, not %v", until)
		require.Equal(t, 3, f.fake.Calls())

		close(release)
		require.NoError(t, receive(t, results))
		require.NoError(t, receive(t, results))
		require.Equal(t, ai.CircuitClosed, f.circuits.State(ai.InstanceCircuit("scripted", "")).State)
	})
}

func TestCircuitPanickingProbe(t *testing.T) {
	t.Parallel()
	fail := statusErr(500)
	cfg := ai.CircuitConfig{FailuresToOpen: 1, OpenFor: 50 * time.Millisecond, HalfOpenProbes: 1}
	f := setupCircuit(t, cfg, func(_ context.Context, call int, _ func(string)) (ai.Response, error) {
		switch call {
		case 0:
			return ai.Response{}, fail
		case 1:
			panic("provider bug")
		}
		return okResponse, nil
	})
	require.ErrorIs(t, f.call(t), fail)
	f.waitForState(t, ai.CircuitHalfOpen)

	require.PanicsWithValue(t, "provider bug", func() { _ = f.call(t) })
	require.Equal(t, ai.CircuitHalfOpen, f.circuits.State(ai.InstanceCircuit("scripted", "")).State, "a panic neither closes nor opens it")
	require.NoError(t, f.call(t), "the panicking probe gave its place back")
	require.Equal(t, ai.CircuitClosed, f.circuits.State(ai.InstanceCircuit("scripted", "")).State)
}

func TestCircuitsReset(t *testing.T) {
	t.Parallel()
	fail := statusErr(500)
	f := setupCircuit(t, ai.CircuitConfig{FailuresToOpen: 2, OpenFor: time.Hour}, answers(fail, fail, nil))
	require.ErrorIs(t, f.call(t), fail)
	require.ErrorIs(t, f.call(t), fail)
	opened := f.circuits.State(ai.InstanceCircuit("scripted", ""))
	require.Equal(t, ai.CircuitOpen, opened.State)
	require.ErrorIs(t, f.call(t), ai.ErrCircuitOpen)
	require.Equal(t, "scripted closed>open", f.nextChange(t))

	require.NoError(t, f.circuits.Reset(ai.InstanceCircuit("scripted", "")))
	require.Equal(t, "scripted open>closed", f.nextChange(t))
	st := f.circuits.State(ai.InstanceCircuit("scripted", ""))
	require.Equal(t, ai.CircuitClosed, st.State)
	require.Zero(t, st.ConsecutiveFailures)
	require.Zero(t, st.TotalFailures)
	require.Zero(t, st.TotalSuccesses)
	require.Zero(t, st.OpensUntil)
	require.False(t, st.LastChange.Before(opened.LastChange))
	require.Equal(t, opened.LastError, st.LastError, "the last error is kept for the record")

	require.NoError(t, f.call(t), "the next call goes through")
	require.Equal(t, 3, f.fake.Calls())

	require.NoError(t, f.circuits.Reset(ai.InstanceCircuit("scripted", "")))
	f.noChange(t) // resetting a closed circuit changes nothing

	err := f.circuits.Reset(ai.InstanceCircuit("nobody", ""))
	require.ErrorIs(t, err, ai.ErrNoCircuit)
	require.ErrorContains(t, err, "nobody (instance)")
}

func TestCircuitsStates(t *testing.T) {
	t.Parallel()
	circuits := ai.NewCircuits(ai.CircuitConfig{FailuresToOpen: 1, OpenFor: time.Hour})
	fail := statusErr(529)
	created := time.Now()
	zeta := ai.NewReliable(&scriptedProvider{name: "zeta", answer: answers(fail)}, circuits, oneAttempt)
	ai.NewReliable(&scriptedProvider{name: "alpha", answer: answers(nil)}, circuits, oneAttempt)

	states := circuits.States()
	require.Equal(t, []string{"alpha", "zeta"}, names(states))
	for _, st := range states {
		require.Equal(t, ai.CircuitClosed, st.State)
		require.False(t, st.LastChange.Before(created), "LastChange starts when the circuit is created")
	}

	before := time.Now()
	_, err := zeta.Stream(t.Context(), ai.Request{}, nil)
	require.ErrorIs(t, err, fail)
	after := time.Now()

	st := circuits.State(ai.InstanceCircuit("zeta", ""))
	require.Equal(t, "zeta", st.Provider)
	require.Equal(t, ai.CircuitOpen, st.State)
	require.Equal(t, uint64(1), st.ConsecutiveFailures)
	require.Equal(t, uint64(1), st.TotalFailures)
	require.Equal(t, fail.Error(), st.LastError)
	require.WithinRange(t, st.LastErrorAt, before, after)
	require.WithinRange(t, st.LastChange, before, after)
	require.Equal(t, st.LastChange.Add(time.Hour), st.OpensUntil)
	require.Equal(t, st, circuits.States()[1])

	require.Equal(t, ai.CircuitState{Key: ai.InstanceCircuit("nobody", ""), Provider: "nobody", State: ai.CircuitClosed}, circuits.State(ai.InstanceCircuit("nobody", "")))
}

func TestCircuitConfigDefaults(t *testing.T) {
	t.Parallel()
	want := ai.CircuitConfig{FailuresToOpen: 5, OpenFor: time.Minute, HalfOpenProbes: 2, CallTimeout: 2 * time.Minute}
	require.Equal(t, want, ai.DefaultCircuitConfig())
	require.Equal(t, want, ai.NewCircuits(ai.CircuitConfig{}).Config())

	custom := ai.CircuitConfig{FailuresToOpen: 1, OpenFor: time.Second, HalfOpenProbes: 3, CallTimeout: time.Second}
	require.Equal(t, custom, ai.NewCircuits(custom).Config())
}

func TestIsCircuitOpen(t *testing.T) {
	t.Parallel()
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	open := &ai.CircuitOpenError{Provider: "anthropic", Until: until}
	tests := []struct {
		name string
		err  error
		ok   bool
	}{
		{"circuit open", open, true},
		{"wrapped", fmt.Errorf("step draft: %w", open), true},
		{"bare sentinel has no time", ai.ErrCircuitOpen, false},
		{"status error", statusErr(503), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := ai.IsCircuitOpen(tt.err)
			require.Equal(t, tt.ok, ok)
			if tt.ok {
				require.Equal(t, until, got)
				return
			}
			require.Zero(t, got)
		})
	}
	require.ErrorIs(t, open, ai.ErrCircuitOpen)
	require.Equal(t, "anthropic: circuit open until 2030-01-02T03:04:05Z", open.Error())
	require.False(t, ai.Retryable(open), "the engine waits for the circuit instead of retrying")
}
